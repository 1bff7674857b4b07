package abi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// Contract is the typed view of one registered ABI: its events and functions with their parameters, and
// decoders that return one Go value per parameter instead of a JSON object. It is what typed tables (one
// table per event or function, one column per parameter) are generated from and filled with. It is
// immutable and shared: do not modify it.
type Contract struct {
	// Name is the ABI's registry name.
	Name string
	// Hash is the hex SHA-256 of the ABI as it was compiled (after the normalisation of constructor,
	// fallback and unnamed tuple components), so that a changed file can be told from an unchanged one.
	Hash string
	// Events and Functions are sorted by name, then canonical signature.
	Events    []*EventSpec
	Functions []*FunctionSpec
}

// Kind is how a parameter's value is represented (see EventSpec.Values).
type Kind uint8

const (
	// KindInt and KindUint are intN and uintN: a *big.Int, range-checked against the declared width.
	KindInt Kind = iota + 1
	KindUint
	// KindAddress is a 20-byte []byte.
	KindAddress
	// KindBool is a bool.
	KindBool
	// KindBytes is bytes, bytesN or function: a []byte. An indexed parameter of a reference type (string,
	// bytes, array, tuple) is KindBytes as well: its topic holds only keccak256 of the value (Param.Hashed).
	KindBytes
	// KindString is a string. One that holds NUL or invalid UTF-8, which Postgres text and jsonb reject,
	// is its bytes' 0x-hex instead, as in Event.Args.
	KindString
	// KindJSON is an array or a tuple: a json.RawMessage by the rules of Event.Args.
	KindJSON
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindUint:
		return "uint"
	case KindAddress:
		return "address"
	case KindBool:
		return "bool"
	case KindBytes:
		return "bytes"
	case KindString:
		return "string"
	case KindJSON:
		return "json"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Param is one input of an event or function.
type Param struct {
	// Name is the name in the ABI; it may be empty.
	Name string
	// Type is the canonical ABI type, e.g. "uint256", "address[]", "(uint256,address)".
	Type string
	Kind Kind
	// Bits is the declared width of KindInt and KindUint (8…256).
	Bits int
	// Indexed is an event parameter carried in a topic.
	Indexed bool
	// Hashed is an indexed parameter of a reference type whose topic is keccak256 of the value.
	Hashed bool
}

// EventSpec is one event of a Contract.
type EventSpec struct {
	Name      string
	Signature string
	Topic0    common.Hash
	Anonymous bool
	// Topics is the number of topics a log of this event has (topic0 included unless anonymous).
	Topics int
	Params []Param
	d      *eventDecoder
}

// FunctionSpec is one function of a Contract.
type FunctionSpec struct {
	Name      string
	Signature string
	Selector  [4]byte
	Params    []Param
	d         *methodDecoder
}

// Contract returns the typed view of the ABI registered as name.
func (r *Registry) Contract(name string) (*Contract, bool) {
	c, ok := r.snapshot().byName[name]
	if !ok {
		return nil, false
	}
	return c.contract, true
}

// Values decodes l by this event into one value per parameter (see Kind for the Go types), appended to
// dst[:0]. The caller has matched topic0 and the topic count; an error means the data or topics do not fit
// the event. Never panics.
func (e *EventSpec) Values(l Log, dst []any) (out []any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("go-ethereum abi panicked: %v", p)
		}
	}()
	if len(l.Topics) != e.Topics {
		return nil, fmt.Errorf("%s: %d topics, want %d", e.Signature, len(l.Topics), e.Topics)
	}
	if out, ok := e.valuesByWords(l, dst); ok {
		return out, nil
	}
	return e.valuesByGoEthereum(l, dst)
}

