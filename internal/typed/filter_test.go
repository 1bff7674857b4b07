package typed_test

import (
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/typed"
)

// TestFilter: what filtered mode asks the node for, and keeps of its answer, for a factory set (the
// Uniswap V2 factory's pairs: Swap and a swap call table, from block 100), a set bound to an address (WETH's
// Deposit) and none other.
func TestFilter(t *testing.T) {
	factory := common.HexToAddress("0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f")
	weth := common.HexToAddress("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
	pair := common.HexToAddress("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852")
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	f := compile(t, `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap]
    calls: [swap]
    start_block: 100
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", events: [Deposit]}
`).Filter()
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	contract := func(name string) *abi.Contract {
		t.Helper()
		c, ok := reg.Contract(name)
		if !ok {
			t.Fatalf("no ABI %s", name)
		}
		return c
	}
	topic0 := func(abiName, event string) common.Hash {
		t.Helper()
		for _, e := range contract(abiName).Events {
			if e.Name == event {
				return e.Topic0
			}
		}
		t.Fatalf("%s has no %s", abiName, event)
		return common.Hash{}
	}
	created, swap, deposit := topic0("UniswapV2Factory", "PairCreated"), topic0("UniswapV2Pair", "Swap"), topic0("WETH9", "Deposit")

	q, ok := f.Factories()
	if !ok || !slices.Equal(q.Addresses, []common.Address{factory}) || !slices.Equal(q.Topic0s, []common.Hash{created}) {
		t.Fatalf("factories query %+v, %v", q, ok)
	}
	if got := f.FactoryStart(); got != 100 {
		t.Errorf("factory start %d, want the set's start block 100", got)
	}
	// PairCreated(token0 indexed, token1 indexed, pair, uint): the pair is the data's first word.
	creation := abi.Log{Address: factory, Topics: []common.Hash{created, common.BytesToHash(weth[:]), common.BytesToHash(other[:])},
		Data: append(common.LeftPadBytes(pair[:], 32), common.LeftPadBytes([]byte{1}, 32)...)}
	kids := typed.Children{}
	if f.Register(kids, creation, 99) || len(kids) != 0 {
		t.Fatalf("a creation below the set's start block registered %v", kids)
	}
	if !f.Register(kids, creation, 150) || !kids["univ2"][pair] {
		t.Fatalf("the creation at 150 registered %v", kids)
	}
	if f.Register(kids, abi.Log{Address: other, Topics: creation.Topics, Data: creation.Data}, 150) {
		t.Fatal("a PairCreated of another contract registered a child")
	}

	q = f.Logs(kids, 1000)
	if want := []common.Address{pair, weth, factory}; !sameSet(q.Addresses, want) || !sameSet(q.Topic0s, []common.Hash{swap, deposit, created}) {
		t.Fatalf("logs query %+v", q)
	}
	if q := f.Logs(kids, 2); q.Addresses != nil {
		t.Fatalf("more addresses than a node takes must ask for any address: %+v", q)
	}

	swapLog := abi.Log{Address: pair, Topics: []common.Hash{swap, common.Hash{}, common.Hash{}}, Data: make([]byte, 128)}
	for _, c := range []struct {
		name string
		log  abi.Log
		at   uint64
		kids typed.Children
		want bool
	}{
		{"a child's Swap", swapLog, 200, kids, true},
		{"a Swap of a contract no factory created", abi.Log{Address: other, Topics: swapLog.Topics, Data: swapLog.Data}, 200, kids, false},
		{"a child's Swap before any creation was read", swapLog, 200, typed.Children{}, false},
		{"a child's Swap below the start block", swapLog, 99, kids, false},
		{"WETH's Deposit", abi.Log{Address: weth, Topics: []common.Hash{deposit, {}}, Data: make([]byte, 32)}, 5, kids, true},
		{"a Deposit elsewhere", abi.Log{Address: other, Topics: []common.Hash{deposit, {}}, Data: make([]byte, 32)}, 5, kids, false},
		{"the factory's creation log", creation, 150, kids, true},
		{"a log without topics", abi.Log{Address: weth}, 5, kids, false},
	} {
		if got := f.Keep(c.kids, c.log, c.at); got != c.want {
			t.Errorf("%s: keep %v, want %v", c.name, got, c.want)
		}
	}

	if !f.Calls() {
		t.Fatal("a set with calls: the blocks are needed whole")
	}
	var selector [4]byte
	for _, fn := range contract("UniswapV2Pair").Functions {
		if fn.Name == "swap" {
			selector = fn.Selector
		}
	}
	call := append(selector[:], make([]byte, 128)...)
	for _, c := range []struct {
		name  string
		to    common.Address
		input []byte
		want  bool
	}{
		{"swap on the child", pair, call, true},
		{"swap elsewhere", other, call, false},
		{"another function of the child", pair, []byte{1, 2, 3, 4}, false},
		{"no selector", pair, []byte{1}, false},
	} {
		if got := f.KeepCall(kids, c.to, c.input, 200); got != c.want {
			t.Errorf("%s: keep %v, want %v", c.name, got, c.want)
		}
	}
	if compile(t, "contracts:\n  - {name: weth, abi: WETH9, events: [Deposit]}\n").Filter().Logs(nil, 1000).Addresses != nil {
		t.Error("a set without addresses matches by topic0 at any address")
	}
}

func sameSet[T comparable](got, want []T) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
