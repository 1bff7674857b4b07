package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// argLog records the statements of batches with their arguments.
type argLog struct {
	mu   sync.Mutex
	sql  []string
	args [][]any
}

func (l *argLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (l *argLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (l *argLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (l *argLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sql, l.args = append(l.sql, d.SQL), append(l.args, d.Args)
}
func (l *argLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// seqScans are the relations that a plan (EXPLAIN (FORMAT JSON)) reads with a sequential scan.
func seqScans(plan []byte) ([]string, error) {
	var out []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if n["Node Type"] == "Seq Scan" {
			out = append(out, fmt.Sprint(n["Relation Name"]))
		}
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				walk(m)
			}
		}
	}
	var doc []map[string]any
	if err := json.Unmarshal(plan, &doc); err != nil {
		return nil, err
	}
	for _, d := range doc {
		if p, ok := d["Plan"].(map[string]any); ok {
			walk(p)
		}
	}
	return out, nil
}

// TestItemDeletesUseTheBlockIndex: the statements that an ethereum-etl batch sends before its COPY (the
// replacement of each item's rows and the removal of a reorg's orphans) read the big tables by block number,
// never with a sequential scan, with the plan Postgres makes for their arguments and with a generic plan (the
// one a prepared statement falls back to). Joined to unnest() of the keys alone, the planner hash-joined a
// scan of the whole of logs, transactions and token_transfers once per batch with a block item: the cost of
// an ethereum-etl batch grew with the table.
func TestItemDeletesUseTheBlockIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// With typed tables of an event and of a function: their rows are replaced by their own keys too.
	w := newTypedWorld(t, `contracts:
  - {name: erc20, abi: ERC20, events: [Transfer], calls: [transfer]}
`)
	s, cfg := w.s, w.cfg
	// Mainnet block 17173049's rows, analyzed, then 299 copies of them that the statistics do not know of yet:
	// what a database that chainsink fills looks like between two autovacuum analyzes, whose block_number
	// statistics (a few distinct values, so "a block holds most of the table") are far from the truth.
	base := swapBlock(t, 1)
	w.dec.Enrich(&base)
	// Partitions of 100 heights, as `chainsink run` would create them: the plans must prune to the
	// partitions of the keys' heights, and read those by index.
	if err := store.NewPartitioner(100).Ensure(ctx, s.Pool(), []uint64{1, 150, 299}); err != nil {
		t.Fatal(err)
	}
	b := store.NewBatch("g", "seed", 0, 0, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 0, Rows: base})
	if _, err := w.writer.Write(ctx, s.Pool(), b); err != nil {
		t.Fatal(err)
	}
	// And block 150, with which the batch's block collides: its items are then written with their deletes by
	// key, which a batch of fresh keys does without (writeRows).
	b = store.NewBatch("g", "seed", 0, 1, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 1, Rows: chain.Rows{Blocks: swapBlock(t, 150).Blocks}})
	if _, err := w.writer.Write(ctx, s.Pool(), b); err != nil {
		t.Fatal(err)
	}
	big := map[string]bool{}
	for _, tb := range []string{"transactions", "logs", "token_transfers", "events", "calls", "erc20_evt_transfer", "erc20_call_transfer"} {
		big[tb] = true
		if _, err := s.Pool().Exec(ctx, `DO $$ DECLARE p regclass; BEGIN
			FOR p IN SELECT relid FROM pg_partition_tree('`+tb+`') WHERE isleaf LOOP
				EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', p);
			END LOOP; END $$; ANALYZE `+tb); err != nil {
			t.Fatal(err)
		}
		var cols []string
		rows, err := s.Pool().Query(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name <> 'block_number' ORDER BY ordinal_position`, cfg.Schema, tb)
		if err != nil {
			t.Fatal(err)
		}
		if cols, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
		list := strings.Join(cols, ", ")
		if _, err := s.Pool().Exec(ctx, `INSERT INTO `+tb+` (block_number, `+list+`)
			SELECT n, `+list+` FROM `+tb+`, generate_series(2, 300) n WHERE block_number = 1`); err != nil {
			t.Fatal(err)
		}
	}

	// One batch of items: a block of a height stored with another hash (a reorg), a transaction and a log.
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	log := &argLog{}
	pc.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	items := store.NewBatch("g", "items", 0, 0, chain.ReplaceRows)
	at := swapBlock(t, 150)
	at.Blocks[0].Hash = []byte("another block at height 150....")
	items.Add(msg(0, chain.Rows{Blocks: at.Blocks}))
	for i, r := range []chain.Rows{{Transactions: at.Transactions}, {Logs: at.Logs}} {
		w.dec.Enrich(&r)
		if len(r.Typed) == 0 {
			t.Fatalf("item %d has no typed rows", i)
		}
		items.Add(msg(int64(i+1), r))
	}
	if _, err := w.writer.Write(ctx, pool, items); err != nil {
		t.Fatal(err)
	}

	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	explained := 0
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, sql := range log.sql {
		if strings.Contains(sql, "set_config('enable_seqscan', 'off', true)") {
			// The write path's planner settings (the fence sets them), for the statements after it.
			if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !strings.Contains(strings.ToUpper(sql), "DELETE FROM") {
			continue
		}
		explained++
		for _, mode := range []string{"auto", "force_generic_plan"} {
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			var plan []byte
			if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, log.args[i]...).Scan(&plan); err != nil {
				t.Fatalf("explain %s: %v", sql, err)
			}
			scans, err := seqScans(plan)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range scans {
				// A partition stands for its table.
				if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT inhparent::regclass::text FROM pg_inherits
					WHERE inhrelid = $1::regclass), $1)`, r).Scan(&r); err != nil {
					t.Fatal(err)
				}
				if big[r] {
					t.Errorf("plan (%s) scans all of %s:\n%s", mode, r, sql)
				}
			}
		}
	}
	if _, err := conn.Exec(ctx, "RESET plan_cache_mode; RESET enable_seqscan"); err != nil {
		t.Fatal(err)
	}
	if explained < 5 {
		t.Fatalf("%d deletes seen", explained)
	}
}
