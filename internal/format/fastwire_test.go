package format

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// sameAsWire holds the fast path to the reflective one on value: when decodeBundleFast accepts it,
// unmarshalWire decodes it without error into the same structs. It reports whether the fast path took it.
func sameAsWire(t *testing.T, value []byte) bool {
	t.Helper()
	return sameFast(t, value, bundleStruct.read)
}

// sameAsWireETL is sameAsWire for the ethereum-etl items that have a fast path (transactions and logs); it
// reports false for every other item.
func sameAsWireETL(t *testing.T, value []byte) bool {
	t.Helper()
	typ, _ := sniffType(value)
	switch typ {
	case etlTypeTransaction:
		return sameFast(t, value, etlTxStruct.read)
	case etlTypeLog:
		return sameFast(t, value, etlLogStruct.read)
	}
	return false
}

// sameFast is sameAsWire for the wire struct T that read reads.
func sameFast[T any](t *testing.T, value []byte, read func(*fastReader, *T)) bool {
	t.Helper()
	var fast, wire T
	if !fastDecode(value, func(f *fastReader) { read(f, &fast) }) {
		return false
	}
	if err := unmarshalWire(value, &wire); err != nil {
		t.Fatalf("the fast path decoded what unmarshalWire refuses (%v):\n%.300s", err, value)
	}
	if !reflect.DeepEqual(fast, wire) {
		t.Fatalf("the fast path decoded\n%+v\nunmarshalWire\n%+v\nfrom %.300s", fast, wire, value)
	}
	return true
}