// valuesByWords is Values for an event whose arguments each take one word, read from the words (wordValue);
// false for any other event and wherever a word would not decode, which valuesByGoEthereum then reports.
func (e *EventSpec) valuesByWords(l Log, dst []any) ([]any, bool) {
	d := e.d
	if d.dataWords == nil && len(d.data) > 0 || len(l.Data) < 32*len(d.data) {
		return nil, false
	}
	out := dst[:0]
	for i := range d.fields {
		f := &d.fields[i]
		var v any
		ok := true
		switch {
		case !f.indexed:
			at := 32 * f.dataIdx
			v, ok = wordValue(f.n.t, d.dataWords[f.dataIdx], l.Data[at:at+32])
		case f.hashed:
			v = l.Topics[f.topic].Bytes()
		case f.word != wordOther:
			v, ok = wordValue(f.n.t, f.word, l.Topics[f.topic][:])
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// valuesByGoEthereum is Values through go-ethereum's values (or readWord's) and typedValue.
func (e *EventSpec) valuesByGoEthereum(l Log, dst []any) (out []any, err error) {
	d := e.d
	values, err := d.dataValues(l.Data)
	if err != nil {
		return nil, err
	}
	out = dst[:0]
	for i := range d.fields {
		f := &d.fields[i]
		if !f.indexed {
			v, err := typedValue(f.n, values[f.dataIdx])
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i, err)
			}
			out = append(out, v)
			continue
		}
		topic := l.Topics[f.topic]
		if f.hashed {
			out = append(out, topic.Bytes())
			continue
		}
		tv, err := f.topicValue(topic[:])
		if err != nil {
			return nil, fmt.Errorf("indexed argument %d: %w", i, err)
		}
		v, err := typedValue(f.n, tv)
		if err != nil {
			return nil, fmt.Errorf("indexed argument %d: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Values decodes calldata (selector included) by this function into one value per parameter, appended to
// dst[:0]. Never panics.
func (f *FunctionSpec) Values(input []byte, dst []any) (out []any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("go-ethereum abi panicked: %v", p)
		}
	}()
	if len(input) < 4 || [4]byte(input[:4]) != f.Selector {
		return nil, fmt.Errorf("%s: input does not start with selector %x", f.Signature, f.Selector)
	}
	if out, ok := f.valuesByWords(input[4:], dst); ok {
		return out, nil
	}
	return f.valuesByGoEthereum(input[4:], dst)
}

// valuesByWords is EventSpec.valuesByWords for calldata (after the selector).
func (f *FunctionSpec) valuesByWords(data []byte, dst []any) ([]any, bool) {
	d := f.d
	if d.words == nil && len(d.inputs) > 0 || len(data) < 32*len(d.inputs) {
		return nil, false
	}
	out := dst[:0]
	for i := range d.fields {
		v, ok := wordValue(d.fields[i].n.t, d.words[i], data[32*i:32*i+32])
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// valuesByGoEthereum is Values through go-ethereum's values (or readWord's) and typedValue.
func (f *FunctionSpec) valuesByGoEthereum(data []byte, dst []any) (out []any, err error) {
	d := f.d
	values, err := d.values(data)
	if err != nil {
		return nil, err
	}
	out = dst[:0]
	for i := range d.fields {
		v, err := typedValue(d.fields[i].n, values[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func newEventSpec(d *eventDecoder) *EventSpec {
	e := &EventSpec{Name: d.name, Signature: d.sig, Topic0: d.topic0, Anonymous: d.anonymous, Topics: int(d.ntopics), d: d}
	for _, f := range d.fields {
		e.Params = append(e.Params, paramOf(f))
	}
	return e
}

func newFunctionSpec(d *methodDecoder) *FunctionSpec {
	f := &FunctionSpec{Name: d.name, Signature: d.sig, Selector: d.selector, d: d}
	for _, fl := range d.fields {
		f.Params = append(f.Params, paramOf(fl))
	}
	return f
}

func paramOf(f field) Param {
	t := f.n.t
	p := Param{Name: f.name, Type: t.String(), Indexed: f.indexed, Hashed: f.hashed}
	switch {
	case f.hashed:
		p.Kind = KindBytes
	case t.T == gethabi.IntTy:
		p.Kind, p.Bits = KindInt, t.Size
	case t.T == gethabi.UintTy:
		p.Kind, p.Bits = KindUint, t.Size
	case t.T == gethabi.AddressTy:
		p.Kind = KindAddress
	case t.T == gethabi.BoolTy:
		p.Kind = KindBool
	case t.T == gethabi.StringTy:
		p.Kind = KindString
	case t.T == gethabi.BytesTy, t.T == gethabi.FixedBytesTy, t.T == gethabi.FunctionTy, t.T == gethabi.HashTy:
		p.Kind = KindBytes
	default:
		p.Kind = KindJSON
	}
	return p
}

// sortSpecs orders a contract's entries by name, then signature, so that generated tables come out in the
// same order on every run (go-ethereum keeps them in maps).
func (c *Contract) sortSpecs() {
	slices.SortFunc(c.Events, func(a, b *EventSpec) int {
		return cmpNameSig(a.Name, a.Signature, b.Name, b.Signature)
	})
	slices.SortFunc(c.Functions, func(a, b *FunctionSpec) int {
		return cmpNameSig(a.Name, a.Signature, b.Name, b.Signature)
	})
}

func cmpNameSig(an, as, bn, bs string) int {
	if c := strings.Compare(an, bn); c != 0 {
		return c
	}
	return strings.Compare(as, bs)
}

func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// wordValue is typedValue of readWord's value for one word of kind k, without that value (a big.Int and a
// boxed integer, or a boxed address, each): false where either would fail.
func wordValue(t *gethabi.Type, k wordKind, word []byte) (any, bool) {
	switch k {
	case wordAddress:
		return bytes.Clone(word[12:32]), true
	case wordBytes32:
		return bytes.Clone(word), true
	case wordBool:
		if v, ok := boolWord(word); ok {
			return v, true
		}
	case wordInteger:
		x := new(big.Int).SetBytes(word)
		if t.T == gethabi.IntTy && word[0]&0x80 != 0 {
			x.Sub(x, twoTo256)
		}
		if checkWidth(t, x) != nil {
			return nil, false
		}
		return x, true
	}
	return nil, false
}

var twoTo256 = new(big.Int).Lsh(big.NewInt(1), 256)

// typedValue converts what go-ethereum unpacked for n into the Go type of its Kind.
func typedValue(n *node, v any) (any, error) {
	t := n.t
	switch t.T {
	case gethabi.IntTy, gethabi.UintTy:
		x, err := bigOf(v)
		if err != nil {
			return nil, fmt.Errorf("%w for ABI type %s", err, t)
		}
		if err := checkWidth(t, x); err != nil {
			return nil, err
		}
		return x, nil
	case gethabi.BoolTy:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case gethabi.AddressTy:
		if x, ok := v.(common.Address); ok {
			return x.Bytes(), nil
		}
	case gethabi.StringTy:
		if x, ok := v.(string); ok {
			if !utf8.ValidString(x) || containsNUL(x) {
				return "0x" + hex.EncodeToString([]byte(x)), nil
			}
			return x, nil
		}
	case gethabi.BytesTy:
		if x, ok := v.([]byte); ok {
			return slices.Clone(x), nil
		}
	case gethabi.FixedBytesTy, gethabi.FunctionTy, gethabi.HashTy:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
			out := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(out), rv)
			return out, nil
		}
	default:
		b, err := appendValue(nil, n, v)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(b), nil
	}
	return nil, fmt.Errorf("unexpected Go value %T for ABI type %s", v, t)
}

func bigOf(v any) (*big.Int, error) {
	switch x := v.(type) {
	case *big.Int:
		if x == nil {
			return nil, errors.New("nil integer")
		}
		return x, nil
	case uint8:
		return new(big.Int).SetUint64(uint64(x)), nil
	case uint16:
		return new(big.Int).SetUint64(uint64(x)), nil
	case uint32:
		return new(big.Int).SetUint64(uint64(x)), nil
	case uint64:
		return new(big.Int).SetUint64(x), nil
	case int8:
		return big.NewInt(int64(x)), nil
	case int16:
		return big.NewInt(int64(x)), nil
	case int32:
		return big.NewInt(int64(x)), nil
	case int64:
		return big.NewInt(x), nil
	}
	return nil, fmt.Errorf("unexpected Go value %T", v)
}
