package cli

import "testing"

func TestSizeValue(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "64M": 64 << 20,
		"1G": 1 << 30, "1048576": 1 << 20, "100B": 100, " 2 MiB ": 2 << 20, "off": -1} {
		var s sizeValue
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("%q: %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "1TiB", "9999999999GiB", "lots"} {
		var s sizeValue
		if err := s.Set(in); err == nil {
			t.Errorf("%q: accepted as %d", in, s)
		}
	}
	for v, want := range map[int64]string{256 << 20: "256MiB", 1 << 30: "1GiB", 1000: "1000", -1: "off"} {
		if s := sizeValue(v); s.String() != want {
			t.Errorf("%d: %q, want %q", v, s.String(), want)
		}
	}
}
