package abi

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"unicode/utf8"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// The JSON writer turns the values go-ethereum's UnpackValues returns into
// jsonb-safe JSON. It appends to one byte slice in ABI order: going through
// encoding/json and maps would cost an allocation per key and lose the order.

func appendHex(buf, b []byte) []byte {
	buf = append(buf, '"', '0', 'x')
	buf = hex.AppendEncode(buf, b)
	return append(buf, '"')
}

// appendText writes a Solidity string. Postgres jsonb rejects \u0000 and
// invalid UTF-8, and replacing bytes would silently change the value, so such
// a string is written as the 0x-hex of its bytes instead.
func appendText(buf []byte, s string) []byte {
	if !utf8.ValidString(s) || containsNUL(s) {
		buf = append(buf, '"', '0', 'x')
		buf = hex.AppendEncode(buf, []byte(s))
		return append(buf, '"')
	}
	return appendJSONString(buf, s)
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes a valid UTF-8 string without NUL.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// appendBig writes an integer as a decimal JSON string after checking that it
// fits the declared width. go-ethereum range-checks only the 8/16/32/64-bit
// types; for the others (uint112, int24, uint160…) it returns whatever the
// 256-bit word holds, and a value that does not fit means the ABI does not
// match the data.
func appendBig(buf []byte, t *gethabi.Type, v *big.Int) ([]byte, error) {
	if v == nil {
		return nil, fmt.Errorf("nil integer for %s", t)
	}
	if err := checkWidth(t, v); err != nil {
		return nil, err
	}
	buf = append(buf, '"')
	buf = appendDecimal(buf, v)
	return append(buf, '"'), nil
}

// appendDecimal appends v in decimal, as v.Append(buf, 10) does: through uint256 when it fits 256 bits (a
// fixed-size conversion without big.Int's allocations, a sixth of its time), so for every ABI integer.
func appendDecimal(buf []byte, v *big.Int) []byte {
	if v.IsInt64() {
		return strconv.AppendInt(buf, v.Int64(), 10)
	}
	var u uint256.Int
	if overflow := u.SetFromBig(v); overflow {
		return v.Append(buf, 10)
	}
	if v.Sign() < 0 { // SetFromBig made it two's complement
		buf = append(buf, '-')
		u.Neg(&u)
	}
	return append(buf, u.Dec()...)
}

// checkWidth refuses an integer that does not fit its declared ABI width.
func checkWidth(t *gethabi.Type, v *big.Int) error {
	if t.Size > 0 && t.Size < 256 {
		if t.T == gethabi.UintTy {
			if v.Sign() < 0 || v.BitLen() > t.Size {
				return fmt.Errorf("value out of range for %s", t)
			}
		} else {
			// -2^(n-1) <= v < 2^(n-1); for negative v, BitLen(-v-1) < n.
			bl := v.BitLen()
			if v.Sign() < 0 {
				bl = new(big.Int).Not(v).BitLen()
			}
			if bl > t.Size-1 {
				return fmt.Errorf("value out of range for %s", t)
			}
		}
	}
	return nil
}

// appendValue writes one decoded value. n describes its ABI type; v is what
// go-ethereum's UnpackValues produced for it.
func appendValue(buf []byte, n *node, v any) ([]byte, error) {
	t := n.t
	switch t.T {
	case gethabi.IntTy, gethabi.UintTy:
		switch x := v.(type) {
		case *big.Int:
			return appendBig(buf, t, x)
		case uint8:
			return appendQuotedUint(buf, uint64(x)), nil
		case uint16:
			return appendQuotedUint(buf, uint64(x)), nil
		case uint32:
			return appendQuotedUint(buf, uint64(x)), nil
		case uint64:
			return appendQuotedUint(buf, x), nil
		case int8:
			return appendQuotedInt(buf, int64(x)), nil
		case int16:
			return appendQuotedInt(buf, int64(x)), nil
		case int32:
			return appendQuotedInt(buf, int64(x)), nil
		case int64:
			return appendQuotedInt(buf, x), nil
		}
	case gethabi.BoolTy:
		if x, ok := v.(bool); ok {
			return strconv.AppendBool(buf, x), nil
		}
	case gethabi.AddressTy:
		if x, ok := v.(common.Address); ok {
			return appendHex(buf, x[:]), nil
		}
	case gethabi.StringTy:
		if x, ok := v.(string); ok {
			return appendText(buf, x), nil
		}
	case gethabi.BytesTy:
		if x, ok := v.([]byte); ok {
			return appendHex(buf, x), nil
		}
	case gethabi.FixedBytesTy, gethabi.FunctionTy, gethabi.HashTy:
		return appendByteArray(buf, v)
	case gethabi.SliceTy, gethabi.ArrayTy:
		return appendList(buf, n, v)
	case gethabi.TupleTy:
		return appendTuple(buf, n, v)
	}
	return nil, fmt.Errorf("unexpected Go value %T for ABI type %s", v, t)
}

func appendQuotedUint(buf []byte, x uint64) []byte {
	buf = append(buf, '"')
	buf = strconv.AppendUint(buf, x, 10)
	return append(buf, '"')
}

func appendQuotedInt(buf []byte, x int64) []byte {
	buf = append(buf, '"')
	buf = strconv.AppendInt(buf, x, 10)
	return append(buf, '"')
}

// appendByteArray writes a bytesN (a Go [N]byte built by reflection in
// go-ethereum). The common sizes skip reflection.
func appendByteArray(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case [32]byte:
		return appendHex(buf, x[:]), nil
	case common.Hash:
		return appendHex(buf, x[:]), nil
	case [4]byte:
		return appendHex(buf, x[:]), nil
	case [20]byte:
		return appendHex(buf, x[:]), nil
	case [24]byte:
		return appendHex(buf, x[:]), nil
	case [16]byte:
		return appendHex(buf, x[:]), nil
	case [8]byte:
		return appendHex(buf, x[:]), nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Array || rv.Type().Elem().Kind() != reflect.Uint8 {
		return nil, fmt.Errorf("unexpected Go value %T for fixed bytes", v)
	}
	var tmp [32]byte
	l := min(rv.Len(), len(tmp))
	for i := 0; i < l; i++ {
		tmp[i] = byte(rv.Index(i).Uint())
	}
	return appendHex(buf, tmp[:l]), nil
}

func appendList(buf []byte, n *node, v any) ([]byte, error) {
	var err error
	// Fast paths for the element types that dominate real ABIs
	// (uint256[] in ERC-1155 batches, address[] in swap paths).
	switch x := v.(type) {
	case []*big.Int:
		buf = append(buf, '[')
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendBig(buf, n.elem.t, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case []common.Address:
		buf = append(buf, '[')
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendHex(buf, e[:])
		}
		return append(buf, ']'), nil
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return nil, fmt.Errorf("unexpected Go value %T for ABI type %s", v, n.t)
	}
	buf = append(buf, '[')
	for i := 0; i < rv.Len(); i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendValue(buf, n.elem, rv.Index(i).Interface()); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

// appendTuple writes a struct as an object keyed by the component names.
func appendTuple(buf []byte, n *node, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct || rv.NumField() != len(n.fields) {
		return nil, fmt.Errorf("unexpected Go value %T for ABI type %s", v, n.t)
	}
	var err error
	buf = append(buf, '{')
	for i, f := range n.fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, n.keys[i]...)
		if buf, err = appendValue(buf, f, rv.Field(i).Interface()); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}
