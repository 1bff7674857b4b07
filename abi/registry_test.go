package abi

import (
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestDefaultRegistry(t *testing.T) {
	r := defaultRegistry(t)
	if got := r.Names(); !slices.Equal(got, defaultOrder) {
		t.Errorf("Names() = %v, want %v", got, defaultOrder)
	}
	files, _ := filepath.Glob("abis/*.json")
	if len(files) != len(defaultOrder) {
		t.Errorf("%d embedded files but defaultOrder has %d names: keep them in sync", len(files), len(defaultOrder))
	}
	// Each Default() is independent.
	r2 := defaultRegistry(t)
	if err := r2.Add("Extra", []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if len(r.Names()) != len(defaultOrder) {
		t.Error("Add on one Default registry changed another")
	}
}

func TestAddStyles(t *testing.T) {
	weth, err := os.ReadFile("abis/WETH9.json") // old style: constant/payable, fallback, no internalType
	if err != nil {
		t.Fatal(err)
	}
	artifact := `{"contractName":"WETH9","abi":` + string(weth) + `,"bytecode":"0x"}`
	cases := []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "old style array", json: string(weth)},
		{name: "artifact object", json: artifact},
		{name: "artifact with abi as a string", json: `{"abi":` + strconvQuote(string(weth)) + `}`},
		{name: "entry without type is a function", json: `[{"name":"f","inputs":[{"name":"x","type":"uint256"}]}]`},
		{name: "two fallbacks and a non-payable receive are dropped", json: `[{"type":"fallback"},{"type":"fallback"},{"type":"receive","stateMutability":"nonpayable"}]`},
		{name: "unnamed tuple components", json: `[{"type":"function","name":"g","inputs":[{"name":"p","type":"tuple","components":[{"name":"","type":"uint256"},{"name":"_","type":"bool"}]}]}]`},
		{name: "empty", json: ``, wantErr: "empty ABI JSON"},
		{name: "artifact without abi", json: `{"bytecode":"0x"}`, wantErr: `no "abi" field`},
		{name: "not JSON", json: `[{`, wantErr: "parsing ABI array"},
		{name: "unknown type", json: `[{"type":"function","name":"f","inputs":[{"name":"x","type":"fixed128x18"}]}]`, wantErr: "parsing ABI with go-ethereum"},
		{name: "unknown entry type", json: `[{"type":"modifier","name":"m"}]`, wantErr: "parsing ABI with go-ethereum"},
		{name: "too many indexed", json: `[{"type":"event","name":"E","inputs":[{"name":"a","type":"uint8","indexed":true},{"name":"b","type":"uint8","indexed":true},{"name":"c","type":"uint8","indexed":true},{"name":"d","type":"uint8","indexed":true}]}]`, wantErr: "do not fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewRegistry().Add("X", []byte(tc.json))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}

	t.Run("artifact decodes like the bare array", func(t *testing.T) {
		a, b := NewRegistry(), NewRegistry()
		if err := a.Add("WETH9", weth); err != nil {
			t.Fatal(err)
		}
		if err := b.Add("WETH9", []byte(artifact)); err != nil {
			t.Fatal(err)
		}
		l := Log{Topics: []common.Hash{crypto.Keccak256Hash([]byte("Deposit(address,uint256)")), {31: 1}}, Data: make([]byte, 32)}
		ea, _, _ := a.DecodeLog(l)
		eb, _, _ := b.DecodeLog(l)
		if string(ea.Args) != string(eb.Args) || string(ea.Args) != `{"dst":"0x0000000000000000000000000000000000000001","wad":"0"}` {
			t.Errorf("got %s and %s", ea.Args, eb.Args)
		}
	})
	t.Run("names", func(t *testing.T) {
		r := NewRegistry()
		if err := r.Add("", weth); err == nil {
			t.Error("empty name accepted")
		}
		if err := r.Add("A", weth); err != nil {
			t.Fatal(err)
		}
		if err := r.Add("A", weth); err == nil || !strings.Contains(err.Error(), "already registered") {
			t.Errorf("duplicate name: err = %v", err)
		}
	})
}

func strconvQuote(s string) string {
	b := appendJSONString(nil, s)
	return string(b)
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	erc20, _ := os.ReadFile("abis/ERC20.json")
	write("b_token.json", string(erc20))
	write("a_pair.JSON", `[{"type":"event","name":"Sync","inputs":[{"name":"r0","type":"uint112"},{"name":"r1","type":"uint112"}]}]`)
	write("notes.txt", "not an ABI")
	if err := os.Mkdir(filepath.Join(dir, "sub.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	if err := r.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"a_pair", "b_token"}) {
		t.Errorf("Names() = %v", got)
	}

	write("c_bad.json", `[{"type":"function","name":"f","inputs":[{"name":"x","type":"uint"}]}]`)
	r2 := NewRegistry()
	err := r2.LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "c_bad") {
		t.Fatalf("err = %v, want the bad file named", err)
	}
	if len(r2.Names()) != 0 {
		t.Errorf("a failed LoadDir added %v", r2.Names())
	}
	if err := NewRegistry().LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir accepted")
	}
}

// altABI has the ERC-20 Transfer signature with another indexed layout (same
// topic0 and topic count: dst in the data, wad in a topic) and an anonymous
// event.
const altABI = `[
 {"type":"event","name":"Transfer","inputs":[
   {"name":"src","type":"address","indexed":true},{"name":"dst","type":"address"},{"name":"wad","type":"uint256","indexed":true}]},
 {"type":"event","name":"Note","anonymous":true,"inputs":[
   {"name":"sig","type":"bytes4","indexed":true},{"name":"guy","type":"address","indexed":true},{"name":"fax","type":"bytes"}]}
]`

func TestBindContracts(t *testing.T) {
	r := defaultRegistry(t)
	if err := r.Add("Alt", []byte(altABI)); err != nil {
		t.Fatal(err)
	}
	alt := common.HexToAddress("0x00000000000000000000000000000000000a1700")
	nft := common.HexToAddress("0x00000000000000000000000000000000000721aa")
	other := common.HexToAddress("0x0000000000000000000000000000000000000bbb")
	bindings := `{"` + alt.Hex() + `":"Alt","` + strings.ToLower(nft.Hex()) + `":"ERC721"}`
	if err := r.BindContracts(strings.NewReader(bindings)); err != nil {
		t.Fatal(err)
	}

	from, to := common.Hash{31: 0xf}, common.Hash{31: 0x7}
	transfer := Log{Topics: []common.Hash{erc20Transfer, from, to}, Data: common.Hash{31: 9}.Bytes()}

	t.Run("unbound Transfer is ERC20", func(t *testing.T) {
		l := transfer
		l.Address = other
		ev, ok, err := r.DecodeLog(l)
		if !ok || err != nil || ev.ABIName != "ERC20" || string(ev.Args) != `{"from":"0x000000000000000000000000000000000000000f","to":"0x0000000000000000000000000000000000000007","value":"9"}` {
			t.Errorf("got %+v %s ok=%v err=%v", ev, ev.Args, ok, err)
		}
	})
	t.Run("bound ambiguous layout", func(t *testing.T) {
		l := transfer
		l.Address = alt
		ev, ok, err := r.DecodeLog(l)
		if !ok || err != nil || ev.ABIName != "Alt" || string(ev.Args) != `{"src":"0x000000000000000000000000000000000000000f","dst":"0x0000000000000000000000000000000000000009","wad":"7"}` {
			t.Errorf("got %+v %s ok=%v err=%v", ev, ev.Args, ok, err)
		}
	})
	t.Run("bound address falls back to the global table", func(t *testing.T) {
		approval := Log{Address: alt, Topics: []common.Hash{crypto.Keccak256Hash([]byte("Approval(address,address,uint256)")), from, to}, Data: make([]byte, 32)}
		ev, ok, err := r.DecodeLog(approval)
		if !ok || err != nil || ev.ABIName != "ERC20" {
			t.Errorf("got %+v ok=%v err=%v", ev, ok, err)
		}
	})
	t.Run("anonymous event only for the bound address", func(t *testing.T) {
		sel := common.Hash{0xa9, 0x05, 0x9c, 0xbb}
		fax, _ := gethabi.Arguments{{Type: mustType(t, "bytes")}}.Pack([]byte{1, 2})
		l := Log{Address: alt, Topics: []common.Hash{sel, from}, Data: fax}
		ev, ok, err := r.DecodeLog(l)
		if !ok || err != nil || ev.Name != "Note" || string(ev.Args) != `{"sig":"0xa9059cbb","guy":"0x000000000000000000000000000000000000000f","fax":"0x0102"}` {
			t.Errorf("got %+v %s ok=%v err=%v", ev, ev.Args, ok, err)
		}
		l.Address = other
		if _, ok, err := r.DecodeLog(l); ok || err != nil {
			t.Errorf("anonymous event matched an unbound address: ok=%v err=%v", ok, err)
		}
	})
	t.Run("bound selector: ERC-721 transferFrom", func(t *testing.T) {
		input := append(common.FromHex("0x23b872dd"), make([]byte, 96)...)
		input[len(input)-1] = 42
		c, ok, err := r.DecodeCall(&nft, input)
		if !ok || err != nil || c.ABIName != "ERC721" || !strings.HasSuffix(string(c.Args), `"tokenId":"42"}`) {
			t.Errorf("bound: got %+v %s ok=%v err=%v", c, c.Args, ok, err)
		}
		c, ok, err = r.DecodeCall(&other, input)
		if !ok || err != nil || c.ABIName != "ERC20" || !strings.HasSuffix(string(c.Args), `"value":"42"}`) {
			t.Errorf("unbound: got %+v %s ok=%v err=%v", c, c.Args, ok, err)
		}
	})
	t.Run("bad bindings change nothing", func(t *testing.T) {
		for _, in := range []string{`{"0x12":"ERC20"}`, `{"` + other.Hex() + `":"Nope"}`, `[`, `{"` + other.Hex() + `":"ERC721","0xzz":"ERC20"}`} {
			if err := r.BindContracts(strings.NewReader(in)); err == nil {
				t.Errorf("%s accepted", in)
			}
		}
		l := transfer
		l.Address = other
		if ev, _, _ := r.DecodeLog(l); ev.ABIName != "ERC20" {
			t.Errorf("a failed BindContracts bound %s", other)
		}
	})
	t.Run("rebinding replaces", func(t *testing.T) {
		r2, _ := r.Subset(r.Names()...)
		if err := r2.BindContracts(strings.NewReader(`{"` + alt.Hex() + `":"ERC20"}`)); err != nil {
			t.Fatal(err)
		}
		l := transfer
		l.Address = alt
		if ev, _, _ := r2.DecodeLog(l); ev.ABIName != "ERC20" {
			t.Errorf("got %s after rebinding", ev.ABIName)
		}
		if ev, _, _ := r.DecodeLog(l); ev.ABIName != "Alt" {
			t.Errorf("rebinding a subset changed the original: %s", ev.ABIName)
		}
	})
}

func mustType(t testing.TB, s string) gethabi.Type {
	t.Helper()
	ty, err := gethabi.NewType(s, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func TestSubset(t *testing.T) {
	r := defaultRegistry(t)
	pair := common.HexToAddress("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852")
	if err := r.BindContracts(strings.NewReader(`{"` + pair.Hex() + `":"UniswapV2Pair","0x0000000000000000000000000000000000000001":"ERC721"}`)); err != nil {
		t.Fatal(err)
	}
	s, err := r.Subset("UniswapV2Pair", "ERC721")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"ERC721", "UniswapV2Pair"}) {
		t.Errorf("Names() = %v (priority order kept)", got)
	}
	l := Log{Address: common.Address{9}, Topics: []common.Hash{erc20Transfer, {}, {}}, Data: make([]byte, 32)}
	if ev, ok, err := s.DecodeLog(l); !ok || err != nil || ev.ABIName != "UniswapV2Pair" {
		t.Errorf("without ERC20 the pair's Transfer answers: %+v ok=%v err=%v", ev, ok, err)
	}
	if _, ok, _ := s.DecodeLog(Log{Topics: []common.Hash{crypto.Keccak256Hash([]byte("Deposit(address,uint256)")), {}}, Data: make([]byte, 32)}); ok {
		t.Error("WETH9 Deposit decoded by a subset without WETH9")
	}
	if _, err := r.Subset("ERC20", "Nope"); err == nil {
		t.Error("unknown name accepted")
	}
	if _, err := r.Subset(); err == nil {
		t.Error("empty subset accepted")
	}
	s2, _ := r.Subset("ERC20")
	if ev, _, _ := s2.DecodeLog(Log{Address: pair, Topics: []common.Hash{erc20Transfer, {}, {}}, Data: make([]byte, 32)}); ev.ABIName != "ERC20" {
		t.Errorf("binding to an ABI outside the subset leaked: %s", ev.ABIName)
	}
}

// TestFallbackCandidate: two ABIs with the same topic0 and topic count but a
// different indexed layout; the second is tried when the first cannot decode.
func TestFallbackCandidate(t *testing.T) {
	r := NewRegistry()
	if err := r.Add("A", []byte(`[{"type":"event","name":"Foo","inputs":[{"name":"x","type":"bool","indexed":true},{"name":"y","type":"uint8"}]}]`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("B", []byte(`[{"type":"event","name":"Foo","inputs":[{"name":"x","type":"bool"},{"name":"y","type":"uint8","indexed":true}]}]`)); err != nil {
		t.Fatal(err)
	}
	// Same layout as A: a duplicate, must not become a third candidate.
	if err := r.Add("C", []byte(`[{"type":"event","name":"Foo","inputs":[{"name":"p","type":"bool","indexed":true},{"name":"q","type":"uint8"}]}]`)); err != nil {
		t.Fatal(err)
	}
	topic0 := crypto.Keccak256Hash([]byte("Foo(bool,uint8)"))
	if n := len(r.snapshot().events[eventKey{topic0, 2}]); n != 2 {
		t.Errorf("%d candidates, want 2 (C duplicates A)", n)
	}
	ev, ok, err := r.DecodeLog(Log{Topics: []common.Hash{topic0, {31: 1}}, Data: common.Hash{31: 5}.Bytes()})
	if !ok || err != nil || ev.ABIName != "A" || string(ev.Args) != `{"x":true,"y":"5"}` {
		t.Errorf("got %+v %s ok=%v err=%v", ev, ev.Args, ok, err)
	}
	ev, ok, err = r.DecodeLog(Log{Topics: []common.Hash{topic0, {31: 5}}, Data: common.Hash{31: 1}.Bytes()})
	if !ok || err != nil || ev.ABIName != "B" || string(ev.Args) != `{"x":true,"y":"5"}` {
		t.Errorf("got %+v %s ok=%v err=%v", ev, ev.Args, ok, err)
	}
	_, ok, err = r.DecodeLog(Log{Topics: []common.Hash{topic0, {31: 5}}, Data: common.Hash{31: 5}.Bytes()})
	if !ok || err == nil || !strings.Contains(err.Error(), "ABI A") {
		t.Errorf("neither fits: want A's error, got ok=%v err=%v", ok, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	r := defaultRegistry(t)
	addr := common.Address{1}
	cases := []struct {
		name   string
		l      Log
		wantOK bool
		errSub string
	}{
		{"no topics", Log{Data: make([]byte, 32)}, false, ""},
		{"5 topics", Log{Topics: []common.Hash{erc20Transfer, {}, {}, {}, {}}}, false, ""},
		{"unknown topic0", Log{Topics: []common.Hash{{1}}}, false, ""},
		{"Transfer with 2 topics: no ABI has that layout", Log{Topics: []common.Hash{erc20Transfer, {}}, Data: make([]byte, 64)}, false, ""},
		{"ERC-20 Transfer, short data", Log{Topics: []common.Hash{erc20Transfer, {}, {}}, Data: make([]byte, 31)}, true, "Transfer(address,address,uint256)"},
		{"ERC-20 Transfer, no data", Log{Topics: []common.Hash{erc20Transfer, {}, {}}}, true, "ERC20"},
		{"ApprovalForAll, bool = 2", Log{Topics: []common.Hash{crypto.Keccak256Hash([]byte("ApprovalForAll(address,address,bool)")), {}, {}}, Data: common.Hash{31: 2}.Bytes()}, true, "bool"},
		{"TransferBatch, garbage offsets", Log{Topics: []common.Hash{crypto.Keccak256Hash([]byte("TransferBatch(address,address,address,uint256[],uint256[])")), {}, {}, {}}, Data: append(common.Hash{0: 0xff}.Bytes(), make([]byte, 32)...)}, true, "TransferBatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok, err := r.DecodeLog(tc.l)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			if tc.errSub == "" && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if tc.errSub != "" && (err == nil || !strings.Contains(err.Error(), tc.errSub)) {
				t.Errorf("err = %v, want it to mention %q", err, tc.errSub)
			}
			if err != nil && ev.Args != nil {
				t.Errorf("args %s returned with an error", ev.Args)
			}
		})
	}

	transfer := common.FromHex("0xa9059cbb")
	callCases := []struct {
		name   string
		to     *common.Address
		input  []byte
		wantOK bool
		err    bool
	}{
		{"contract creation", nil, append(transfer, make([]byte, 64)...), false, false},
		{"empty input", &addr, nil, false, false},
		{"3 bytes", &addr, transfer[:3], false, false},
		{"unknown selector", &addr, []byte{0, 0, 0, 0}, false, false},
		{"transfer without args", &addr, transfer, true, true},
		{"transfer, truncated", &addr, append(slices.Clone(transfer), make([]byte, 40)...), true, true},
		{"transfer, extra trailing bytes are tolerated", &addr, append(slices.Clone(transfer), make([]byte, 65)...), true, false},
		{"deposit() with no args", &addr, common.FromHex("0xd0e30db0"), true, false},
	}
	for _, tc := range callCases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok, err := r.DecodeCall(tc.to, tc.input)
			if ok != tc.wantOK || (err != nil) != tc.err {
				t.Errorf("ok=%v err=%v, want ok=%v err=%v", ok, err, tc.wantOK, tc.err)
			}
			if tc.name == "deposit() with no args" && (string(c.Args) != "{}" || c.ABIName != "WETH9") {
				t.Errorf("got %+v %s", c, c.Args)
			}
		})
	}
}

// TestConcurrentUse runs decoders while writers publish new snapshots; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	r := defaultRegistry(t)
	logs := loadETLLogs(t, blockDir+"/expected_logs.json")
	txs := loadETLTransactions(t, blockDir+"/expected_transactions.json")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				for _, l := range logs {
					if _, _, err := r.DecodeLog(l.Log); err != nil {
						t.Error(err)
						return
					}
					if _, err := TokenTransfers(l.Log); err != nil {
						t.Error(err)
						return
					}
				}
				for _, tx := range txs {
					r.DecodeCall(tx.To, tx.Input)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			name := "X" + big.NewInt(int64(i)).String()
			if err := r.Add(name, []byte(altABI)); err != nil {
				t.Error(err)
			}
			if err := r.BindContracts(strings.NewReader(`{"0x00000000000000000000000000000000000000` + hex2(i) + `":"` + name + `"}`)); err != nil {
				t.Error(err)
			}
			r.Names()
		}
	}()
	wg.Wait()
}

func hex2(i int) string { return string([]byte{hexDigits[i>>4&0xf], hexDigits[i&0xf]}) }
