package abi

import (
	"errors"
	"fmt"
	"strconv"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// Most events' and calls' arguments are elementary static types, each in one 32-byte word: integers,
// addresses, booleans, bytes32. go-ethereum's Arguments.UnpackValues decodes them through its general
// machinery (a result list and its type switch per argument), about 40 % of decoding a mainnet block's logs.
// readWord gives the same Go value for one such word, by go-ethereum's own ReadInteger for the integers;
// FuzzWordsMatchGoEthereum holds the two equal on every input, errors included. Events and functions with
// any other argument type keep go-ethereum's path.

// wordKind is how an argument's value sits in one 32-byte word; wordOther is any type that does not.
type wordKind uint8

const (
	wordOther wordKind = iota
	wordInteger
	wordAddress
	wordBool
	wordBytes32
)

func wordKindOf(t gethabi.Type) wordKind {
	switch t.T {
	case gethabi.UintTy, gethabi.IntTy:
		return wordInteger
	case gethabi.AddressTy:
		return wordAddress
	case gethabi.BoolTy:
		return wordBool
	case gethabi.FixedBytesTy:
		if t.Size == 32 {
			return wordBytes32
		}
	}
	return wordOther
}

// errBadBool is go-ethereum's error for a word that is not a boolean.
var errBadBool = errors.New("abi: improperly encoded boolean value")

// readWord decodes one word of kind k (not wordOther) of type t as go-ethereum's toGoType does.
func readWord(t gethabi.Type, k wordKind, word []byte) (any, error) {
	switch k {
	case wordInteger:
		return gethabi.ReadInteger(t, word)
	case wordAddress:
		return common.BytesToAddress(word), nil
	case wordBool:
		if v, ok := boolWord(word); ok {
			return v, nil
		}
		return nil, errBadBool
	case wordBytes32:
		return [32]byte(word), nil
	}
	return nil, fmt.Errorf("abi: no word decoding for %s", t)
}

// boolWord reads a boolean word as go-ethereum does: 0 or 1, every other byte zero.
func boolWord(word []byte) (v, ok bool) {
	for _, b := range word[:31] {
		if b != 0 {
			return false, false
		}
	}
	switch word[31] {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}

// wordValues is Arguments.UnpackValues for arguments that are all of the given word kinds: argument i is
// the i-th word of data.
func wordValues(args gethabi.Arguments, kinds []wordKind, data []byte) ([]any, error) {
	out := make([]any, len(args))
	for i := range args {
		at := 32 * i
		if at+32 > len(data) {
			return nil, fmt.Errorf("abi: cannot marshal in to go type: length insufficient %d require %d", len(data), at+32)
		}
		v, err := readWord(args[i].Type, kinds[i], data[at:at+32])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// unpack is args.UnpackValues(data), one value per argument, read word by word when every argument has a
// word kind (words not nil; see wordValues).
func unpack(args gethabi.Arguments, words []wordKind, data []byte) ([]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if words != nil {
		return wordValues(args, words, data)
	}
	values, err := args.UnpackValues(data)
	if err != nil {
		return nil, err
	}
	if len(values) != len(args) {
		return nil, errors.New("unpacked value count does not match the ABI")
	}
	return values, nil
}

// appendWord writes one word of kind k (of ABI type t) as JSON, as appendValue writes what readWord makes of
// it, without the Go value in between: a big.Int or a boxed integer for each integer argument were most of
// the allocations of decoding a block's events. It is false where readWord or appendValue would fail (an
// integer out of its type's range, a word that is not a boolean); the caller then takes the path through the
// values, whose errors are the reference. FuzzWordJSONMatchesValues holds the two equal.
func appendWord(buf []byte, t *gethabi.Type, k wordKind, word []byte) ([]byte, bool) {
	switch k {
	case wordAddress:
		return appendHex(buf, word[12:32]), true
	case wordBytes32:
		return appendHex(buf, word), true
	case wordBool:
		if v, ok := boolWord(word); ok {
			return strconv.AppendBool(buf, v), true
		}
	case wordInteger:
		return appendIntegerWord(buf, t, word)
	}
	return buf, false
}

// appendIntegerWord writes an intN or uintN word as a quoted decimal, or is false when the value does not fit
// N bits (go-ethereum's ReadInteger refuses it for N of 8 to 64, checkWidth for the other N below 256).
func appendIntegerWord(buf []byte, t *gethabi.Type, word []byte) ([]byte, bool) {
	var u uint256.Int
	u.SetBytes32(word)
	bits := t.Size
	neg := false
	if t.T == gethabi.IntTy {
		bits--
		if neg = word[0]&0x80 != 0; neg {
			u.Neg(&u) // the magnitude: two's complement, which leaves -2^255's 2^255
		}
	}
	if neg {
		// -2^bits is the least value: the magnitude less one fits bits.
		var less uint256.Int
		if less.SubUint64(&u, 1).BitLen() > bits {
			return buf, false
		}
	} else if u.BitLen() > bits {
		return buf, false
	}
	buf = append(buf, '"')
	if neg {
		buf = append(buf, '-')
	}
	buf = appendUint256(buf, &u)
	return append(buf, '"'), true
}

// appendUint256 writes u in decimal, as u.Dec() does, without a string: by 19 digits at a time.
func appendUint256(buf []byte, u *uint256.Int) []byte {
	if u.IsUint64() {
		return strconv.AppendUint(buf, u.Uint64(), 10)
	}
	var (
		parts [5]uint64 // 2^256 has 78 digits
		n     int
		q     = *u
		rem   uint256.Int
	)
	for !q.IsZero() {
		q.DivMod(&q, &tenTo19, &rem)
		parts[n] = rem.Uint64()
		n++
	}
	buf = strconv.AppendUint(buf, parts[n-1], 10)
	for i := n - 2; i >= 0; i-- {
		var digits [19]byte
		v := parts[i]
		for j := len(digits) - 1; j >= 0; j-- {
			digits[j] = byte('0' + v%10)
			v /= 10
		}
		buf = append(buf, digits[:]...)
	}
	return buf
}

var tenTo19 = *uint256.NewInt(10_000_000_000_000_000_000)
