//go:build linux && cgo && !ci

package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/bits"
)

// decodeXWD reads what xwd writes for a TrueColor window of depth 24 or 32
// (a ZPixmap of 32-bit pixels), so the tests need no image converter.
func decodeXWD(b []byte) (image.Image, error) {
	if len(b) < 100 {
		return nil, errors.New("xwd: short header")
	}
	h := make([]uint32, 25)
	for i := range h {
		h[i] = binary.BigEndian.Uint32(b[i*4:])
	}
	size, format, width, height := h[0], h[2], int(h[4]), int(h[5])
	order, bpp, stride := h[7], h[11], int(h[12])
	rmask, gmask, bmask, ncolors := h[14], h[15], h[16], int(h[19])
	if format != 2 || bpp != 32 {
		return nil, fmt.Errorf("xwd: format %d with %d bits per pixel is not a 32-bit ZPixmap", format, bpp)
	}
	off := int(size) + 12*ncolors
	if off+stride*height > len(b) || stride < 4*width {
		return nil, errors.New("xwd: short image")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if order == 1 {
		bo = binary.BigEndian
	}
	channel := func(p, mask uint32) uint8 {
		if mask == 0 {
			return 0
		}
		return uint8((p & mask) >> bits.TrailingZeros32(mask))
	}
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		row := b[off+y*stride:]
		for x := range width {
			p := bo.Uint32(row[x*4:])
			img.SetNRGBA(x, y, color.NRGBA{channel(p, rmask), channel(p, gmask), channel(p, bmask), 0xff})
		}
	}
	return img, nil
}
