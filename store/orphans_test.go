package store_test

import (
	"context"
	"testing"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

const orphanHeight = 500

// reorgItems are the ethereum-etl items of two versions of height orphanHeight, made from mainnet block
// 17173049: the first whole, the replacement with another block hash and only the first keepTxs transactions
// and their logs, as when a reorg's new block holds fewer transactions than the one it orphans.
func reorgItems(t *testing.T, keepTxs int) (old, replacement map[string][][]byte) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	old, replacement, err = fixtures.ReorgItems(root, orphanHeight, keepTxs,
		"0x00000000000000000000000000000000000000000000000000000000000000aa")
	if err != nil {
		t.Fatal(err)
	}
	return old, replacement
}

// writeItems stores items as ethereum-etl messages, one batch per group, offsets going on from next.
func writeItems(t *testing.T, s *store.Store, next *int64, groups ...[][]byte) {
	t.Helper()
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.New(reg, nil)
	for _, items := range groups {
		b := store.NewBatch("etl", "items", 0, *next, format.EthereumETL.Mode())
		for _, item := range items {
			rows, failure := dec.Decode(format.EthereumETL, nil, item)
			if failure != nil {
				t.Fatalf("decode %.80s: %v", item, failure.Err)
			}
			b.Add(store.Message{Offset: *next, Value: item, Rows: rows})
			*next++
		}
		if _, err := store.WriteBatch(context.Background(), s.Pool(), b); err != nil {
			t.Fatal(err)
		}
	}
}

func concat(lists ...[][]byte) [][]byte {
	var out [][]byte
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func tableContents(t *testing.T, s *store.Store, schema string) map[string]string {
	t.Helper()
	out, err := pgtest.Checksums(context.Background(), s.Pool(), schema)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOrphansOfAnItemReorg: ethereum-etl items of a block, then those of its replacement at the same height
// with 3 of its 116 transactions. Whether the new block item comes before the new transactions and logs, after
// them, or with them in one batch, the stored tables must equal those of the replacement alone: no orphaned
// transaction, log, event, call or token transfer of the old block stays.
func TestOrphansOfAnItemReorg(t *testing.T) {
	t.Parallel()
	old, repl := reorgItems(t, 3)
	rest := concat(repl["transaction"], repl["log"])
	if len(old["transaction"]) != 116 || len(repl["transaction"]) != 3 || len(repl["log"]) == 0 {
		t.Fatalf("fixture: %d old transactions, %d new, %d new logs", len(old["transaction"]), len(repl["transaction"]), len(repl["log"]))
	}
	ref, refCfg := pgtest.Open(t)
	var next int64
	writeItems(t, ref, &next, concat(repl["block"], rest))
	want := tableContents(t, ref, refCfg.Schema)

	for name, order := range map[string][][][]byte{
		"block item first":   {repl["block"], rest},
		"block item last":    {rest, repl["block"]},
		"one batch":          {concat(rest, repl["block"])},
		"block item between": {repl["transaction"], repl["block"], repl["log"]},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, cfg := pgtest.Open(t)
			var next int64
			writeItems(t, s, &next, concat(old["block"], old["transaction"], old["log"]))
			writeItems(t, s, &next, order...)
			got := tableContents(t, s, cfg.Schema)
			for table, w := range want {
				if got[table] != w {
					t.Errorf("%s: %s; the replacement alone: %s", table, got[table], w)
				}
			}
			rep, err := store.Verify(context.Background(), s.Pool(), store.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("verify after the reorg: failing %v", failing(rep))
			}
		})
	}
}

// TestTombstoneInEitherMode: a tombstone removes every row of its height from every table, whether its batch
// replaces by block (bundles) or by item; the other heights stay.
func TestTombstoneInEitherMode(t *testing.T) {
	t.Parallel()
	old, _ := reorgItems(t, 3)
	for _, mode := range []chain.Mode{chain.ReplaceBlocks, chain.ReplaceRows} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			s := seedChain(t)                  // heights 100-109, as bundles
			writeBlocks(t, s.Pool(), 105, 106) // sampleRows there: contracts, which mainnet block 17173049 has none of
			var next int64
			writeItems(t, s, &next, concat(old["block"], old["transaction"], old["log"])) // height 500, as items
			b := store.NewBatch("tombstones", "t", 0, 0, mode)
			b.Add(store.Message{Offset: 0, Rows: chain.Rows{Tombstones: []uint64{orphanHeight, 105}}})
			if _, err := store.WriteBatch(context.Background(), s.Pool(), b); err != nil {
				t.Fatal(err)
			}
			for _, table := range chain.CoreTables.Names() {
				var gone, kept int64
				if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE block_number IN (500, 105)),
					count(*) FILTER (WHERE block_number NOT IN (500, 105)) FROM (SELECT `+
					map[bool]string{true: "number", false: "block_number"}[table == "blocks"]+` AS block_number FROM `+table+`) x`).
					Scan(&gone, &kept); err != nil {
					t.Fatal(err)
				}
				if gone != 0 || kept == 0 {
					t.Errorf("%s: %d rows of the tombstoned heights left, %d of the others", table, gone, kept)
				}
			}
		})
	}
}
