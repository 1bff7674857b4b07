package decode_test

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store/chain"
)

// TestUntypedEventsLeaveOwnedLogsToTheirTables: with `events_table: untyped`, the decoder builds no events
// row for a log that a set bound to an address or to any address takes (mainnet block 17173049's WETH
// Deposits and Withdrawals, its V2-style Swaps), keeps those of every other log, and keeps the rows of a
// factory set's candidates, which only the store can settle; with `calls_table: untyped`, no calls row for
// the transaction that calls WETH. The typed rows are those of the default.
func TestUntypedEventsLeaveOwnedLogsToTheirTables(t *testing.T) {
	root, reg := testdataAndABIs(t)
	const sets = `contracts:
  - {name: univ2, abi: UniswapV2Pair, events: [Swap]}
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", events: [Deposit, Withdrawal], calls: ["*"]}
  - name: univ3
    abi: UniswapV3Pool
    factory: {address: "0x1f98431c8ad98523631ae4a59f267346ea31f984", abi: UniswapV3Factory, event: PoolCreated, parameter: pool}
`
	enrich := func(yaml string) chain.Rows {
		ts, err := typed.CompileYAML("c.yaml", []byte(yaml), reg)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := fixtures.Rows17173049(root)
		if err != nil {
			t.Fatal(err)
		}
		decode.New(reg, nil).WithTables(ts).Enrich(&rows)
		return rows
	}
	all, untyped := enrich(sets), enrich("events_table: untyped\ncalls_table: untyped\n"+sets)

	owned := map[int32]bool{} // log index → taken by univ2 or weth
	for t, rows := range all.Typed {
		if t.Name == "univ2_evt_swap" || t.Name == "weth_evt_deposit" || t.Name == "weth_evt_withdrawal" {
			for _, row := range rows {
				owned[row[4].(int32)] = true
			}
		}
	}
	candidates := len(all.Typed[tableNamed(all, "univ3_evt_swap")])
	if len(owned) < 10 || candidates == 0 {
		t.Fatalf("%d logs owned by univ2 and weth, %d univ3 candidates: the block holds more", len(owned), candidates)
	}
	var want []chain.Event
	for _, e := range all.Events {
		if !owned[e.LogIndex] {
			want = append(want, e)
		}
	}
	if len(untyped.Events) != len(want) {
		t.Fatalf("untyped: %d events, want %d (%d of %d owned by a set)", len(untyped.Events), len(want), len(owned), len(all.Events))
	}
	for i, e := range untyped.Events {
		if e.LogIndex != want[i].LogIndex || e.Signature != want[i].Signature {
			t.Fatalf("event %d: log %d %s, want log %d %s", i, e.LogIndex, e.Signature, want[i].LogIndex, want[i].Signature)
		}
	}
	// calls_table: untyped: the call to WETH (weth owns it) has no calls row, every other call keeps its own.
	wethCalls := map[int32]bool{}
	for t, rows := range all.Typed {
		if strings.HasPrefix(t.Name, "weth_call_") {
			for _, row := range rows {
				wethCalls[row[3].(int32)] = true
			}
		}
	}
	if len(wethCalls) == 0 || len(untyped.Calls) != len(all.Calls)-len(wethCalls) {
		t.Fatalf("untyped: %d calls, want %d less WETH's %d", len(untyped.Calls), len(all.Calls), len(wethCalls))
	}
	for _, c := range untyped.Calls {
		if wethCalls[c.TransactionIndex] {
			t.Fatalf("the call of transaction %d to WETH is in calls", c.TransactionIndex)
		}
	}
	for tb, rows := range all.Typed {
		if got := untyped.Typed[tableNamed(untyped, tb.Name)]; len(got) != len(rows) {
			t.Errorf("%s: %d rows, want %d", tb.Name, len(got), len(rows))
		}
	}
}

func tableNamed(r chain.Rows, name string) *chain.Table {
	for t := range r.Typed {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TestEnrichedEventsAreTheRegistrysOwn: Enrich writes the events' args of a message onto shared slabs (and
// the transfers' addresses onto another); every event of mainnet block 17173049 still has exactly the args
// that decoding its log alone gives, after all of them were written, and every transfer its log's addresses.
func TestEnrichedEventsAreTheRegistrysOwn(t *testing.T) {
	root, reg := testdataAndABIs(t)
	rows, err := fixtures.Rows17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	decode.New(reg, nil).Enrich(&rows)
	logs := map[int32]abi.Log{}
	for _, lg := range rows.Logs {
		l := abi.Log{Address: common.BytesToAddress(lg.Address), Data: lg.Data}
		for _, tp := range lg.Topics {
			l.Topics = append(l.Topics, common.BytesToHash(tp))
		}
		logs[lg.LogIndex] = l
	}
	if len(rows.Events) < 200 || len(rows.TokenTransfers) != 114 {
		t.Fatalf("%d events and %d transfers; block 17173049 has more than 200 and 114", len(rows.Events), len(rows.TokenTransfers))
	}
	for _, ev := range rows.Events {
		want, ok, err := reg.DecodeLog(logs[ev.LogIndex])
		if !ok || err != nil || string(ev.Args) != string(want.Args) || ev.Signature != want.Signature {
			t.Errorf("log %d: %s %s, decoded alone %s %s (%v)", ev.LogIndex, ev.Signature, ev.Args, want.Signature, want.Args, err)
		}
	}
	for _, tt := range rows.TokenTransfers {
		moved, err := abi.TokenTransfers(logs[tt.LogIndex])
		if err != nil || int(tt.BatchIndex) >= len(moved) {
			t.Fatalf("log %d: %v", tt.LogIndex, err)
		}
		m := moved[tt.BatchIndex]
		if string(tt.FromAddress) != string(m.From[:]) || string(tt.ToAddress) != string(m.To[:]) {
			t.Errorf("log %d: transfer %x → %x, the log's %x → %x", tt.LogIndex, tt.FromAddress, tt.ToAddress, m.From, m.To)
		}
	}
}

// testdataAndABIs is the repository's testdata directory and the built-in ABIs.
func testdataAndABIs(t testing.TB) (string, *abi.Registry) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	return root, reg
}
