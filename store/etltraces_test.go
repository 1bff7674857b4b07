package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// traceItems are ethereum-etl trace items for height orphanHeight as items (a block of reorgItems): the
// real trace items of mainnet block 508110 (a contract creation, an ether transfer, two rewards), moved onto
// the first two transactions of the block whose block and transaction items are blockItems, and given its
// block hash.
func traceItems(t *testing.T, blockItems map[string][][]byte) [][]byte {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	read := func(item []byte) map[string]any {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(item))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	blockHash := read(blockItems["block"][0])["hash"]
	txHash := map[string]any{}
	for _, item := range blockItems["transaction"] {
		m := read(item)
		txHash[m["transaction_index"].(json.Number).String()] = m["hash"]
	}
	var out [][]byte
	for _, item := range readLinesOf(t, filepath.Join(root, "ethereum-etl/tests/resources/test_stream/blocks_508110_508110/expected_traces.json")) {
		m := read(item)
		m["block_number"], m["block_hash"] = orphanHeight, blockHash
		if idx, ok := m["transaction_index"].(json.Number); ok {
			m["transaction_hash"] = txHash[idx.String()]
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func readLinesOf(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

func count(t *testing.T, s *store.Store, sql string) int64 {
	t.Helper()
	var n int64
	if err := s.Pool().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestETLTracesInAnyOrder: ethereum-etl's trace items travel apart from their transactions (another topic,
// another partition), so they may be stored before or after them, twice, or with their transaction
// delivered again later. Every order stores what one tidy pass does: the two frames, and the contract the
// create frame made, with its code.
func TestETLTracesInAnyOrder(t *testing.T) {
	t.Parallel()
	old, _ := reorgItems(t, 3)
	traces := traceItems(t, old)
	chainItems := concat(old["block"], old["transaction"], old["log"])

	ref, refCfg := pgtest.Open(t)
	var next int64
	writeItems(t, ref, &next, chainItems, traces)
	want := tableContents(t, ref, refCfg.Schema)
	if n := count(t, ref, `SELECT count(*) FROM traces`); n != 2 {
		t.Fatalf("%d traces stored, want the 2 of transactions (the rewards are none's)", n)
	}
	if n := count(t, ref, `SELECT count(*) FROM contracts WHERE code_hash IS NOT NULL AND transaction_index = 0
		AND address = '\xaec3266ebd18361ab1378646e91f0c5c373038da'`); n != 1 {
		t.Fatalf("%d contracts of the create trace with code", n)
	}
	if n := count(t, ref, `SELECT count(*) FROM contracts`); n != 1 {
		t.Fatalf("%d contracts, want the create trace's only (a transaction item makes none)", n)
	}

	for name, order := range map[string][][][]byte{
		"traces first":                    {traces, chainItems},
		"traces twice":                    {traces, chainItems, traces},
		"transactions again after traces": {chainItems, traces, old["transaction"]},
		"one batch":                       {concat(traces, chainItems)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, cfg := pgtest.Open(t)
			var next int64
			writeItems(t, s, &next, order...)
			got := tableContents(t, s, cfg.Schema)
			for table, w := range want {
				if got[table] != w {
					t.Errorf("%s: %s; in order: %s", table, got[table], w)
				}
			}
		})
	}
}

// TestETLTraceOrphans: a reorg's new block item removes the traces of its height that carry the old block
// hash, and the contracts they created, whether the new block's own traces were stored before it or come
// after; the new traces stay.
func TestETLTraceOrphans(t *testing.T) {
	t.Parallel()
	old, repl := reorgItems(t, 3)
	oldTraces, newTraces := traceItems(t, old), traceItems(t, repl)
	newTx1 := newTraces[1:2] // the ether transfer of transaction 1; the new block creates no contract
	rest := concat(repl["transaction"], repl["log"])

	ref, refCfg := pgtest.Open(t)
	var next int64
	writeItems(t, ref, &next, concat(repl["block"], rest), newTx1)
	want := tableContents(t, ref, refCfg.Schema)

	for name, order := range map[string][][][]byte{
		"new traces before the block item": {newTx1, repl["block"], rest},
		"new traces after the block item":  {repl["block"], rest, newTx1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, cfg := pgtest.Open(t)
			var next int64
			writeItems(t, s, &next, concat(old["block"], old["transaction"], old["log"]), oldTraces)
			if n := count(t, s, `SELECT count(*) FROM contracts`); n != 1 {
				t.Fatalf("%d contracts of the old block", n)
			}
			writeItems(t, s, &next, order...)
			got := tableContents(t, s, cfg.Schema)
			for table, w := range want {
				if got[table] != w {
					t.Errorf("%s: %s; the replacement alone: %s", table, got[table], w)
				}
			}
			if n := count(t, s, `SELECT count(*) FROM traces`); n != 1 {
				t.Errorf("%d traces, want the new block's one", n)
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
