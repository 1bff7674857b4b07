package abi

import (
	"bytes"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// fuzzBound is bound to TrueBlocks' maker-v1 ABI (anonymous LogNote) so the
// fuzzer reaches the bound and anonymous paths.
var fuzzBound = common.HexToAddress("0x00000000000000000000000000000000000f0220")

// fuzzRegistry: the defaults plus every TrueBlocks ABI and the kitchen ABI,
// for as many argument shapes (tuples, nested arrays, strings) as we have.
var fuzzRegistry = sync.OnceValues(func() (*Registry, error) {
	r, err := Default()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(tbABIDir + "/known-*/*.json")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := r.Add(strings.TrimSuffix(filepath.Base(f), ".json"), b); err != nil {
			return nil, err
		}
	}
	if err := r.Add("Kitchen", []byte(kitchenABI)); err != nil {
		return nil, err
	}
	if err := r.BindContracts(strings.NewReader(`{"` + fuzzBound.Hex() + `":"maker-v1"}`)); err != nil {
		return nil, err
	}
	return r, nil
})

func fuzzReg(t testing.TB) *Registry {
	r, err := fuzzRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// splitTopics turns fuzz bytes into up to 5 topics (one more than the EVM
// allows, to cover that check); a short last chunk is left-padded.
func splitTopics(b []byte) []common.Hash {
	var out []common.Hash
	for len(b) > 0 && len(out) < 5 {
		n := min(32, len(b))
		out = append(out, common.BytesToHash(b[:n]))
		b = b[n:]
	}
	return out
}

func joinTopics(ts []common.Hash) []byte {
	var b []byte
	for _, t := range ts {
		b = append(b, t[:]...)
	}
	return b
}

func fixtureSeedLogs(t testing.TB) []Log {
	var out []Log
	for _, l := range loadETLLogs(t, blockDir+"/expected_logs.json") {
		out = append(out, l.Log)
	}
	for _, l := range loadReceiptLogs(t, etlDir+"/test_export_receipts_job/receipts_with_logs") {
		out = append(out, l.Log)
	}
	gold, _ := filepath.Glob(tbDir + "/tests/gold/tools/getTrans/*.txt")
	for _, g := range gold {
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				if _, ok := x["topics"]; ok {
					out = append(out, logFromMap(t, x).Log)
				}
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(readGold(t, g))
	}
	return out
}

// checkArgs holds for every successful decode: valid JSON that jsonb accepts.
func checkArgs(t *testing.T, args []byte) {
	if !json.Valid(args) || !utf8.Valid(args) {
		t.Fatalf("invalid JSON: %q", args)
	}
	if bytes.Contains(args, []byte(`\u0000`)) {
		t.Fatalf("jsonb rejects \\u0000: %s", args)
	}
}

func FuzzDecodeLog(f *testing.F) {
	for _, l := range fixtureSeedLogs(f) {
		f.Add(joinTopics(l.Topics), l.Data, false)
	}
	f.Add(common.FromHex("0xa9059cbb00000000000000000000000000000000000000000000000000000000"), []byte{}, true)
	kl, _ := kitchenSamples(f)
	f.Add(joinTopics(kl.Topics), kl.Data, false)
	f.Fuzz(func(t *testing.T, topics, data []byte, bound bool) {
		r := fuzzReg(t)
		l := Log{Topics: splitTopics(topics), Data: data}
		if bound {
			l.Address = fuzzBound
		}
		ev, ok, err := r.DecodeLog(l)
		if err != nil {
			if !ok {
				t.Fatalf("error with ok=false: %v", err)
			}
			if strings.Contains(err.Error(), "panicked") {
				t.Fatalf("recovered panic: %v", err)
			}
			return
		}
		if !ok {
			return
		}
		checkArgs(t, ev.Args)
		ev2, _, _ := r.DecodeLog(l)
		if !bytes.Equal(ev.Args, ev2.Args) {
			t.Fatal("decoding is not deterministic")
		}
	})
}

func FuzzDecodeCall(f *testing.F) {
	for _, tx := range loadETLTransactions(f, blockDir+"/expected_transactions.json") {
		f.Add(tx.Input, false)
	}
	gold, _ := filepath.Glob(tbDir + "/tests/gold/tools/getTrans/*.txt")
	for _, g := range gold {
		for _, v := range readGold(f, g) {
			if m, ok := v.(map[string]any); ok {
				if s, ok := m["input"].(string); ok {
					f.Add(mustHex(f, s), false)
				}
			}
		}
	}
	_, kin := kitchenSamples(f)
	f.Add(kin, false)
	f.Fuzz(func(t *testing.T, input []byte, bound bool) {
		r := fuzzReg(t)
		to := common.Address{1}
		if bound {
			to = fuzzBound
		}
		c, ok, err := r.DecodeCall(&to, input)
		if err != nil {
			if !ok {
				t.Fatalf("error with ok=false: %v", err)
			}
			if strings.Contains(err.Error(), "panicked") {
				t.Fatalf("recovered panic: %v", err)
			}
			return
		}
		if ok {
			checkArgs(t, c.Args)
		}
		if _, ok, err := r.DecodeCall(nil, input); ok || err != nil {
			t.Fatal("contract creation decoded")
		}
	})
}

func FuzzTokenTransfers(f *testing.F) {
	for _, l := range fixtureSeedLogs(f) {
		f.Add(joinTopics(l.Topics), l.Data)
	}
	single, batch := erc1155Event(f, "TransferSingle"), erc1155Event(f, "TransferBatch")
	d, _ := single.Inputs.NonIndexed().Pack(big.NewInt(7), big.NewInt(9))
	f.Add(joinTopics([]common.Hash{single.ID, {1}, {2}, {3}}), d)
	d, _ = batch.Inputs.NonIndexed().Pack([]*big.Int{big.NewInt(1), big.NewInt(2)}, []*big.Int{big.NewInt(3), big.NewInt(4)})
	f.Add(joinTopics([]common.Hash{batch.ID, {1}, {2}, {3}}), d)
	f.Fuzz(func(t *testing.T, topics, data []byte) {
		l := Log{Address: common.Address{7}, Topics: splitTopics(topics), Data: data}
		trs, err := TokenTransfers(l)
		if err != nil {
			if strings.Contains(err.Error(), "panicked") {
				t.Fatalf("recovered panic: %v", err)
			}
			if trs != nil {
				t.Fatal("transfers returned with an error")
			}
			return
		}
		for i, tr := range trs {
			if tr.Value == nil || tr.Value.Sign() < 0 || tr.Token != l.Address {
				t.Fatalf("bad transfer %+v", tr)
			}
			switch tr.Standard {
			case StandardERC20:
				if tr.TokenID != nil || len(trs) != 1 {
					t.Fatalf("bad erc20 %+v", tr)
				}
			case StandardERC721:
				if tr.TokenID == nil || tr.Value.Cmp(bigOne) != 0 || len(trs) != 1 {
					t.Fatalf("bad erc721 %+v", tr)
				}
			case StandardERC1155:
				if tr.TokenID == nil || tr.BatchIndex != i {
					t.Fatalf("bad erc1155 %+v", tr)
				}
			default:
				t.Fatalf("bad standard %q", tr.Standard)
			}
		}
		// Whatever TokenTransfers accepts, the default registry decodes.
		if len(trs) > 0 {
			reg, err := defaultABIsRegistry()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := reg.DecodeLog(l); !ok || err != nil {
				t.Fatalf("TokenTransfers accepted a log DecodeLog rejects: ok=%v err=%v", ok, err)
			}
		}
	})
}

var defaultABIsRegistry = sync.OnceValues(Default)

// FuzzWordsMatchGoEthereum: for every event and function of the fuzz registry's ABIs (the built-in ones and
// the kitchen ABI), readWord decodes a topic and wordValues an event's data or a call's arguments exactly as
// go-ethereum's UnpackValues does: the same Go values, or the same error.
func FuzzWordsMatchGoEthereum(f *testing.F) {
	for _, l := range fixtureSeedLogs(f) {
		if len(l.Topics) > 1 {
			f.Add(l.Topics[1].Bytes(), l.Data)
		}
	}
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x80}, 100))
	f.Add(append(make([]byte, 31), 2), append(make([]byte, 31), 2)) // not a boolean, in a topic and in data
	f.Add(make([]byte, 32), make([]byte, 31))                       // data a byte short
	var decoders []*eventDecoder
	var methods []*methodDecoder
	idx := fuzzReg(f).snapshot()
	for _, ds := range idx.events {
		decoders = append(decoders, ds...)
	}
	for _, ms := range idx.methods {
		methods = append(methods, ms...)
	}
	if len(decoders) < 20 || len(methods) < 20 {
		f.Fatalf("%d event decoders, %d method decoders", len(decoders), len(methods))
	}
	f.Fuzz(func(t *testing.T, word, data []byte) {
		word = common.LeftPadBytes(word, 32)[:32]
		for _, d := range decoders {
			for i := range d.fields {
				fl := &d.fields[i]
				if fl.word == wordOther {
					continue
				}
				got, gerr := readWord(fl.single[0].Type, fl.word, word)
				want, werr := fl.single.UnpackValues(word)
				sameValues(t, d.sig, []any{got}, gerr, want, werr)
			}
			if d.dataWords != nil {
				got, gerr := wordValues(d.data, d.dataWords, data)
				want, werr := d.data.UnpackValues(data)
				sameValues(t, d.sig, got, gerr, want, werr)
			}
		}
		for _, m := range methods {
			if m.words != nil {
				got, gerr := wordValues(m.inputs, m.words, data)
				want, werr := m.inputs.UnpackValues(data)
				sameValues(t, m.sig, got, gerr, want, werr)
			}
		}
	})
}

