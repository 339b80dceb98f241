package meter

import "encoding/binary"

// wavSeconds reads the length of a RIFF/WAVE file from its header.
func wavSeconds(b []byte) (float64, bool) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, false
	}
	var byteRate uint32
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := binary.LittleEndian.Uint32(b[off+4 : off+8])
		body := off + 8
		switch id {
		case "fmt ":
			if body+12 > len(b) {
				return 0, false
			}
			byteRate = binary.LittleEndian.Uint32(b[body+8 : body+12])
		case "data":
			if byteRate == 0 {
				return 0, false
			}
			// Streams written before their length is known say 0 or ~4 GB:
			// trust the bytes present instead.
			n := uint64(size)
			if have := uint64(len(b) - body); n == 0 || n > have {
				n = have
			}
			return float64(n) / float64(byteRate), true
		}
		next := uint64(body) + uint64(size) + uint64(size&1)
		if next > uint64(len(b)) {
			return 0, false
		}
		off = int(next)
	}
	return 0, false
}
