package e2e

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/internal/demo"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// TestDemoLocalChain: the demo's second part (make demo) with the real binary. On the local chain, where the
// pair and the pool exist only as the factories' children, the typed tables of local-chain.yaml hold exactly
// the Swap events the node has for them (position, transaction and every amount, decoded here by
// go-ethereum), factory_children holds those two children and nothing else, and what the demo prints of
// them is what is stored: verify passing and the swaps.
func TestDemoLocalChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	lc, err := demo.StartLocalChain(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	cfg := pgtest.EmptySchema(t)
	b := newBroker(t, map[string]int32{cfg.Schema: 2})
	var out strings.Builder
	if err := demo.IndexLocalChain(ctx, demo.Options{Binary: binary, TestData: root}, lc, b, cfg.DatabaseURL, cfg.Schema, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("the demo printed:\n%s", out.String())
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	children := queryStrings(t, s.Pool(), `SELECT set_name || ' ' || hex(address) || ' ' || hex(factory_address)
		FROM factory_children ORDER BY set_name`)
	if want := []string{"univ2 " + hexAddr(lc.Pair) + " " + hexAddr(lc.V2Factory),
		"univ3 " + hexAddr(lc.Pool) + " " + hexAddr(lc.V3Factory)}; !slices.Equal(children, want) {
		t.Errorf("factory_children: %q, want %q", children, want)
	}

	// The node's Swap logs of the pair and the pool, decoded by go-ethereum's ABI package.
	pairABI, poolABI := loadBuiltinABI(t, "UniswapV2Pair"), loadBuiltinABI(t, "UniswapV3Pool")
	logs, err := lc.Client().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(lc.Head),
		Addresses: []common.Address{lc.Pair, lc.Pool}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, l := range logs {
		a, table := pairABI, "univ2_evt_swap"
		if l.Address == lc.Pool {
			a, table = poolABI, "univ3_evt_swap"
		}
		if l.Topics[0] != a.Events["Swap"].ID {
			continue
		}
		vs, err := a.Unpack("Swap", l.Data)
		if err != nil {
			t.Fatal(err)
		}
		row := fmt.Sprintf("%d %d %s", l.BlockNumber, l.Index, strings.ToLower(l.TxHash.Hex()))
		for _, v := range vs {
			row += fmt.Sprintf(" %v", v)
		}
		want[table] = append(want[table], row)
	}
	got := map[string][]string{
		"univ2_evt_swap": queryStrings(t, s.Pool(), `SELECT concat_ws(' ', block_number, log_index, hex(transaction_hash),
			amount0_in, amount1_in, amount0_out, amount1_out) FROM univ2_evt_swap ORDER BY block_number, log_index`),
		"univ3_evt_swap": queryStrings(t, s.Pool(), `SELECT concat_ws(' ', block_number, log_index, hex(transaction_hash),
			amount0, amount1, sqrt_price_x96, liquidity, tick) FROM univ3_evt_swap ORDER BY block_number, log_index`),
	}
	for _, table := range []string{"univ2_evt_swap", "univ3_evt_swap"} {
		if len(want[table]) != 4 {
			t.Errorf("the node has %d swaps of %s's contract, want the demo's 4", len(want[table]), table)
		}
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("%s:\n%s\nwant the node's:\n%s", table, strings.Join(got[table], "\n"), strings.Join(want[table], "\n"))
		}
	}
	// events_table and calls_table: untyped: none of the typed tables' logs is in events, and none of their
	// transactions' own calls in calls, the children's (which the factory gate settles) included.
	for _, table := range []string{"univ2_evt_swap", "univ3_evt_swap", "univ2_evt_sync", "univ2_factory_evt_pair_created", "weth_evt_deposit",
		"univ2_call_swap", "univ2_call_mint", "weth_call_deposit"} {
		generic, on := "events", "USING (block_number, log_index)"
		if strings.Contains(table, "_call_") {
			generic, on = "calls", "USING (block_number, transaction_index) WHERE t.trace_address = '{}'"
		}
		var n, typedRows int
		if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM `+generic+` g JOIN `+table+` t `+on+`),
			(SELECT count(*) FROM `+table+`)`).Scan(&n, &typedRows); err != nil {
			t.Fatal(err)
		}
		if n > 0 || typedRows == 0 {
			t.Errorf("%s holds %d of the %d rows of %s", generic, n, typedRows, table)
		}
	}
	for _, line := range []string{"OK: every check passed", hexAddr(lc.Pair) + "  univ2_evt_swap", hexAddr(lc.Pool) + "  univ3_evt_swap"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the demo's output has no %q", line)
		}
	}
}