// FuzzWordJSONMatchesValues: for every event and function of the fuzz registry's ABIs whose arguments each
// take one word, the JSON written from the words (decodeWords) is the JSON written from go-ethereum's values
// (decodeValues), and so are the typed tables' values (valuesByWords, valuesByGoEthereum); the words' path is
// taken exactly when the values' path has no error.
func FuzzWordJSONMatchesValues(f *testing.F) {
	for _, l := range fixtureSeedLogs(f) {
		if len(l.Topics) > 1 {
			f.Add(l.Topics[1].Bytes(), l.Data)
		}
	}
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x80}, 100))
	f.Add(append([]byte{0x80}, make([]byte, 31)...), append([]byte{0x80}, make([]byte, 95)...)) // -2^255
	f.Add(append(make([]byte, 31), 2), append(make([]byte, 31), 2))
	f.Add(make([]byte, 32), make([]byte, 31))
	var events []*eventDecoder
	var methods []*methodDecoder
	idx := fuzzReg(f).snapshot()
	for _, ds := range idx.events {
		for _, d := range ds {
			if d.dataWords != nil || len(d.data) == 0 {
				events = append(events, d)
			}
		}
	}
	for _, ms := range idx.methods {
		for _, m := range ms {
			if m.words != nil || len(m.inputs) == 0 {
				methods = append(methods, m)
			}
		}
	}
	if len(events) < 20 || len(methods) < 20 {
		f.Fatalf("%d event decoders, %d method decoders by words", len(events), len(methods))
	}
	f.Fuzz(func(t *testing.T, word, data []byte) {
		word = common.LeftPadBytes(word, 32)[:32]
		// The events' args share a small slab, as a message's do (ArgsSlab): each must still be what it was
		// when written once all of them are.
		slab := &ArgsSlab{Next: 256}
		type written struct {
			sig       string
			got, want []byte
		}
		var all []written
		defer func() {
			for _, w := range all {
				if !bytes.Equal(w.got, w.want) {
					t.Fatalf("%s: args %s changed to %s on the slab", w.sig, w.want, w.got)
				}
			}
		}()
		for _, d := range events {
			l := Log{Topics: []common.Hash{d.topic0}, Data: data}
			for range d.ntopics - 1 {
				l.Topics = append(l.Topics, common.Hash(word))
			}
			byWords := true
			for i := range d.fields {
				if fl := &d.fields[i]; fl.indexed && !fl.hashed && fl.word == wordOther {
					byWords = false
				}
			}
			got, ok := d.decodeWords(l, slab)
			want, err := d.decodeValues(l)
			sameJSON(t, d.sig, byWords, got, ok, want, err)
			if ok {
				all = append(all, written{d.sig, got, bytes.Clone(got)})
			}
			e := newEventSpec(d)
			gotValues, ok := e.valuesByWords(l, nil)
			wantValues, err := e.valuesByGoEthereum(l, nil)
			sameTyped(t, d.sig, byWords, gotValues, ok, wantValues, err)
		}
		for _, m := range methods {
			got, ok := m.decodeWords(data)
			want, err := m.decodeValues(data)
			sameJSON(t, m.sig, true, got, ok, want, err)
			fn := newFunctionSpec(m)
			gotValues, ok := fn.valuesByWords(data, nil)
			wantValues, err := fn.valuesByGoEthereum(data, nil)
			sameTyped(t, m.sig, true, gotValues, ok, wantValues, err)
		}
	})
}

