package abi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

const tbABIDir = tbDir + "/src/other/install/abis"

// tbNames maps a canonical signature to the parameter-name lists TrueBlocks'
// own ABIs use for it. TrueBlocks prints inputs as a JSON object (keys
// sorted, zero values left out), so positions are recovered through these
// names: our i-th argument is compared with TrueBlocks' i-th name.
func tbNames(t testing.TB) map[string][][]string {
	t.Helper()
	files, err := filepath.Glob(tbABIDir + "/known-*/*.json")
	if err != nil || len(files) != 29 {
		t.Fatalf("want 29 TrueBlocks ABIs, got %d (%v)", len(files), err)
	}
	out := map[string][][]string{}
	add := func(sig string, args gethabi.Arguments) {
		names := rawNames(args)
		for _, n := range out[sig] {
			if slices.Equal(n, names) {
				return
			}
		}
		out[sig] = append(out[sig], names)
	}
	// TrueBlocks also articulates with ABIs it fetched per address (WETH's
	// approve(guy, wad)), so our embedded ABIs' names are candidates too.
	emb, err := filepath.Glob("abis/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, emb...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		norm, err := normalizeABI(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		a, err := gethabi.JSON(bytes.NewReader(norm))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range a.Events {
			add(e.Sig, e.Inputs)
		}
		for _, m := range a.Methods {
			add(m.Sig, m.Inputs)
		}
	}
	return out
}

func tbRegistry(t testing.TB, files ...string) *Registry {
	t.Helper()
	r := defaultRegistry(t)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(tbABIDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(strings.TrimSuffix(filepath.Base(f), ".json"), b); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func allTBFiles(t testing.TB) []string {
	files, err := filepath.Glob(tbABIDir + "/known-*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(tbABIDir, f)
	}
	return files
}

// TestTrueBlocksArticulation compares our decoding with TrueBlocks'
// articulatedLog / articulatedTx in its gold files, wherever our registry
// knows the event or function.
func TestTrueBlocksArticulation(t *testing.T) {
	names := tbNames(t)
	gold, err := filepath.Glob(tbDir + "/tests/gold/*/*/*.txt")
	if err != nil || len(gold) != 10 {
		t.Fatalf("want 10 gold files, got %d (%v)", len(gold), err)
	}
	cases := []struct {
		name          string
		reg           *Registry
		logs, txs     int // articulated items we must compare
		wantFunctions []string
	}{
		// 130 articulated logs and 12 articulated txs in all. Not ours:
		// EtherDelta, TheDAO CreatedToken, Invested, AcceptRequest,
		// CancelRequest, Redeem, TokenExchangeUnderlying (no ABI here).
		{name: "Default", reg: defaultRegistry(t), logs: 103, txs: 5,
			wantFunctions: []string{"approve", "transferFrom", "deposit"}},
		{name: "Default+ens+gitcoin", reg: tbRegistry(t, "known-010/ens.json", "known-000/gitcoin.json"), logs: 109, txs: 7,
			wantFunctions: []string{"approve", "transferFrom", "deposit", "startAuctionsAndBid", "donate"}},
		{name: "Default+all TrueBlocks ABIs", reg: tbRegistry(t, allTBFiles(t)...), logs: 109, txs: 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &tbChecker{t: t, reg: tc.reg, names: names, funcs: map[string]int{}}
			for _, f := range gold {
				c.file = filepath.Base(f)
				c.walk(readGold(t, f))
			}
			t.Logf("compared %d logs and %d txs; TrueBlocks-only: %d logs, %d txs; ours-only: %d logs",
				c.logs, c.txs, c.tbOnlyLogs, c.tbOnlyTxs, c.oursOnlyLogs)
			if c.logs != tc.logs || c.txs != tc.txs {
				t.Errorf("compared %d logs and %d txs, want %d and %d", c.logs, c.txs, tc.logs, tc.txs)
			}
			t.Logf("functions compared: %v", c.funcs)
			for _, fn := range tc.wantFunctions {
				if c.funcs[fn] == 0 {
					t.Errorf("function %s was never compared", fn)
				}
			}
		})
	}
}

type tbChecker struct {
	t                                *testing.T
	reg                              *Registry
	names                            map[string][][]string
	file                             string
	logs, txs, tbOnlyLogs, tbOnlyTxs int
	oursOnlyLogs                     int
	funcs                            map[string]int
}

func (c *tbChecker) walk(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			c.walk(e)
		}
	case map[string]any:
		if _, ok := x["topics"]; ok {
			c.log(x)
		}
		if _, ok := x["input"]; ok {
			if _, ok := x["hash"]; ok {
				c.tx(x)
			}
		}
		for _, e := range x {
			c.walk(e)
		}
	}
}