// tracesBundle is a bundle part of go-ethereum's callTracer fixtures: every real mainnet call tree of them.
func tracesBundle(t *testing.T) []byte {
	files, err := filepath.Glob(filepath.Join(callTracerDir, "*.json"))
	if err != nil || len(files) < 10 {
		t.Fatalf("%d callTracer fixtures (%v)", len(files), err)
	}
	var b bytes.Buffer
	b.WriteString(`{"traces": [`)
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c callTracerCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"txHash": "0x` + strings.Repeat("0a", 32) + `", "result": `)
		b.Write(c.Result)
		b.WriteString("}")
	}
	b.WriteString(`, {"txHash": "0x` + strings.Repeat("0b", 32) + `", "error": "execution timeout", "result": null}]}`)
	return b.Bytes()
}

// TestFastWireTakesNodeOutput: what nodes, the producers and ethereum-etl write takes the fast path, and decodes into
// exactly what the reflective path makes of it. A fast path that gave up on everything would pass the fuzz
// target's comparison and make nothing faster; this is what catches that.
func TestFastWireTakesNodeOutput(t *testing.T) {
	mainnet, err := BundleFromETLItems(etlItems17173049(t))
	if err != nil {
		t.Fatal(err)
	}
	geth, _ := gethTypesBundle(t)
	for name, value := range map[string][]byte{
		"mainnet block 17173049 (116 transactions, 271 logs, withdrawals)": mainnet,
		"mainnet block 483920 (pre-Byzantium receipts)":                    bundle483920(t),
		"every transaction type, go-ethereum's encoders":                   geth,
		"filtered, logs only":  filtered483920(t, false, nil),
		"filtered, with calls": filtered483920(t, true, nil),
		"callTracer fixtures":  tracesBundle(t),
	} {
		if !sameAsWire(t, value) {
			t.Errorf("%s: not taken by the fast path", name)
		}
	}
	fast := map[string]int{}
	for _, item := range etlItems17173049(t) {
		typ, _ := sniffType(item)
		if sameAsWireETL(t, item) {
			fast[typ]++
		}
	}
	if fast[etlTypeTransaction] != 116 || fast[etlTypeLog] != 271 {
		t.Errorf("ethereum-etl items of block 17173049 taken by the fast path: %v, want its 116 transactions and 271 logs", fast)
	}
}

// TestFastWireGivesUp: what only the reflective path reads the same as encoding/json (letter case of
// names, escapes, duplicates, the hex that go-ethereum's types accept besides "0x…", values of other
// types) is left to it, and Decode's result does not depend on the path.
func TestFastWireGivesUp(t *testing.T) {
	base := string(bundle483920(t))
	// Its names learned first, so that what follows is given up on whatever the structs learned.
	if !sameAsWire(t, []byte(base)) {
		t.Fatal("block 483920: not taken by the fast path")
	}
	for _, c := range []struct{ name, from, to string }{
		{"a name in other case", `"cumulativeGasUsed"`, `"CUMULATIVEGASUSED"`},
		{"an escaped name", `"cumulativeGasUsed"`, `"cumulativeGasUs\u0065d"`},
		{"a name given twice", `"gasUsed":`, `"gasUsed":"0x1","gasUsed":`},
		{"an escape in a quantity", `"blockNumber":"0x76250"`, `"blockNumber":"0x7625\u0030"`},
		{"an escape in a hash", `"transactionHash":"0x463d`, `"transactionHash":"0x\u0034\u00363d`},
		{"an escaped quote in a hash", `"transactionHash":"0x463d`, `"transactionHash":"0x\"63d`},
		{"a hash two digits short", `"transactionHash":"0x463d`, `"transactionHash":"0x3d`},
		{"a hash two digits long", `"transactionHash":"0x463d`, `"transactionHash":"0x00463d`},
		{"an upper-case prefix", `"blockNumber":"0x`, `"blockNumber":"0X`},
		{"an empty quantity string", `"status":null`, `"status":""`},
		{"a leading zero", `"transactionIndex":"0x`, `"transactionIndex":"0x0`},
		{"a number, not a string", `"transactionIndex":"0x2"`, `"transactionIndex":2`},
		{"a non-ASCII name", `"cumulativeGasUsed"`, `"cumulativeGasUséd"`},
		{"a null transaction", `"transactions": [`, `"transactions": [null,`},
		{"a fifth topic", `"topics":[`, `"topics":["0x` + strings.Repeat("00", 32) + `",` + strings.Repeat(`"0x`+strings.Repeat("11", 32)+`",`, 4)},
		{"trailing data", "", ""},
		// The scanner's own refusals: JSON that is not, and JSON it leaves to the reflective path.
		{"a trailing comma", `"status":null`, `"status":null,}`},
		{"a missing colon", `"status":null`, `"status" null`},
		{"a bad literal", `"status":null`, `"status":nul`},
		{"a control character in a name", `"cumulativeGasUsed"`, "\"cumulative\tGasUsed\""},
		{"a control character in an unknown string", `"status":null`, "\"status\":null,\"extra\":\"a\tb\""},
		{"an escape in an unknown string", `"status":null`, `"status":null,"extra":"a\nb"`},
		{"a leading zero in an unknown number", `"status":null`, `"status":null,"extra":01`},
		{"a bare fraction in an unknown number", `"status":null`, `"status":null,"extra":1.`},
		{"a comma before the first element", `"topics":[`, `"topics":[,`},
		{"a mismatched bracket", `"status":null`, `"status":null,"extra":[1}`},
	} {
		value := strings.Replace(base, c.from, c.to, 1)
		if c.from == "" {
			value = base + " {}"
		}
		if value == base {
			t.Fatalf("%s: %s not in the bundle", c.name, c.from)
		}
		var msg bundleMsg
		if decodeBundleFast([]byte(value), &msg) {
			t.Errorf("%s: taken by the fast path", c.name)
		}
		checkDecoded(t, Bundle, nil, []byte(value))
	}
	// Unknown members of any valid shape are skipped, not given up on.
	value := strings.Replace(base, `"status":null`, `"status":null,"extra":{"a":[1,-2.5e3,0,true,false,null,"x",{}],"b":[]} `, 1)
	if !sameAsWire(t, []byte(value)) {
		t.Error("an unknown member with nested values: not taken by the fast path")
	}
}