// sameTyped is sameJSON for the typed tables' values (Values): equal values, integers by value.
func sameTyped(t *testing.T, sig string, byWords bool, got []any, ok bool, want []any, err error) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("%s: typed values %v from the words where go-ethereum's fail: %v", sig, got, err)
	case byWords && !ok && err == nil:
		t.Fatalf("%s: no typed values from the words, %v from go-ethereum's", sig, want)
	case !ok:
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d typed values from the words, %d from go-ethereum's", sig, len(got), len(want))
	}
	for i := range got {
		g, gok := got[i].(*big.Int)
		w, wok := want[i].(*big.Int)
		if gok != wok || gok && g.Cmp(w) != 0 || !gok && !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: typed value %d is %#v from the words, %#v from go-ethereum's", sig, i, got[i], want[i])
		}
	}
}

func sameJSON(t *testing.T, sig string, byWords bool, got []byte, ok bool, want []byte, err error) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("%s: written from the words as %s where the values fail: %v", sig, got, err)
	case ok && !bytes.Equal(got, want):
		t.Fatalf("%s: %s from the words, %s from the values", sig, got, want)
	case byWords && !ok && err == nil:
		t.Fatalf("%s: not written from the words, %s from the values", sig, want)
	}
}

func sameValues(t *testing.T, sig string, got []any, gerr error, want []any, werr error) {
	t.Helper()
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("%s: error %v, go-ethereum %v", sig, gerr, werr)
	}
	if gerr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %#v, go-ethereum %#v", sig, got, want)
	}
}