func (c *tbChecker) log(m map[string]any) {
	t := c.t
	l := logFromMap(t, m)
	where := fmt.Sprintf("%s: log %s#%d", c.file, l.TxHash, l.LogIndex)
	art, _ := m["articulatedLog"].(map[string]any)
	ev, ok, err := c.reg.DecodeLog(l.Log)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	switch {
	case !ok && art == nil:
		return
	case !ok:
		c.tbOnlyLogs++
		return
	case art == nil:
		c.oursOnlyLogs++
		return
	}
	c.logs++
	if art["name"] != ev.Name {
		t.Errorf("%s: TrueBlocks says %v, we say %s", where, art["name"], ev.Name)
		return
	}
	inputs, _ := art["inputs"].(map[string]any)
	c.compare(where, ev.Signature, ev.Args, inputs)
}

func (c *tbChecker) tx(m map[string]any) {
	t := c.t
	input := mustHex(t, m["input"].(string))
	var to *common.Address
	if s, ok := m["to"].(string); ok && s != "" && s != "0x0" {
		a := common.HexToAddress(s)
		to = &a
	}
	where := fmt.Sprintf("%s: tx %v", c.file, m["hash"])
	art, _ := m["articulatedTx"].(map[string]any)
	call, ok, err := c.reg.DecodeCall(to, input)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	switch {
	case !ok:
		if art != nil {
			c.tbOnlyTxs++
		}
		return
	case art == nil:
		t.Errorf("%s: we decode %s, TrueBlocks does not", where, call.Signature)
		return
	}
	c.txs++
	c.funcs[call.Name]++
	if art["name"] != call.Name {
		t.Errorf("%s: TrueBlocks says %v, we say %s", where, art["name"], call.Name)
		return
	}
	inputs, _ := art["inputs"].(map[string]any)
	c.compare(where, call.Signature, call.Args, inputs)
}

// compare matches our args with TrueBlocks' by position, through the name
// list of a TrueBlocks ABI that has every key TrueBlocks printed.
func (c *tbChecker) compare(where, sig string, args []byte, inputs map[string]any) {
	t := c.t
	keys, ours := decodeArgs(t, args)
	var tbKeys []string
	for _, cand := range append(c.names[sig], keys) {
		if len(cand) != len(keys) {
			continue
		}
		all := true
		for k := range inputs {
			all = all && slices.Contains(cand, k)
		}
		if all {
			tbKeys = cand
			break
		}
	}
	if tbKeys == nil {
		t.Errorf("%s: no TrueBlocks name list for %s covers %v", where, sig, mapKeys(inputs))
		return
	}
	for i, k := range keys {
		tv, present := inputs[tbKeys[i]]
		if err := sameValue(ours[k], tv, present); err != nil {
			t.Errorf("%s: %s arg %d (%s / TrueBlocks %s): %v", where, sig, i, k, tbKeys[i], err)
		}
	}
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sameValue compares one of our JSON values with TrueBlocks'; a value
// TrueBlocks left out must be zero.
func sameValue(ours, tb any, present bool) error {
	if !present {
		if !isZeroJSON(ours) {
			return fmt.Errorf("TrueBlocks omits it (zero) but we have %v", ours)
		}
		return nil
	}
	switch o := ours.(type) {
	case string:
		var ts string
		switch x := tb.(type) {
		case string:
			ts = x
		case json.Number:
			ts = x.String()
		default:
			return fmt.Errorf("we have %q, TrueBlocks %#v", o, tb)
		}
		if strings.HasPrefix(o, "0x") || strings.HasPrefix(ts, "0x") {
			if !strings.EqualFold(o, ts) {
				return fmt.Errorf("we have %s, TrueBlocks %s", o, ts)
			}
			return nil
		}
		a, ok1 := new(big.Int).SetString(o, 10)
		b, ok2 := new(big.Int).SetString(ts, 10)
		if ok1 && ok2 {
			if a.Cmp(b) != 0 {
				return fmt.Errorf("we have %s, TrueBlocks %s", o, ts)
			}
			return nil
		}
		if o != ts {
			return fmt.Errorf("we have %q, TrueBlocks %q", o, ts)
		}
	case bool:
		if tb != o {
			return fmt.Errorf("we have %v, TrueBlocks %v", o, tb)
		}
	case []any:
		tl, ok := tb.([]any)
		if !ok || len(tl) != len(o) {
			return fmt.Errorf("we have %d elements, TrueBlocks %#v", len(o), tb)
		}
		for i := range o {
			if err := sameValue(o[i], tl[i], true); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case map[string]any:
		tm, ok := tb.(map[string]any)
		if !ok {
			return fmt.Errorf("we have a tuple, TrueBlocks %#v", tb)
		}
		for k, v := range o {
			tv, p := tm[k]
			if err := sameValue(v, tv, p); err != nil {
				return fmt.Errorf(".%s: %w", k, err)
			}
		}
		for k := range tm {
			if _, ok := o[k]; !ok {
				return fmt.Errorf("TrueBlocks has tuple field %s we do not", k)
			}
		}
	default:
		return fmt.Errorf("unexpected JSON value %#v", ours)
	}
	return nil
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "0x") {
			return strings.Trim(x[2:], "0") == ""
		}
		return x == "0" || x == ""
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			if !isZeroJSON(e) {
				return false
			}
		}
		return true
	}
	return false
}
