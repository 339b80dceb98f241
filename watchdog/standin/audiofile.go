package standin

import (
	"bytes"
	"encoding/binary"
)

// sampleRate is the rate of all speech audio, 24 kHz mono, as the real API's.
const sampleRate = 24000

// audioTypes maps each speech response_format to its Content-Type.
var audioTypes = map[string]string{"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac",
	"flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}

// silence returns seconds of silence (at least a tenth of a second, in whole
// tenths) as a complete, playable file in format.
func silence(format string, seconds float64) []byte {
	samples := max(int(seconds*10), 1) * sampleRate / 10
	pcm := make([]byte, 2*samples) // 16-bit little-endian zeros
	switch format {
	case "pcm":
		return pcm
	case "wav":
		return wav(pcm)
	case "flac":
		return flac(samples)
	case "opus":
		return oggOpus(samples)
	case "aac":
		// ADTS frames of 1024 samples, each an AAC-LC single channel element
		// with no scale factor bands: a frame that decodes to silence.
		frame := []byte{0xFF, 0xF1, 0x58, 0x40, 0x01, 0x7F, 0xFC, 0x00, 0x00, 0x00, 0x07}
		return bytes.Repeat(frame, (samples+1023)/1024)
	default:
		// MPEG-2 Layer III frames (48 kbit/s, 24 kHz, mono) of 576 samples
		// and 144 bytes; all-zero side information decodes to silence.
		frame := append([]byte{0xFF, 0xF3, 0x64, 0xC0}, make([]byte, 140)...)
		return bytes.Repeat(frame, (samples+575)/576)
	}
}

// wav wraps 16-bit mono PCM in a RIFF/WAVE header.
func wav(pcm []byte) []byte {
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(36+len(pcm)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, 1) // mono
	b = binary.LittleEndian.AppendUint32(b, sampleRate)
	b = binary.LittleEndian.AppendUint32(b, 2*sampleRate) // bytes per second
	b = binary.LittleEndian.AppendUint16(b, 2)            // bytes per frame
	b = binary.LittleEndian.AppendUint16(b, 16)           // bits per sample
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pcm)))
	return append(b, pcm...)
}

// wavSeconds returns the playing time of a RIFF/WAVE file, and false when b is
// not one. A data chunk longer than the file (a streamed or cut-off WAV) counts
// for the bytes that are there.
func wavSeconds(b []byte) (float64, bool) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, false
	}
	var byteRate uint32
	for p := uint64(12); p+8 <= uint64(len(b)); {
		size := uint64(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		switch string(b[p : p+4]) {
		case "fmt ":
			if size < 16 || len(body) < 16 {
				return 0, false
			}
			byteRate = binary.LittleEndian.Uint32(body[8:])
		case "data":
			if byteRate == 0 {
				return 0, false
			}
			return float64(min(size, uint64(len(body)))) / float64(byteRate), true
		}
		p += 8 + size + size&1 // chunks are padded to even sizes
	}
	return 0, false
}

// flac returns samples of silence as FLAC: a STREAMINFO block and frames of
// up to flacBlock samples, each a single CONSTANT subframe of zero.
func flac(samples int) []byte {
	const flacBlock = 2400
	b := append([]byte("fLaC"), 0x80, 0, 0, 34) // the last metadata block: STREAMINFO, 34 bytes
	b = binary.BigEndian.AppendUint16(b, flacBlock)
	b = binary.BigEndian.AppendUint16(b, flacBlock)
	b = append(b, 0, 0, 0, 0, 0, 0) // frame sizes unknown
	// 20 bits of sample rate, 3 of channels-1 (0), 5 of bits per sample-1, 36 of samples.
	b = binary.BigEndian.AppendUint64(b, sampleRate<<44|15<<36|uint64(samples))
	b = append(b, make([]byte, 16)...) // MD5 of the audio, zero for unknown
	for n, i := 0, 0; n < samples; i++ {
		size := min(flacBlock, samples-n)
		// Sync code and fixed block size; the block size follows the header
		// as 16 bits, 24 kHz; mono, 16 bits a sample; the frame number (one
		// UTF-8 byte: clips are short).
		f := []byte{0xFF, 0xF8, 0x77, 0x08, byte(i)}
		f = binary.BigEndian.AppendUint16(f, uint16(size-1))
		f = append(f, byte(crc(f, 8, 0x07)))
		f = append(f, 0x00, 0x00, 0x00) // CONSTANT subframe, value 0
		f = binary.BigEndian.AppendUint16(f, uint16(crc(f, 16, 0x8005)))
		b = append(b, f...)
		n += size
	}
	return b
}

// oggOpus returns samples (at 24 kHz) of silence as an Ogg Opus file: the
// OpusHead and OpusTags pages, then one page of 20 ms CELT silence frames.
func oggOpus(samples int) []byte {
	const preSkip = 312
	head := append([]byte("OpusHead"), 1, 1) // version 1, mono
	head = binary.LittleEndian.AppendUint16(head, preSkip)
	head = binary.LittleEndian.AppendUint32(head, sampleRate)
	head = append(head, 0, 0, 0) // no gain, mapping family 0
	tags := binary.LittleEndian.AppendUint32([]byte("OpusTags"), 6)
	tags = binary.LittleEndian.AppendUint32(append(tags, "keycap"...), 0)
	frames := (samples + 479) / 480
	var b []byte
	b = oggPage(b, 0x02, 0, 0, [][]byte{head})
	b = oggPage(b, 0, 0, 1, [][]byte{tags})
	return oggPage(b, 0x04, uint64(frames*960), 2, repeat(frames, []byte{0xF8, 0xFF, 0xFE}))
}

func repeat(n int, packet []byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = packet
	}
	return out
}

// oggPage appends an Ogg page holding packets (each shorter than 255 bytes,
// at most 255 of them) to b.
func oggPage(b []byte, flags byte, granule uint64, seq uint32, packets [][]byte) []byte {
	p := append([]byte("OggS"), 0, flags)
	p = binary.LittleEndian.AppendUint64(p, granule)
	p = binary.LittleEndian.AppendUint32(p, 0x6b657963) // stream serial number
	p = binary.LittleEndian.AppendUint32(p, seq)
	p = append(p, 0, 0, 0, 0, byte(len(packets))) // CRC, filled in below
	for _, pk := range packets {
		p = append(p, byte(len(pk)))
	}
	for _, pk := range packets {
		p = append(p, pk...)
	}
	binary.LittleEndian.PutUint32(p[22:], crc(p, 32, 0x04C11DB7))
	return append(b, p...)
}

// crc is the unreflected CRC of width bits with polynomial poly and a zero
// start, as FLAC (8 and 16 bits) and Ogg (32 bits) use.
func crc(b []byte, width uint, poly uint32) uint32 {
	top := uint32(1) << (width - 1)
	mask := uint32(uint64(1)<<width - 1)
	var c uint32
	for _, x := range b {
		c ^= uint32(x) << (width - 8)
		for range 8 {
			if c&top != 0 {
				c = c<<1 ^ poly
			} else {
				c <<= 1
			}
		}
		c &= mask
	}
	return c
}
