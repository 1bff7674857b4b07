package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// TestRetentionKeepsTheNewestBlocks: retention of 4 of the heights 100-109 leaves every table, typed ones
// included, equal to a store that only ever held 106-109; the registries keep their rows; the horizon is
// recorded, status and verify start there (verify passes, the horizon's parent being gone on purpose), and
// a second run deletes nothing.
func TestRetentionKeepsTheNewestBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := seedRange(t, 100, 109)
	want, wantCfg := seedRange(t, 106, 109)
	// A typed table and a factory registration, below and above the horizon.
	for _, db := range []*store.Store{s, want} {
		if _, err := store.ApplyTables(ctx, db.Pool(), db.Schema(), compileRecords(t, callsConfig)); err != nil {
			t.Fatal(err)
		}
	}
	// s in partitions of 3 heights ([99,102), [102,105), … [108,111) and the next one): retention drops the
	// first two whole and deletes the first height of the third. want has only its default partitions.
	heights := []uint64{}
	for h := uint64(100); h <= 109; h++ {
		heights = append(heights, h)
	}
	if err := store.NewPartitioner(3).Ensure(ctx, s.Pool(), heights); err != nil {
		t.Fatal(err)
	}
	// A call of the height's first transaction, as its decoding would store it (verify checks the parent).
	typedRow := `INSERT INTO tok_call_transfer SELECT block_number, block_timestamp, hash, transaction_index, status,
		from_address, to_address, '\x04', 7, '{}' FROM transactions WHERE block_number = $1 AND transaction_index = 0`
	child := `INSERT INTO factory_children VALUES (101, 3, 'univ2', '\x05', '\x06', '\x07', '2023-05-02T04:00:00Z')`
	for _, q := range []struct {
		db   *store.Store
		sql  string
		args []any
	}{{s, typedRow, []any{102}}, {s, typedRow, []any{107}}, {want, typedRow, []any{107}}, {s, child, nil}, {want, child, nil}} {
		if _, err := q.db.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	tables, err := chain.CoreTables.With(append(compileTables(t, callsConfig).WriteSchema(), chain.ChildrenTable)...)
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	res, err := store.Retain(ctx, s.Pool(), store.RetentionOptions{KeepBlocks: 4, ChunkBlocks: 4,
		Progress: func(done, total int64) { chunks++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Head != 109 || res.Horizon != 106 || res.From != 100 || chunks != 2 || res.Deleted["blocks"] != 6 ||
		res.Deleted["transactions"] != 116 || res.Deleted["tok_call_transfer"] != 0 { // 116: height 105's alone
		t.Fatalf("result %+v after %d chunks", res, chunks)
	}
	wantDropped := map[string][]string{}
	for _, tb := range append(slices.Clone(partitionedCore), "tok_call_transfer") {
		wantDropped[tb] = []string{tb + "_p99", tb + "_p102"}
	}
	if !maps.EqualFunc(res.Dropped, wantDropped, slices.Equal) {
		t.Fatalf("dropped %v, want %v", res.Dropped, wantDropped)
	}
	var recorded []string
	if err := s.Pool().QueryRow(ctx, `SELECT dropped_partitions FROM retention_runs`).Scan(&recorded); err != nil ||
		len(recorded) != 2*len(wantDropped) {
		t.Fatalf("retention_runs.dropped_partitions = %v (%v)", recorded, err)
	}
	got, err := pgtest.ChecksumsOf(ctx, s.Pool(), cfg.Schema, tables)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := pgtest.ChecksumsOf(ctx, want.Pool(), wantCfg.Schema, tables)
	if err != nil {
		t.Fatal(err)
	}
	for table, w := range ref {
		if got[table] != w {
			t.Errorf("%s: %s; a store of 106-109 only: %s", table, got[table], w)
		}
	}

	h, err := store.ReadHorizon(ctx, s.Pool())
	if err != nil || h == nil || h.Block != 106 || h.KeepBlocks != 4 {
		t.Fatalf("horizon %+v, %v", h, err)
	}
	st, err := store.Status(ctx, s.Pool(), "", true)
	if err != nil || st.Horizon == nil || st.Horizon.Block != 106 || st.OldestBlock == nil || st.OldestBlock.Number != 106 {
		t.Fatalf("status: horizon %+v, oldest block %+v, %v", st.Horizon, st.OldestBlock, err)
	}
	from := int64(100)
	rep, err := store.Verify(ctx, s.Pool(), store.VerifyOptions{From: &from})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.From != 106 || rep.Horizon == nil || *rep.Horizon != 106 || rep.Blocks != 4 {
		t.Errorf("verify from 100 after retention: from %d, horizon %v, %d blocks, failing %v", rep.From, rep.Horizon, rep.Blocks, failing(rep))
	}
	again, err := store.Retain(ctx, s.Pool(), store.RetentionOptions{KeepBlocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range again.Deleted {
		if n != 0 {
			t.Errorf("the second run deleted %d rows of %s", n, table)
		}
	}
}

// TestRetentionResumes: a run cancelled after its first chunk leaves whole heights deleted and no horizon
// recorded; running it again finishes and records it.
func TestRetentionResumes(t *testing.T) {
	t.Parallel()
	s, _ := seedRange(t, 100, 109)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := store.Retain(ctx, s.Pool(), store.RetentionOptions{KeepBlocks: 2, ChunkBlocks: 3,
		Progress: func(done, total int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	var low int64
	if err := s.Pool().QueryRow(context.Background(), `SELECT min(block_number) FROM logs`).Scan(&low); err != nil || low != 103 {
		t.Fatalf("after the first chunk the lowest log is at %d (%v), want 103", low, err)
	}
	if h, err := store.ReadHorizon(context.Background(), s.Pool()); err != nil || h != nil {
		t.Fatalf("horizon of an unfinished run: %+v, %v", h, err)
	}
	res, err := store.Retain(context.Background(), s.Pool(), store.RetentionOptions{KeepBlocks: 2, ChunkBlocks: 3})
	if err != nil || res.From != 103 || res.Horizon != 108 || res.Deleted["blocks"] != 5 {
		t.Fatalf("resumed run: %+v, %v", res, err)
	}
	if h, err := store.ReadHorizon(context.Background(), s.Pool()); err != nil || h == nil || h.Block != 108 {
		t.Fatalf("horizon %+v, %v", h, err)
	}
}

func compileTables(t *testing.T, yaml string) *typed.Tables {
	t.Helper()
	ts, err := typed.CompileYAML("c.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func compileRecords(t *testing.T, yaml string) []store.TypedTable {
	return compileTables(t, yaml).Records()
}
