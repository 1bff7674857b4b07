package store

import (
	"math/big"
	"math/rand"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestNumericEncodingMatchesPgx: the fast encoder writes, byte for byte, what pgx's own numeric encoder
// writes for the same integer, over the edges of 256-bit values and random ones of every size.
func TestNumericEncodingMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	values := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(-1), big.NewInt(9999), big.NewInt(10000),
		big.NewInt(10001), big.NewInt(-10000), big.NewInt(99999999), big.NewInt(100000000), max256,
		new(big.Int).Neg(max256), new(big.Int).Lsh(big.NewInt(1), 255), new(big.Int).Exp(big.NewInt(10), big.NewInt(77), nil),
		new(big.Int).Exp(big.NewInt(10), big.NewInt(16), nil), new(big.Int).Exp(big.NewInt(10), big.NewInt(32), nil)}
	rng := rand.New(rand.NewSource(1))
	for range 5000 {
		x := new(big.Int).Rand(rng, new(big.Int).Lsh(big.NewInt(1), uint(1+rng.Intn(256))))
		if rng.Intn(4) == 0 {
			x.Neg(x)
		}
		values = append(values, x)
	}
	for _, x := range values {
		want, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, pgtype.Numeric{Int: x, Valid: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeBigNumeric{}.Encode(bigNumeric{x}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("%s: encoded % x, pgx % x", x, got, want)
		}
		if text := appendNumericText(nil, x); string(text) != string(want) {
			t.Fatalf("%s: encoded from text % x, pgx % x", x, text, want)
		}
	}
}

func BenchmarkNumericEncoding(b *testing.B) {
	x, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	m := pgtype.NewMap()
	b.Run("pgx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, pgtype.Numeric{Int: x, Valid: true}, nil)
		}
	})
	b.Run("chainsink", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf, _ = encodeBigNumeric{}.Encode(bigNumeric{x}, buf[:0])
		}
	})
}
