package standin

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestCRC(t *testing.T) {
	// The check values of CRC-8/SMBUS, CRC-16/UMTS and CRC-32/CKSUM before its final inversion.
	tests := []struct {
		width uint
		poly  uint32
		want  uint32
	}{
		{8, 0x07, 0xF4},
		{16, 0x8005, 0xFEE8},
		{32, 0x04C11DB7, 0x765E7680 ^ 0xFFFFFFFF},
	}
	for _, tt := range tests {
		if got := crc([]byte("123456789"), tt.width, tt.poly); got != tt.want {
			t.Errorf("crc%d = %#x, want %#x", tt.width, got, tt.want)
		}
	}
}

func TestSilenceLasts(t *testing.T) {
	tests := []struct {
		seconds, want float64
	}{
		{0, 0.1},
		{0.55, 0.5},
		{1, 1},
	}
	for _, tt := range tests {
		got, ok := wavSeconds(silence("wav", tt.seconds))
		if !ok || got != tt.want {
			t.Errorf("wav of %vs lasts %v (%v), want %v", tt.seconds, got, ok, tt.want)
		}
		if got, want := len(silence("pcm", tt.seconds)), int(tt.want*sampleRate)*2; got != want {
			t.Errorf("pcm of %vs has %d bytes, want %d", tt.seconds, got, want)
		}
		b := silence("flac", tt.seconds)
		if got, want := binary.BigEndian.Uint64(b[18:])&(1<<36-1), uint64(tt.want*sampleRate); got != want {
			t.Errorf("flac of %vs has %d samples, want %d", tt.seconds, got, want)
		}
	}
}

func TestWAVSeconds(t *testing.T) {
	wav := silence("wav", 0.5)
	streamed := append([]byte(nil), wav...)
	binary.LittleEndian.PutUint32(streamed[40:], 0xFFFFFFFF)
	list := append(append([]byte(nil), wav[:36]...), "LIST\x03\x00\x00\x00abc\x00"...) // an odd-sized chunk before the data
	list = append(list, wav[36:]...)
	tests := []struct {
		name   string
		b      []byte
		want   float64
		wantOK bool
	}{
		{"wav", wav, 0.5, true},
		{"streamed", streamed, 0.5, true},
		{"cut off", wav[:44+4800], 0.1, true},
		{"padded chunk", list, 0.5, true},
		{"no data", wav[:36], 0, false},
		{"mp3", silence("mp3", 0.5), 0, false},
		{"empty", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := wavSeconds(tt.b)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("wavSeconds = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzWAVSeconds(f *testing.F) {
	f.Add(silence("wav", 0.2))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := wavSeconds(b)
		if !ok && s != 0 || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			t.Errorf("wavSeconds = %v, %v", s, ok)
		}
		if ok && s > float64(len(b)) {
			t.Errorf("wavSeconds = %v for %d bytes: more audio than bytes", s, len(b))
		}
	})
}
