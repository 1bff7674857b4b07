package format

import "encoding/binary"

// The fast path's escape check, eight bytes at a time. A mainnet bundle is mostly hex, and much of it is in
// strings the decoder skips (receipts' blooms, signatures): the byte loop was 10 % of BenchmarkDecodeBundle's
// profile. FuzzPlainTextMatchesByteLoop holds it to that loop. (encoding/hex's Decode, 16 % of the same
// profile, was tried the same way and was no faster: its table loop already takes about a cycle a digit.)

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainText reports whether s holds no escape and no control character (and, with ascii, no byte outside
// ASCII): a string the reflective path reads as the same bytes (it takes invalid UTF-8 as it is, and so
// does the fast path outside the strings it keeps).
func plainText(s []byte, ascii bool) bool {
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		// A byte below 0x20, and a zero byte in x^'\\'...: exact for the word as a whole (a borrow can mark a
		// byte after a true one, never a word without one).
		bad := (x - 0x20*ones) &^ x & highs
		q := x ^ '\\'*ones
		bad |= (q - ones) &^ q & highs
		if ascii {
			bad |= x & highs
		}
		if bad != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c == '\\' || c < 0x20 || ascii && c >= 0x80 {
			return false
		}
	}
	return true
}
