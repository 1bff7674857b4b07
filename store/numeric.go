package store

import (
	"context"
	"encoding/binary"
	"math/big"
	"math/bits"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// bigNumeric is a 256-bit integer on its way into a numeric(78,0) column. pgx encodes numeric by dividing a
// copy of the value by 10,000 once per base-10,000 digit, with a big.Int allocation or two each time: a
// fifth of chainsink's client CPU in make bench went there, on every amount, price and reserve of every row.
// numericCodec (registered on every connection of a Store) encodes it from one decimal conversion instead,
// byte for byte what pgx writes (TestNumericEncodingMatchesPgx). On a connection without the codec, the
// NumericValuer below still lets pgx encode it its own way.
type bigNumeric struct{ *big.Int }

// NumericValue implements pgtype.NumericValuer.
func (n bigNumeric) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: n.Int, Valid: n.Int != nil}, nil
}

// numericCodec is pgx's numeric codec with a fast binary encoder for bigNumeric.
type numericCodec struct{ pgtype.NumericCodec }

func (c numericCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(bigNumeric); ok && format == pgtype.BinaryFormatCode {
		return encodeBigNumeric{}
	}
	return c.NumericCodec.PlanEncode(m, oid, format, value)
}

type encodeBigNumeric struct{}

func (encodeBigNumeric) Encode(value any, buf []byte) ([]byte, error) {
	x := value.(bigNumeric).Int
	if x == nil {
		return nil, nil // NULL
	}
	return appendNumeric(buf, x), nil
}

// appendNumeric appends the binary numeric of the integer x: ndigits, weight, sign, dscale (0), then the
// base-10,000 digits, most significant first. Zero has no digits and weight -1, as pgx writes it. The digits
// come from dividing x's words by 10^16 with math/bits, in place on a copy: no allocation for values of up to
// 256 bits; wider ones go through a decimal string.
func appendNumeric(buf []byte, x *big.Int) []byte {
	var digits [24]uint16 // little-endian base-10,000 digits; 2^256 has 20
	nd := 0
	words := x.Bits()
	if bits.UintSize == 64 && len(words) <= 4 {
		var w [4]uint64
		n := len(words)
		for i, v := range words {
			w[i] = uint64(v)
		}
		for n > 0 {
			var rem uint64
			for i := n - 1; i >= 0; i-- {
				w[i], rem = bits.Div64(rem, w[i], 1e16)
			}
			for range 4 {
				digits[nd] = uint16(rem % 10000)
				rem /= 10000
				nd++
			}
			for n > 0 && w[n-1] == 0 {
				n--
			}
		}
	} else {
		return appendNumericText(buf, x)
	}
	for nd > 0 && digits[nd-1] == 0 {
		nd--
	}
	if nd == 0 {
		return binary.BigEndian.AppendUint64(buf, 0x0000_ffff_0000_0000)
	}
	var sign uint16
	if x.Sign() < 0 {
		sign = 0x4000
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(nd))
	buf = binary.BigEndian.AppendUint16(buf, uint16(nd-1)) // weight
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, 0) // dscale
	for i := nd - 1; i >= 0; i-- {
		buf = binary.BigEndian.AppendUint16(buf, digits[i])
	}
	return buf
}

// appendNumericText is appendNumeric of any integer, from its decimal digits.
func appendNumericText(buf []byte, x *big.Int) []byte {
	d := x.Append(nil, 10)
	var sign uint16
	if d[0] == '-' {
		sign, d = 0x4000, d[1:]
	}
	if len(d) == 1 && d[0] == '0' {
		return binary.BigEndian.AppendUint64(buf, 0x0000_ffff_0000_0000)
	}
	groups := (len(d) + 3) / 4
	buf = binary.BigEndian.AppendUint16(buf, uint16(groups))
	buf = binary.BigEndian.AppendUint16(buf, uint16(groups-1))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, 0)
	for i, end := 0, len(d)-4*(groups-1); i < len(d); i, end = end, end+4 {
		var g uint16
		for _, c := range d[i:end] {
			g = g*10 + uint16(c-'0')
		}
		buf = binary.BigEndian.AppendUint16(buf, g)
	}
	return buf
}

// registerNumeric installs numericCodec on a new connection.
func registerNumeric(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
	return nil
}
