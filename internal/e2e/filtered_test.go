package e2e

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/store"
)

// TestFilteredBackfillUniswapV2: the chain of TestBackfillUniswapV2 backfilled in filtered mode (`chainsink
// backfill --config`): only what the configuration's sets need reaches Kafka and Postgres. The typed tables
// hold exactly what they hold in full mode; the logs are exactly the pair's Swap, Sync and Mint, WETH's
// Deposit and Transfer and the factory's PairCreated (the pair known only from it), and nothing of the
// test token or of the pair's LP token; the transactions are exactly the pair's swap and mint calls; every
// height has its block, marked filtered; and verify, against the node, passes. Batches of 5 blocks, 2 at a
// time: the pair's creation (block 2) and its Mint (block 4) are in one batch, its swaps (5 and 6) in the
// next, which may be fetched first.
func TestFilteredBackfillUniswapV2(t *testing.T) {
	t.Parallel()
	u := newUniswapV2(t)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	conf := writeTables(t, cfg, u.tables())
	out, errOut, err := runBackfillCmd(t, "--rpc", u.c.url, "--brokers", b.Addr(), "--topic", "blocks", "--config", conf,
		"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema, "--batch-size", "5", "--concurrency", "2",
		"--from", "0", "--to", "latest")
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("backfilled blocks 0-%d of job \"blocks:0-latest:filtered\"", u.head)) {
		t.Fatalf("backfill output: %q", out)
	}
	p := start(t, append(runArgs(cfg, b.Addr(), "filtered", "blocks:bundle"), "--config", conf)...)
	waitCaughtUp(t, s, b, "filtered", 60*time.Second, "blocks")
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
	checkFilteredUniswap(t, u, s, cfg)
}

// TestFilteredSetAddedLater: a filtered backfill of WETH's set alone is stored; then the configuration gains
// the pair's set (found through its factory): `tables apply` adds its tables, `backfill --config F --sets
// univ2` publishes that set's logs and calls alone to a topic of format bundle-merge, and `run` with F
// consumes both topics. Every table ends as a filtered backfill of F from the start leaves it, the WETH
// rows of the first backfill kept.
func TestFilteredSetAddedLater(t *testing.T) {
	t.Parallel()
	u := newUniswapV2(t)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2, "pairs": 2})
	backfill := func(conf, topic string, extra ...string) string {
		t.Helper()
		out, errOut, err := runBackfillCmd(t, append([]string{"--rpc", u.c.url, "--brokers", b.Addr(), "--topic", topic,
			"--config", conf, "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema, "--batch-size", "5",
			"--from", "0", "--to", "latest"}, extra...)...)
		if err != nil {
			t.Fatalf("backfill: %v\n%s", err, errOut)
		}
		return out
	}
	index := func(conf string, topics ...string) {
		t.Helper()
		p := start(t, append(runArgs(cfg, b.Addr(), "added", topics...), "--config", conf)...)
		waitCaughtUp(t, s, b, "added", 60*time.Second, "blocks", "pairs")
		if err := p.stop(t); err != nil {
			t.Fatalf("chainsink run exited with %v", err)
		}
	}
	wethOnly := writeTables(t, cfg, fmt.Sprintf("contracts:\n  - {name: weth, abi: WETH9, address: %q, events: [Deposit, Transfer]}\n",
		hexAddr(u.weth)))
	backfill(wethOnly, "blocks")
	index(wethOnly, "blocks:bundle")
	if got := queryStrings(t, s.Pool(), `SELECT count(*)::text FROM logs WHERE address <> $1`, u.weth.Bytes()); got[0] != "0" {
		t.Fatalf("%s logs of other contracts than WETH after its set's backfill", got[0])
	}

	both := writeTables(t, cfg, u.tables())
	if out := backfill(both, "pairs", "--sets", "univ2"); !strings.Contains(out, `job "pairs:0-latest:filtered:univ2"`) {
		t.Fatalf("backfill of the added set: %q", out)
	}
	index(both, "blocks:bundle", "pairs:bundle-merge")
	checkFilteredUniswap(t, u, s, cfg)
}

