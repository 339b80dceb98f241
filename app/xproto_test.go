//go:build linux && cgo && !ci

package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// A few requests of the X11 protocol, enough to find a window by its title
// and see whether it is on screen, so the tray tests need nothing but Xvfb.

type xconn struct {
	c    net.Conn
	root uint32
}

// dialX connects to display (":N") over its Unix socket; Xvfb started
// without -auth takes a connection without credentials.
func dialX(display string) (*xconn, error) {
	c, err := net.DialTimeout("unix", "/tmp/.X11-unix/X"+strings.TrimPrefix(display, ":"), 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// Little-endian, protocol 11.0, no authorisation.
	if _, err := c.Write([]byte{'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		c.Close()
		return nil, err
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(c, head); err != nil {
		c.Close()
		return nil, err
	}
	body := make([]byte, 4*int(binary.LittleEndian.Uint16(head[6:])))
	if _, err := io.ReadFull(c, body); err != nil {
		c.Close()
		return nil, err
	}
	if head[0] != 1 {
		c.Close()
		return nil, fmt.Errorf("X server refused the connection: %q", body)
	}
	vendor := int(binary.LittleEndian.Uint16(body[16:]))
	formats := int(body[21])
	screens := 32 + (vendor+3)/4*4 + 8*formats
	if len(body) < screens+4 {
		c.Close()
		return nil, errors.New("X setup reply too short")
	}
	return &xconn{c: c, root: binary.LittleEndian.Uint32(body[screens:])}, nil
}

func (x *xconn) Close() error { return x.c.Close() }

// call sends a request and reads its reply: the 32-byte head and the rest.
func (x *xconn) call(req []byte) ([]byte, error) {
	binary.LittleEndian.PutUint16(req[2:], uint16(len(req)/4))
	if _, err := x.c.Write(req); err != nil {
		return nil, err
	}
	head := make([]byte, 32)
	if _, err := io.ReadFull(x.c, head); err != nil {
		return nil, err
	}
	if head[0] == 0 {
		return nil, fmt.Errorf("X error %d", head[1])
	}
	rest := make([]byte, 4*int(binary.LittleEndian.Uint32(head[4:])))
	if _, err := io.ReadFull(x.c, rest); err != nil {
		return nil, err
	}
	return append(head, rest...), nil
}

func windowRequest(opcode byte, w uint32, extra ...uint32) []byte {
	req := make([]byte, 8+4*len(extra))
	req[0] = opcode
	binary.LittleEndian.PutUint32(req[4:], w)
	for i, v := range extra {
		binary.LittleEndian.PutUint32(req[8+4*i:], v)
	}
	return req
}

// children lists w's child windows (QueryTree).
func (x *xconn) children(w uint32) ([]uint32, error) {
	r, err := x.call(windowRequest(15, w))
	if err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint16(r[16:]))
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(r[32+4*i:])
	}
	return out, nil
}

// atom returns the atom named name, 0 if it does not exist (InternAtom).
func (x *xconn) atom(name string) (uint32, error) {
	req := make([]byte, 8+(len(name)+3)/4*4)
	req[0], req[1] = 16, 1 // only if it exists
	binary.LittleEndian.PutUint16(req[4:], uint16(len(name)))
	copy(req[8:], name)
	r, err := x.call(req)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(r[8:]), nil
}

// title reads w's _NET_WM_NAME (UTF-8), or else its WM_NAME (atom 39).
func (x *xconn) title(w uint32) (string, error) {
	for _, name := range []string{"_NET_WM_NAME", "WM_NAME"} {
		prop := uint32(39)
		if name != "WM_NAME" {
			var err error
			if prop, err = x.atom(name); err != nil {
				return "", err
			}
			if prop == 0 {
				continue
			}
		}
		r, err := x.call(windowRequest(20, w, prop, 0, 0, 1024))
		if err != nil {
			return "", err
		}
		if n := int(binary.LittleEndian.Uint32(r[16:])) * int(r[1]) / 8; n > 0 {
			return string(r[32 : 32+n]), nil
		}
	}
	return "", nil
}

// viewable reports whether w is mapped and all its ancestors are
// (GetWindowAttributes' map-state).
func (x *xconn) viewable(w uint32) (bool, error) {
	r, err := x.call(windowRequest(3, w))
	if err != nil {
		return false, err
	}
	return r[26] == 2, nil
}

// findWindow looks for a top-level window whose title contains title.
func findWindow(display, title string) (id uint32, viewable bool, err error) {
	x, err := dialX(display)
	if err != nil {
		return 0, false, err
	}
	defer x.Close()
	top, err := x.children(x.root)
	if err != nil {
		return 0, false, err
	}
	for _, w := range top {
		name, err := x.title(w)
		if err != nil {
			return 0, false, err
		}
		if strings.Contains(name, title) {
			v, err := x.viewable(w)
			return w, v, err
		}
	}
	return 0, false, nil
}
