package format

import (
	"bytes"
	"strings"
	"testing"
)

// plainTextBytes is plainText one byte at a time: the rule the word loop must keep.
func plainTextBytes(s []byte, ascii bool) bool {
	for _, c := range s {
		if c == '\\' || c < 0x20 || ascii && c >= 0x80 {
			return false
		}
	}
	return true
}

// checkPlainText holds plainText to the byte loop on s.
func checkPlainText(t *testing.T, s []byte) {
	t.Helper()
	for _, ascii := range []bool{false, true} {
		if got, want := plainText(s, ascii), plainTextBytes(s, ascii); got != want {
			t.Fatalf("plainText(%q, ascii %v) = %v, the byte loop says %v", s, ascii, got, want)
		}
	}
}

func TestPlainTextMatchesByteLoop(t *testing.T) {
	// Every byte value at every position of three words and of the tail, among hex digits and plain text.
	for _, base := range []string{"0123456789abcdefABCDEF0a1b2c3d4e", "plain text, nothing to escape in it"} {
		for i := range 24 {
			for c := range 256 {
				s := []byte(base)
				s[i] = byte(c)
				checkPlainText(t, s)
			}
		}
	}
	// The bytes around each range's ends, in one word: a borrow or carry into the next byte must not hide
	// or invent one.
	for _, s := range []string{"/0:9@AaFfGg`g", "\x1f \x1f\\[]\x7f\x80\xff", "00000000000000\x00", "ffffffffFFFFFFFF"} {
		checkPlainText(t, []byte(s))
		checkPlainText(t, []byte(strings.Repeat(s, 3)))
	}
}

func FuzzPlainTextMatchesByteLoop(f *testing.F) {
	f.Add([]byte("0123456789abcdefABCDEF"))
	f.Add([]byte("a string with \\\"an escape\\\" and \x01 a control"))
	f.Add([]byte("caf\xc3\xa9 au lait, not ASCII"))
	f.Fuzz(func(t *testing.T, s []byte) { checkPlainText(t, s) })
}

// BenchmarkPlainText is the check on a mainnet receipt's bloom (512 hex digits), against the byte loop.
func BenchmarkPlainText(b *testing.B) {
	bloom := bytes.Repeat([]byte("00200000000000000000000080000000"), 16)
	for name, check := range map[string]func([]byte, bool) bool{"words": plainText, "bytes": plainTextBytes} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(bloom)))
			for b.Loop() {
				check(bloom, false)
			}
		})
	}
}
