//go:build ignore

// gen draws keycap's icons: a keycap (a key from a keyboard) whose colour and
// glyph say the state, at the sizes the tray and the packagers want. Run it
// with `go generate ./assets` after changing a shape or a colour; the PNGs it
// writes are committed and embedded.
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// look is one state's icon.
type look struct {
	file       string
	face, body color.NRGBA
	glyph      color.NRGBA
	draw       func(c *canvas, ink color.NRGBA)
	size       int
}

var (
	white = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	ink   = color.NRGBA{0x1f, 0x23, 0x28, 0xff}
)

func main() {
	f, err := sfnt.Parse(gobold.TTF)
	if err != nil {
		log.Fatal(err)
	}
	text := func(s string) func(c *canvas, ink color.NRGBA) {
		return func(c *canvas, ink color.NRGBA) { c.glyph(f, s, ink) }
	}
	green := [2]color.NRGBA{{0x2d, 0xa4, 0x4e, 0xff}, {0x11, 0x6b, 0x2e, 0xff}}
	looks := []look{
		{file: "tray-ok.png", face: green[0], body: green[1], glyph: white, draw: text("$")},
		{file: "tray-warn.png", face: color.NRGBA{0xf5, 0xb3, 0x00, 0xff}, body: color.NRGBA{0xa3, 0x6d, 0x00, 0xff}, glyph: ink, draw: text("!")},
		{file: "tray-cap.png", face: color.NRGBA{0xe0, 0x2e, 0x3c, 0xff}, body: color.NRGBA{0x8e, 0x0b, 0x1f, 0xff}, glyph: white, draw: bar},
		{file: "tray-paused.png", face: color.NRGBA{0x2f, 0x7c, 0xe8, 0xff}, body: color.NRGBA{0x0a, 0x45, 0x9c, 0xff}, glyph: white, draw: pause},
		{file: "tray-nokey.png", face: color.NRGBA{0xb4, 0xbc, 0xc4, 0xff}, body: color.NRGBA{0x6a, 0x73, 0x7d, 0xff}, glyph: ink, draw: text("?")},
		{file: "icon.png", face: green[0], body: green[1], glyph: white, draw: text("$"), size: 512},
	}
	for _, l := range looks {
		size := l.size
		if size == 0 {
			size = 64
		}
		img := render(l, size)
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(l.file, buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", l.file)
	}
}

// canvas draws on a 64×64 design grid scaled to the output size.
type canvas struct {
	dst   *image.NRGBA
	scale float32
}

func (c *canvas) fill(path func(r *vector.Rasterizer), col color.NRGBA) {
	b := c.dst.Bounds()
	r := vector.NewRasterizer(b.Dx(), b.Dy())
	path(r)
	r.Draw(c.dst, b, image.NewUniform(col), image.Point{})
}

// roundRect adds a rounded rectangle in design units.
func (c *canvas) roundRect(x0, y0, x1, y1, rad float32) func(r *vector.Rasterizer) {
	s := c.scale
	x0, y0, x1, y1, rad = x0*s, y0*s, x1*s, y1*s, rad*s
	const k = 0.5523 // cubic approximation of a quarter circle
	return func(r *vector.Rasterizer) {
		r.MoveTo(x0+rad, y0)
		r.LineTo(x1-rad, y0)
		r.CubeTo(x1-rad+rad*k, y0, x1, y0+rad-rad*k, x1, y0+rad)
		r.LineTo(x1, y1-rad)
		r.CubeTo(x1, y1-rad+rad*k, x1-rad+rad*k, y1, x1-rad, y1)
		r.LineTo(x0+rad, y1)
		r.CubeTo(x0+rad-rad*k, y1, x0, y1-rad+rad*k, x0, y1-rad)
		r.LineTo(x0, y0+rad)
		r.CubeTo(x0, y0+rad-rad*k, x0+rad-rad*k, y0, x0+rad, y0)
		r.ClosePath()
	}
}

// glyph draws s in Go Bold, centred on the keycap's top face.
func (c *canvas) glyph(f *sfnt.Font, s string, col color.NRGBA) {
	var buf sfnt.Buffer
	ppem := fixed.Int26_6(40 * c.scale * 64)
	idx, err := f.GlyphIndex(&buf, []rune(s)[0])
	if err != nil {
		log.Fatal(err)
	}
	bounds, _, err := f.GlyphBounds(&buf, idx, ppem, font.HintingNone)
	if err != nil {
		log.Fatal(err)
	}
	segs, err := f.LoadGlyph(&buf, idx, ppem, nil)
	if err != nil {
		log.Fatal(err)
	}
	// Centre the glyph's box on the top face's centre, (32, 27.5).
	cx := 32*c.scale - float32(bounds.Min.X+bounds.Max.X)/128
	cy := 27.5*c.scale - float32(bounds.Min.Y+bounds.Max.Y)/128
	pt := func(p fixed.Point26_6) (float32, float32) { return cx + float32(p.X)/64, cy + float32(p.Y)/64 }
	path := func(dx, dy float32) func(r *vector.Rasterizer) {
		return func(r *vector.Rasterizer) {
			for _, sg := range segs {
				x0, y0 := pt(sg.Args[0])
				switch sg.Op {
				case sfnt.SegmentOpMoveTo:
					r.MoveTo(x0+dx, y0+dy)
				case sfnt.SegmentOpLineTo:
					r.LineTo(x0+dx, y0+dy)
				case sfnt.SegmentOpQuadTo:
					x1, y1 := pt(sg.Args[1])
					r.QuadTo(x0+dx, y0+dy, x1+dx, y1+dy)
				case sfnt.SegmentOpCubeTo:
					x1, y1 := pt(sg.Args[1])
					x2, y2 := pt(sg.Args[2])
					r.CubeTo(x0+dx, y0+dy, x1+dx, y1+dy, x2+dx, y2+dy)
				}
			}
			r.ClosePath()
		}
	}
	if col == white {
		// A soft shadow keeps a white glyph legible on a light face.
		c.fill(path(0, 1.2*c.scale), color.NRGBA{0, 0, 0, 0x55})
	}
	c.fill(path(0, 0), col)
}

// bar is the "no entry" glyph of the cap-reached icon.
func bar(c *canvas, col color.NRGBA) {
	c.fill(c.roundRect(17, 24.5, 47, 33.5, 3), color.NRGBA{0, 0, 0, 0x55})
	c.fill(c.roundRect(17, 23, 47, 32, 3), col)
}

// pause is the two bars of the paused icon.
func pause(c *canvas, col color.NRGBA) {
	for _, x := range []float32{22, 35} {
		c.fill(c.roundRect(x, 15.5, x+7.5, 41.5, 2.5), color.NRGBA{0, 0, 0, 0x55})
		c.fill(c.roundRect(x, 14, x+7.5, 40, 2.5), col)
	}
}

// render draws a keycap: a dark rim that reads on light panels, the body (the
// key's skirt) and the lighter top face, then the state's glyph.
func render(l look, size int) *image.NRGBA {
	c := &canvas{dst: image.NewNRGBA(image.Rect(0, 0, size, size)), scale: float32(size) / 64}
	c.fill(c.roundRect(1.5, 2.5, 62.5, 62.5, 13), color.NRGBA{0x10, 0x12, 0x14, 0xb0})
	c.fill(c.roundRect(3, 4, 61, 61, 11.5), l.body)
	c.fill(c.roundRect(8, 5.5, 56, 50, 9), l.face)
	// A lighter band at the top of the face gives the key its bevel.
	hi := color.NRGBA{0xff, 0xff, 0xff, 0x30}
	c.fill(c.roundRect(10, 7, 54, 14, 5), hi)
	l.draw(c, l.glyph)
	return c.dst
}