// checkFilteredUniswap checks the tables after a filtered backfill of u.tables(): see TestFilteredBackfillUniswapV2.
func checkFilteredUniswap(t *testing.T, u *uniswapV2, s *store.Store, cfg store.Config) {
	t.Helper()
	ctx := context.Background()
	checkTyped(t, s, u.sent, u.wantEvents, u.wantCalls, u.typedTables())

	// The logs, as the events table decodes them, are those of the configured contracts' events alone.
	keep := map[common.Address][]string{u.pair: {"Swap", "Sync", "Mint"}, u.weth: {"Deposit", "Transfer"}, u.factory: {"PairCreated"}}
	want := map[common.Hash][]pgEvent{}
	for h, evs := range u.wantEvents {
		for _, e := range evs {
			if slices.Contains(keep[e.Address], e.Name) {
				want[h] = append(want[h], e)
			}
		}
	}
	rows, err := s.Pool().Query(ctx, `SELECT e.transaction_hash, e.address, e.event_name, e.abi_name, e.args
		FROM events e ORDER BY e.block_number, e.log_index`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[common.Hash][]pgEvent{}
	for rows.Next() {
		var txh, addr []byte
		var e pgEvent
		var args map[string]any
		if err := rows.Scan(&txh, &addr, &e.Name, &e.ABI, &args); err != nil {
			t.Fatal(err)
		}
		e.Address, e.Args = common.BytesToAddress(addr), jsonStrings(t, args)
		got[common.BytesToHash(txh)] = append(got[common.BytesToHash(txh)], e)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	compareByTx(t, "events", u.sent, want, got)
	n := 0
	for _, evs := range want {
		n += len(evs)
	}
	if logs := queryStrings(t, s.Pool(), `SELECT count(*)::text FROM logs`); logs[0] != fmt.Sprint(n) {
		t.Errorf("%s logs stored, want the %d of the configured events", logs[0], n)
	}

	// The transactions are the calls of the pair's call tables, with their receipts.
	var wantTxs []string
	for _, h := range u.sent {
		if cl := u.wantCalls[h]; cl != nil && cl.Address == u.pair {
			wantTxs = append(wantTxs, strings.ToLower(h.Hex())+" 1")
		}
	}
	if got := queryStrings(t, s.Pool(), `SELECT hex(hash) || ' ' || status FROM transactions ORDER BY block_number, transaction_index`); !slices.Equal(got, wantTxs) {
		t.Errorf("transactions %v, want the pair's swap and mint calls %v", got, wantTxs)
	}
	if got := queryStrings(t, s.Pool(), `SELECT count(*) || ' ' || bool_and(filtered) || ' ' || sum(transaction_count) FROM blocks`); got[0] != fmt.Sprintf("%d true %d", u.head+1, len(u.sent)) {
		t.Errorf("blocks: %s, want %d filtered blocks counting all %d transactions", got[0], u.head+1, len(u.sent))
	}
	requireVerified(t, []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}, u.c.url, int64(u.head)+1, nil)
}

// TestFilteredFollowThroughReorgs: `chainsink follow --config` (filtered mode) and `chainsink run` live on a
// simulated chain of WETH deposits that reorgs onto a longer branch and onto a shorter one. After each, the
// stored blocks are the node's canonical chain, every one filtered, the logs are exactly WETH's Deposit logs
// of that chain (eth_getLogs of the node), the typed table has one row per log, and verify passes.
func TestFilteredFollowThroughReorgs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newSimChain(t)
	_, pack, weth := deployWETH(t, c)
	for range 4 {
		var txs []common.Hash
		for i := range 3 {
			txs = append(txs, c.send(i, &weth, big.NewInt(1e15), pack("deposit")))
		}
		c.commit(txs...)
	}
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	conf := writeTables(t, cfg, fmt.Sprintf("contracts:\n  - {name: weth, abi: WETH9, address: %q, events: [Deposit]}\n", hexAddr(weth)))
	start(t, append([]string{"follow", "--config", conf, "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--poll-interval", "50ms", "--log-format", "json"}, dbArgs...)...)
	run := start(t, append(runArgs(cfg, b.Addr(), "follow", "blocks:bundle"), "--config", conf)...)

	check := func(what string) {
		t.Helper()
		waitCanonical(t, c, s, what)
		head := c.head()
		var want []string
		waitFor(t, 30*time.Second, what+": the node's Deposit logs stored", func() (bool, error) {
			logs, err := c.client.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), ToBlock: new(big.Int).SetUint64(head),
				Addresses: []common.Address{weth}})
			if err != nil {
				return false, err
			}
			want = want[:0]
			for _, l := range logs {
				want = append(want, fmt.Sprintf("%d %d %s", l.BlockNumber, l.Index, strings.ToLower(l.TxHash.Hex())))
			}
			got := queryStrings(t, s.Pool(), `SELECT block_number || ' ' || log_index || ' ' || hex(transaction_hash) FROM logs
				ORDER BY block_number, log_index`)
			return slices.Equal(got, want), nil
		})
		if got := queryStrings(t, s.Pool(), `SELECT (SELECT count(*) FROM weth_evt_deposit) || ' ' ||
			(SELECT count(*) FILTER (WHERE NOT filtered) FROM blocks) || ' ' || (SELECT count(*) FROM transactions)`); got[0] != fmt.Sprintf("%d 0 0", len(want)) {
			t.Errorf("%s: deposits, unfiltered blocks, transactions: %s, want %d 0 0", what, got[0], len(want))
		}
		requireVerified(t, dbArgs, c.url, int64(head)+1, nil)
	}
	check("the chain followed to its head")
	head := c.head()
	if err := c.backend.Fork(c.block(head - 2).Hash()); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		c.backend.Commit()
	}
	check("a reorg 2 deep onto a longer branch")
	head = c.head()
	if err := c.backend.Fork(c.block(head - 3).Hash()); err != nil {
		t.Fatal(err)
	}
	c.backend.Commit()
	if c.head() >= head {
		t.Fatalf("the shorter branch is not canonical: head %d, was %d", c.head(), head)
	}
	check("a reorg onto a shorter branch")

	if err := run.stop(t); err != nil {
		t.Fatalf("run exited with %v", err)
	}
}
