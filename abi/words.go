package abi

import (
	"errors"
	"fmt"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
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
		for _, b := range word[:31] {
			if b != 0 {
				return nil, errBadBool
			}
		}
		switch word[31] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, errBadBool
	case wordBytes32:
		return [32]byte(word), nil
	}
	return nil, fmt.Errorf("abi: no word decoding for %s", t)
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
