package store_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// referenceTables are the tables that a Citus deployment would make reference tables (copied to every
// worker) rather than distribute by block number: small registries that the write path reads or updates by
// their own keys. docs/scaling.md gives the plan; a new table must be put in this list or be distributable.
var referenceTables = map[string]string{
	"kafka_offsets":        "the fence: one row per partition, updated by (group, topic, partition)",
	"offset_changes":       "the audit of offsets set by hand",
	"dead_letters":         "failed messages by offset; a few, read by the operator",
	"backfill_checkpoints": "one row per backfill job",
	"follow_blocks":        "the follower's last hashes: --keep-hashes rows per job",
	"typed_tables":         "one row per generated table",
	"tokens":               "token metadata by address, joined with token_transfers by the view",
	"goose_db_version":     "the migrations applied",
	"retention_runs":       "one row per chainsink retention run",
}

// distributionColumn is the block number column of a distributed table.
func distributionColumn(table string) string {
	if table == "blocks" {
		return "number"
	}
	return "block_number"
}

// TestSchemaIsDistributable reads the catalog of a migrated schema with typed tables (a factory set
// included): every table is a reference table of the list above, or has its block number column in its
// primary key and in every unique index, as Citus requires of a table distributed by it; and no table has a
// foreign key, which between distributed tables would have to follow the distribution column.
func TestSchemaIsDistributable(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../internal/demo/chainsink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := newTypedWorld(t, string(demo)+strings.Replace(strings.TrimPrefix(factoryConfig, "contracts:\n"), "name: univ2", "name: univ2_children", 1))
	ctx := context.Background()
	db := w.s.Pool()

	rows, err := db.Query(ctx, `
		SELECT c.relname,
			coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}'),
			coalesce((SELECT array_agg(pg_get_indexdef(i.indexrelid)) FROM pg_index i
				WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisprimary)), '{}'),
			(SELECT count(*) FROM pg_constraint k WHERE (k.conrelid = c.oid OR k.confrelid = c.oid) AND k.contype = 'f')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		name    string
		columns []string
		unique  []string
		fks     int64
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var x table
		return x, r.Scan(&x.name, &x.columns, &x.unique, &x.fks)
	})
	if err != nil {
		t.Fatal(err)
	}
	var distributed, reference int
	for _, tb := range tables {
		if tb.fks != 0 {
			t.Errorf("%s has %d foreign keys", tb.name, tb.fks)
		}
		if _, ok := referenceTables[tb.name]; ok {
			reference++
			continue
		}
		distributed++
		col := distributionColumn(tb.name)
		if !slices.Contains(tb.columns, col) {
			t.Errorf("%s has no %s column: neither a reference table nor distributable by block number", tb.name, col)
			continue
		}
		if len(tb.unique) == 0 {
			t.Errorf("%s has no primary key", tb.name)
		}
		for _, ix := range tb.unique {
			keys := ix[strings.LastIndex(ix, "(")+1 : strings.LastIndex(ix, ")")]
			if !slices.Contains(strings.Split(strings.ReplaceAll(keys, " ", ""), ","), col) {
				t.Errorf("%s: unique index without %s: %s", tb.name, col, ix)
			}
		}
	}
	// The core tables, traces and contracts, factory_children and the typed tables; every registry.
	if want := len(chain.CoreTables) + 1 + len(w.tables.All); distributed != want || reference != len(referenceTables) {
		t.Errorf("%d distributed tables (want %d) and %d reference tables (want %d)", distributed, want, reference, len(referenceTables))
	}
}

// statementLog records every statement a pool sends, batched ones included.
type statementLog struct {
	mu  sync.Mutex
	sql []string
}

func (l *statementLog) add(sql string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sql = append(l.sql, sql)
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add(d.SQL)
	return ctx
}
func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (l *statementLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.add(d.SQL)
}
func (l *statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

var modification = regexp.MustCompile(`(?i)\b(DELETE\s+FROM|UPDATE)\s+"?([a-z_0-9]+)"?`)

// TestWritesFilterOnTheBlockNumber records what the write path sends while it stores bundles, replaces them,
// stores items with a reorg's orphans and a tombstone, registers a factory child and re-derives a range:
// every DELETE of a distributed table names its block number column, so that Citus can route it to the
// shards of those heights, and nothing but reference tables is UPDATEd.
func TestWritesFilterOnTheBlockNumber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newTypedWorld(t, factoryConfig)
	pc, err := w.cfg.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	log := &statementLog{}
	pc.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	enrich := func(r chain.Rows) chain.Rows {
		w.dec.Enrich(&r)
		return r
	}
	write := func(b *store.Batch) {
		t.Helper()
		if _, err := w.writer.Write(ctx, pool, b); err != nil {
			t.Fatal(err)
		}
	}
	bundles := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	bundles.Add(msg(0, enrich(creationBlock(t, 200))))
	bundles.Add(msg(1, enrich(swapBlock(t, 201))))
	bundles.Add(msg(2, sampleRows(202)))
	write(bundles)
	again := store.NewBatch("g", "blocks", 0, 3, chain.ReplaceBlocks)
	again.Add(msg(3, sampleRows(202)))
	again.Add(msg(4, chain.Rows{Tombstones: []uint64{201}}))
	write(again)
	items := store.NewBatch("g", "items", 0, 0, chain.ReplaceRows)
	full := sampleRows(300)
	items.Add(msg(0, chain.Rows{Blocks: full.Blocks, Withdrawals: full.Withdrawals}))
	items.Add(msg(1, chain.Rows{Transactions: full.Transactions[:1], Traces: full.Traces[:1], Contracts: full.Contracts[:1]}))
	items.Add(msg(2, chain.Rows{Logs: full.Logs[:1]}))
	items.Add(msg(3, chain.Rows{Tombstones: []uint64{202}}))
	write(items)
	if _, err := store.ReplaceDerivedWith(ctx, pool, 200, 300, store.DeriveOptions{Typed: w.schema, Discovery: w.tables.Discovery()},
		func(raw *chain.Rows) { w.dec.Enrich(raw) }); err != nil {
		t.Fatal(err)
	}

	distributed := map[string]string{}
	all, err := chain.CoreTables.With(w.schema...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range all {
		distributed[tb.Name] = tb.BlockColumn()
	}
	deletes := 0
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, sql := range log.sql {
		ms := modification.FindAllStringSubmatchIndex(sql, -1)
		for i, m := range ms {
			verb, table := strings.ToUpper(sql[m[2]:m[3]]), sql[m[4]:m[5]]
			if strings.HasSuffix(strings.ToUpper(strings.TrimRight(sql[:m[0]], " \t\n")), "DO") {
				continue // INSERT … ON CONFLICT DO UPDATE SET: the upsert of the INSERT's table
			}
			end := len(sql)
			if i+1 < len(ms) {
				end = ms[i+1][0]
			}
			col, isData := distributed[table]
			switch {
			case !isData:
				if _, ok := referenceTables[table]; !ok {
					t.Errorf("%s of %s, which is neither a data table nor a reference table:\n%s", verb, table, sql)
				}
			case strings.HasPrefix(verb, "UPDATE"):
				t.Errorf("UPDATE of the distributed table %s:\n%s", table, sql)
			case !strings.Contains(sql[m[1]:end], col):
				t.Errorf("DELETE of %s without its %s:\n%s", table, col, sql)
			default:
				deletes++
			}
		}
	}
	if deletes < len(all) {
		t.Errorf("%d deletes of distributed tables seen, want at least one per table (%d)", deletes, len(all))
	}
}
