package money

import "testing"

func TestFromFloatRoundsUp(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want USD
	}{
		{0, 0},
		{-1, 0},
		{0.04, 40_000},
		{1.5e-7, 1},
		{1.5e-05 * 4096, 61_440},
		{0.0000011, 2},
		{132.42, 132_420_000},
	} {
		if got := FromFloat(tt.in); got != tt.want {
			t.Errorf("FromFloat(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		in   USD
		want string
	}{
		{0, "$0.00"},
		{5 * Dollar, "$5.00"},
		{1_234_567, "$1.23"},
		{1_235_000, "$1.24"},
		{4_200, "$0.0042"},
		{1, "$0.000001"},
		{-2 * Cent, "-$0.02"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("USD(%d).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    USD
		wantErr bool
	}{
		{"5", 5 * Dollar, false},
		{"$0.50", 50 * Cent, false},
		{" 12.345678 ", 12_345_678, false},
		{"", 0, true},
		{"five", 0, true},
		{"-1", 0, true},
		{"NaN", 0, true},
		{"1e12", 0, true},
	} {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		in   USD
		want string
	}{{0, "0"}, {61_440, "0.06144"}, {5 * Dollar, "5"}, {1, "0.000001"}, {-1_500_000, "-1.5"}} {
		b, _ := tt.in.MarshalJSON()
		if string(b) != tt.want {
			t.Errorf("marshal %d = %s, want %s", tt.in, b, tt.want)
		}
		var back USD
		if err := back.UnmarshalJSON(b); err != nil || back != tt.in {
			t.Errorf("unmarshal %s = %d, %v", b, back, err)
		}
	}
}
