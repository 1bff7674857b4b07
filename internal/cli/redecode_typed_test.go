package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

const typedConfig = `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync]
  - {name: erc20, abi: ERC20, events: [Transfer]}
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", calls: ["*"]}
`

func ptr[T any](v T) *T { return &v }

// withPairCreation appends to block 17173049 a PairCreated log of the Uniswap V2 factory for the WETH/USDT
// pair (0x0d4a…1852), whose swaps the block holds: its registration lands in the same block.
func withPairCreation(raw chain.Rows) chain.Rows {
	last := raw.Logs[len(raw.Logs)-1]
	pair := common.HexToAddress("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852")
	raw.Logs = append(raw.Logs, chain.Log{BlockNumber: last.BlockNumber, LogIndex: last.LogIndex + 1,
		TransactionHash: last.TransactionHash, TransactionIndex: last.TransactionIndex, BlockTimestamp: last.BlockTimestamp,
		BlockHash: last.BlockHash, Address: common.HexToAddress("0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f").Bytes(),
		Topics: [][]byte{crypto.Keccak256([]byte("PairCreated(address,address,address,uint256)")),
			common.LeftPadBytes(common.HexToAddress("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2").Bytes(), 32),
			common.LeftPadBytes(common.HexToAddress("0xdac17f958d2ee523a2206206994597c13d831ec7").Bytes(), 32)},
		Data: append(common.LeftPadBytes(pair.Bytes(), 32), common.LeftPadBytes([]byte{1}, 32)...)})
	return raw
}

// TestRedecodeFillsTypedTables: a set added after the history was stored is filled from the stored logs and
// transactions with `redecode --config --typed-only`, factory registrations included, into exactly what a
// live decode with the configuration would have stored, the pair's rows above the range included (stored by
// the restarted run before the redecode registered the pair); the events table is left as it was; a second
// run changes nothing.
func TestRedecodeFillsTypedTables(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	raw := withPairCreation(rawBlock17173049(t))
	conf := filepath.Join(t.TempDir(), "chainsink.yaml")
	if err := os.WriteFile(conf, []byte(typedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := abiOptions{config: conf}
	reg, tables, err := opts.load()
	if err != nil {
		t.Fatal(err)
	}
	typedTables, discovery := typedSchema(tables)

	// writeLive writes rows as `chainsink run --config` does, as the next message of a partition.
	all, err := chain.CoreTables.With(typedTables...)
	if err != nil {
		t.Fatal(err)
	}
	writeLive := func(db store.DB, offset int64, rows chain.Rows) {
		t.Helper()
		decode.New(reg, nil).WithTables(tables).Enrich(&rows)
		b := store.NewBatch("g", "blocks", 0, offset, chain.ReplaceBlocks)
		b.Add(store.Message{Offset: offset, Rows: rows})
		if _, err := store.NewWriter(all).WithDiscovery(discovery).Write(ctx, db, b); err != nil {
			t.Fatal(err)
		}
	}
	// A later block, above the redecoded range, that `run` stores after its restart with the configuration,
	// before the redecode has registered the pair: its gate keeps none of the pair's rows there.
	later := fixtures.RenumberRows(ptr(rawBlock17173049(t)), 17173200)

	// The reference: both blocks written live, through a writer of the typed tables.
	ref, refCfg := pgtest.Open(t)
	if _, _, err := runCLI(ctx, append([]string{"tables", "apply", "--config", conf}, dbArgs(refCfg)...)...); err != nil {
		t.Fatal(err)
	}
	writeLive(ref.Pool(), 0, raw)
	writeLive(ref.Pool(), 1, later)
	want, err := pgtest.ChecksumsOf(ctx, ref.Pool(), refCfg.Schema, typedTables)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"univ2_evt_swap", "univ2_evt_sync", "erc20_evt_transfer", "weth_call_approve", "factory_children"} {
		if strings.HasPrefix(want[tb], "0 rows") {
			t.Fatalf("reference: %s is empty: %v", tb, want)
		}
	}

	// The history as stored before the sets existed: raw rows and events, no typed tables.
	s, cfg := pgtest.Open(t)
	enriched := raw
	decode.New(reg, nil).Enrich(&enriched)
	storeRaw(t, ctx, s.Pool(), enriched)
	if _, _, err := runCLI(ctx, append([]string{"tables", "apply", "--config", conf}, dbArgs(cfg)...)...); err != nil {
		t.Fatal(err)
	}
	writeLive(s.Pool(), 1, later)
	var pairRows int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM univ2_evt_swap`).Scan(&pairRows); err != nil || pairRows != 0 {
		t.Fatalf("before the redecode the gate kept %d swaps of the unregistered pair (%v)", pairRows, err)
	}
	events, err := pgtest.Checksums(ctx, s.Pool(), cfg.Schema)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"redecode", "--config", conf, "--typed-only", "--from", "17173000", "--to", "17173100",
		"--batch-blocks", "7"}, dbArgs(cfg)...)
	for run := 1; run <= 2; run++ {
		out, stderr, err := runCLI(ctx, args...)
		if err != nil {
			t.Fatalf("redecode: %v\n%s", err, stderr)
		}
		if !strings.Contains(out, "typed tables only") || !strings.Contains(out, fmt.Sprintf("%d typed tables:", len(typedTables))) {
			t.Fatalf("summary: %s", out)
		}
		got, err := pgtest.ChecksumsOf(ctx, s.Pool(), cfg.Schema, typedTables)
		if err != nil {
			t.Fatal(err)
		}
		for tb, sum := range want {
			if got[tb] != sum {
				t.Errorf("run %d: %s is %s, live %s", run, tb, got[tb], sum)
			}
		}
		after, err := pgtest.Checksums(ctx, s.Pool(), cfg.Schema)
		if err != nil {
			t.Fatal(err)
		}
		for tb, sum := range events {
			if after[tb] != sum {
				t.Errorf("run %d: --typed-only changed %s", run, tb)
			}
		}
	}
}
