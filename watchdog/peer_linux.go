//go:build linux

package watchdog

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// samePeer reports whether the process on the other end of c runs as our
// user (SO_PEERCRED).
func samePeer(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	return cerr == nil && cred != nil && int(cred.Uid) == os.Getuid()
}