// TestFastStructsLearnTheOrder: the order of a node's members, whatever it is, is learned from the objects
// read and then followed: decoding the same message again learns nothing. Every object with its members in
// another order (here reversed) decodes as on the reflective path, concurrently with others too. A struct
// whose order stopped changing also shows that each of its objects' names is found in it, in order.
func TestFastStructsLearnTheOrder(t *testing.T) {
	mainnet, err := BundleFromETLItems(etlItems17173049(t)) // alphabetical, as encoding/json writes maps
	if err != nil {
		t.Fatal(err)
	}
	geth, _ := gethTypesBundle(t) // go-ethereum's own order
	orders := []func() *[]orderedName{bundleStruct.order.Load, blockStruct.order.Load, headerStruct.order.Load,
		txStruct.order.Load, withdrawalStruct.order.Load, receiptStruct.order.Load, logStruct.order.Load,
		traceResultStruct.order.Load, frameStruct.order.Load}
	values := [][]byte{mainnet, reversedMembers(t, mainnet), geth, reversedMembers(t, geth), tracesBundle(t),
		reversedMembers(t, tracesBundle(t))}
	for i, value := range values {
		// An object learns only over the order it started from, so one of a call frame's calls that learns
		// first defers its parent's learning to the next message: a few passes, then nothing new.
		for pass := 0; ; pass++ {
			var before []*[]orderedName
			for _, order := range orders {
				before = append(before, order())
			}
			if !sameAsWire(t, value) {
				t.Fatalf("value %d: not taken by the fast path", i)
			}
			changed := -1
			for j, order := range orders {
				if order() != before[j] {
					changed = j
				}
			}
			if changed < 0 {
				break
			}
			if pass == 4 {
				t.Fatalf("value %d: struct %d still learning after %d passes over the same objects: %v", i,
					changed, pass+1, *orders[changed]())
			}
		}
	}

	want := make([]bundleMsg, len(values))
	for i, value := range values {
		if err := unmarshalWire(value, &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := range 20 {
				i := (w + n) % len(values)
				var got bundleMsg
				if !decodeBundleFast(values[i], &got) || !reflect.DeepEqual(got, want[i]) {
					t.Errorf("worker %d: value %d not decoded as on the reflective path", w, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// reversedMembers rewrites a JSON value with the members of each of its objects in reverse order.
func reversedMembers(t *testing.T, value []byte) []byte {
	t.Helper()
	dec := jsontext.NewDecoder(bytes.NewReader(value))
	var out bytes.Buffer
	var rewrite func()
	rewrite = func() {
		switch dec.PeekKind() {
		case '{':
			if _, err := dec.ReadToken(); err != nil {
				t.Fatal(err)
			}
			var members [][]byte
			for dec.PeekKind() != '}' {
				name, err := dec.ReadValue()
				if err != nil {
					t.Fatal(err)
				}
				member := append(slices.Clone([]byte(name)), ':')
				start := out.Len()
				rewrite()
				members = append(members, append(member, out.Bytes()[start:]...))
				out.Truncate(start)
			}
			if _, err := dec.ReadToken(); err != nil {
				t.Fatal(err)
			}
			slices.Reverse(members)
			out.WriteString("{" + string(bytes.Join(members, []byte(","))) + "}")
		case '[':
			if _, err := dec.ReadToken(); err != nil {
				t.Fatal(err)
			}
			out.WriteByte('[')
			for n := 0; dec.PeekKind() != ']'; n++ {
				if n > 0 {
					out.WriteByte(',')
				}
				rewrite()
			}
			if _, err := dec.ReadToken(); err != nil {
				t.Fatal(err)
			}
			out.WriteByte(']')
		default:
			v, err := dec.ReadValue()
			if err != nil {
				t.Fatal(err)
			}
			out.Write(v)
		}
	}
	rewrite()
	if bytes.Equal(out.Bytes(), value) {
		t.Fatal("reversedMembers changed nothing")
	}
	return out.Bytes()
}

func BenchmarkDecodeBundleReflective(b *testing.B) {
	bundle, err := BundleFromETLItems(etlItems17173049(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bundle)))
	b.ReportAllocs()
	for b.Loop() {
		var msg bundleMsg
		if err := unmarshalWire(bundle, &msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFastFieldsAreTheStructs: each fast reader's list of names is its struct's JSON names, so that a field
// added to a wire struct and not to its fast reader is not skipped unnoticed (the fixtures may not have it).
func TestFastFieldsAreTheStructs(t *testing.T) {
	for _, c := range []struct {
		list map[string]struct{}
		of   any
	}{
		{bundleStruct.folded, bundleMsg{}}, {blockStruct.folded, rpcBlock[rpcTx, rpcWithdrawal]{}},
		{headerStruct.folded, rpcBlock[hash, rpcWithdrawal]{}}, {txStruct.folded, rpcTx{}},
		{withdrawalStruct.folded, rpcWithdrawal{}}, {receiptStruct.folded, rpcReceipt[rpcLog]{}},
		{logStruct.folded, rpcLog{}}, {traceResultStruct.folded, rpcTraceResult{}}, {frameStruct.folded, rpcCallFrame{}},
		{etlTxStruct.folded, etlTx{}}, {etlLogStruct.folded, etlLog{}},
	} {
		want := map[string]struct{}{}
		var add func(reflect.Type)
		add = func(typ reflect.Type) {
			for i := range typ.NumField() {
				f := typ.Field(i)
				if f.Anonymous {
					add(f.Type)
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				want[strings.ToLower(name)] = struct{}{}
			}
		}
		add(reflect.TypeOf(c.of))
		if !maps.Equal(c.list, want) {
			t.Errorf("%T: the fast path reads %v, the struct has %v", c.of, slices.Sorted(maps.Keys(c.list)),
				slices.Sorted(maps.Keys(want)))
		}
	}
}

// TestFastItemTypeReadsAnyKeyOrder: an item whose "type" is not its first key (a producer that re-encodes
// items through a map writes them in alphabetical order) has its type read in one pass, the last one as
// encoding/json keeps it; anything unusual is left to itemType.
func TestFastItemTypeReadsAnyKeyOrder(t *testing.T) {
	t.Parallel()
	for i, item := range etlItems17173049(t) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(item, &m); err != nil {
			t.Fatal(err)
		}
		sorted, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, derr := itemType(item)
		got, ok := fastItemType(sorted)
		if derr != nil || !ok || got != want {
			t.Fatalf("item %d: %q, %v; want %q", i, got, ok, want)
		}
	}
	for _, tc := range []struct {
		item string
		typ  string // "" when it is left to itemType
	}{
		{`{"log_index":1,"type":"log"}`, "log"},
		{`{"type":"log","x":[{"type":"block"}],"type":"transaction"}`, "transaction"},
		{`{"log_index":1,"TYPE":"log"}`, ""},
		{`{"log_index":1,"type":"log","Type":"block"}`, ""},
		{`{"type":"log","type":null}`, ""},
		{`{"type":"lo\u0067"}`, ""},
		{`{"log_index":1}`, ""},
		{`{"type":"log"} x`, ""},
		{`["type","log"]`, ""},
	} {
		got, ok := fastItemType([]byte(tc.item))
		if ok != (tc.typ != "") || got != tc.typ && ok {
			t.Errorf("%s: %q, %v; want %q", tc.item, got, ok, tc.typ)
		}
		if want, err := itemType([]byte(tc.item)); ok && (err != nil || want != got) {
			t.Errorf("%s: %q, itemType %q (%v)", tc.item, got, want, err)
		}
	}
}
