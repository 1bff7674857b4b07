package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// partitionedCore are the core tables that migration 00012 partitions.
var partitionedCore = []string{"calls", "events", "logs", "token_transfers", "traces", "transactions"}

// spansOf is each partitioned table's ranges as [from, to) pairs.
func spansOf(t *testing.T, db store.DB) map[string][][2]int64 {
	t.Helper()
	parts, err := store.Partitions(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][2]int64{}
	for name, p := range parts {
		if p.Default == "" {
			t.Errorf("%s has no default partition", name)
		}
		out[name] = [][2]int64{}
		for _, s := range p.Spans {
			out[name] = append(out[name], [2]int64{s.From, s.To})
		}
	}
	return out
}

// rowsPerPartition counts table's rows by the partition that holds them.
func rowsPerPartition(t *testing.T, db store.DB, table string) map[string]int64 {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT tableoid::regclass::text, count(*) FROM `+table+` GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeAt stores sample blocks of heights as the batch of Kafka partition 0 from offset.
func writeAt(t *testing.T, db store.DB, offset int64, heights ...uint64) {
	t.Helper()
	writeTo(t, db, 0, offset, heights...)
}

func writeTo(t *testing.T, db store.DB, partition int32, offset int64, heights ...uint64) {
	t.Helper()
	b := store.NewBatch("g", "blocks", partition, offset, chain.ReplaceBlocks)
	for i, h := range heights {
		b.Add(msg(offset+int64(i), sampleRows(h)))
	}
	if _, err := store.WriteBatch(context.Background(), db, b); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionsAreCreatedAheadOfTheData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newTypedWorld(t, `contracts:
  - {name: erc20, abi: ERC20, events: [Transfer], calls: [transfer]}
`)
	db := w.s.Pool()
	// An operator's own partitioned table, by day: not chainsink's to manage.
	if _, err := db.Exec(ctx, `CREATE TABLE ops_by_day (day date NOT NULL, n int) PARTITION BY RANGE (day)`); err != nil {
		t.Fatal(err)
	}
	want := map[string][][2]int64{}
	for _, n := range append(slices.Clone(partitionedCore), "erc20_evt_transfer", "erc20_call_transfer") {
		want[n] = [][2]int64{}
	}
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("a migrated schema's partitioned tables: %v, want %v", got, want)
	}

	p := store.NewPartitioner(100)
	if err := p.Ensure(ctx, db, []uint64{150, 120}); err != nil {
		t.Fatal(err)
	}
	for n := range want {
		want[n] = [][2]int64{{100, 200}, {200, 300}} // the heights' range, and the next one
	}
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("after Ensure(150, 120): %v, want %v", got, want)
	}
	writeAt(t, db, 0, 150, 151)
	if got := rowsPerPartition(t, db, "transactions"); !maps.Equal(got, map[string]int64{"transactions_p100": 6}) {
		t.Fatalf("transactions of heights 150 and 151 are in %v", got)
	}

	// A height written without its partition (a batch whose Ensure failed) lands in the default partition;
	// the partition created later takes its rows over.
	writeAt(t, db, 2, 420)
	if got := rowsPerPartition(t, db, "logs"); got["logs_default"] == 0 {
		t.Fatalf("logs of height 420 without a partition: %v", got)
	}
	st, err := store.Status(ctx, db, "", false)
	if err != nil {
		t.Fatal(err)
	}
	var logsStatus store.TablePartitions
	for _, p := range st.Partitioned {
		if p.Table == "logs" {
			logsStatus = p
		}
	}
	if logsStatus.Ranges != 2 || logsStatus.From != 100 || logsStatus.To != 300 || logsStatus.InDefault == 0 {
		t.Fatalf("status of logs' partitions with height 420 in the default partition: %+v", logsStatus)
	}
	before, err := store.CountRows(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(ctx, db, []uint64{420}); err != nil {
		t.Fatal(err)
	}
	after, err := store.CountRows(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before, after) {
		t.Fatalf("rows before the move %v, after %v", before, after)
	}
	for _, tb := range partitionedCore {
		if got := rowsPerPartition(t, db, tb); got[tb+"_default"] != 0 {
			t.Errorf("%s after its partition was created: %v", tb, got)
		}
	}
	if got := rowsPerPartition(t, db, "logs"); got["logs_p400"] == 0 {
		t.Fatalf("logs of height 420 were not moved to logs_p400: %v", got)
	}
	for n := range want {
		want[n] = [][2]int64{{100, 200}, {200, 300}, {400, 500}, {500, 600}}
	}
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("after Ensure(420): %v, want %v", got, want)
	}

	// Another instance's partitioner, with another size, reads what exists and fills the gap around its
	// height without overlapping it.
	if err := store.NewPartitioner(1000).Ensure(ctx, db, []uint64{350}); err != nil {
		t.Fatal(err)
	}
	for n := range want {
		want[n] = [][2]int64{{100, 200}, {200, 300}, {300, 400}, {400, 500}, {500, 600}, {1000, 2000}}
	}
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("after Ensure(350) of a partitioner of 1000: %v, want %v", got, want)
	}
}

// TestPartitionCreationGivesUpOnALongTransaction: attaching a partition waits for the transactions that hold
// the default partition, and makes new writers queue behind it, so it waits only so long; the batch goes on
// into the default partition, and the next attempt, once the transaction is gone, moves its rows.
func TestPartitionCreationGivesUpOnALongTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()
	long, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx) //nolint:errcheck // rolled back below
	writeAt(t, long, 0, 750) // its rows are in logs_default, in a transaction that stays open

	p := store.NewPartitioner(100)
	p.Retry = time.Hour
	t0 := time.Now()
	err = p.Ensure(ctx, db, []uint64{760})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("Ensure beside a transaction that holds the default partition = %v, want a lock timeout (55P03)", err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("Ensure gave up after %s", took)
	}
	// Within Retry of the failure the next batches do not try (and wait) again.
	t0 = time.Now()
	if err := p.Ensure(ctx, db, []uint64{770}); err != nil || time.Since(t0) > time.Second {
		t.Fatalf("Ensure right after a failure: %v after %s, want nil at once", err, time.Since(t0))
	}
	writeTo(t, db, 1, 0, 760) // another Kafka partition's batch: not held up
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	p.Retry = time.Nanosecond
	if err := p.Ensure(ctx, db, []uint64{760}); err != nil {
		t.Fatal(err)
	}
	if got := rowsPerPartition(t, db, "logs"); got["logs_default"] != 0 || got["logs_p700"] == 0 {
		t.Fatalf("logs of heights 750 and 760 after the partition was created: %v", got)
	}
}

// TestMigrationPartitionsAFilledDatabase: a database filled by the schema of before partitioning (migration
// 11, typed tables included) keeps every row through the migration, in a _p0 partition of each table that
// the attach did not copy, with its index names; writes go on into new partitions; and down goes back.
func TestMigrationPartitionsAFilledDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgtest.EmptySchema(t)
	m, err := store.NewMigrator(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.UpTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.Pool()
	// Typed tables as chainsink created them then: the DDL, and its record.
	ts := compileTables(t, `contracts:
  - {name: univ2, abi: UniswapV2Pair, events: [Swap, Sync]}
`)
	for _, r := range ts.Records() {
		if _, err := db.Exec(ctx, r.DDL); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO typed_tables (table_name, set_name, kind, abi_name, abi_hash, signature, ddl)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.Name, r.Set, r.Kind, r.ABI, r.ABIHash, r.Signature, r.DDL); err != nil {
			t.Fatal(err)
		}
	}
	// A typed table an operator dropped by hand, its record left: the migration goes on without it.
	if _, err := db.Exec(ctx, `INSERT INTO typed_tables (table_name, set_name, kind, abi_name, abi_hash, signature, ddl)
		VALUES ('gone_evt_x', 'gone', 'event', 'ERC20', '', 'X()', '')`); err != nil {
		t.Fatal(err)
	}
	all, err := chain.CoreTables.With(ts.WriteSchema()...)
	if err != nil {
		t.Fatal(err)
	}
	writer := store.NewWriter(all)
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.New(reg, nil).WithTables(ts)
	write := func(offset int64, heights ...uint64) {
		t.Helper()
		b := store.NewBatch("g", "bundles", 0, offset, chain.ReplaceBlocks)
		for i, h := range heights {
			r := swapBlock(t, h)
			dec.Enrich(&r)
			b.Add(msg(offset+int64(i), r))
		}
		if _, err := writer.Write(ctx, db, b); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 1000, 1001, 1004)
	viewRows := func() (n int64) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT count(*) FROM token_transfers_scaled`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, err := pgtest.ChecksumsOf(ctx, db, cfg.Schema, all)
	if err != nil {
		t.Fatal(err)
	}
	beforeView := viewRows()

	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := pgtest.ChecksumsOf(ctx, db, cfg.Schema, all); err != nil || !maps.Equal(got, before) {
		t.Fatalf("checksums after the migration: %v (%v), before %v", got, err, before)
	}
	if got := viewRows(); got != beforeView || got == 0 {
		t.Fatalf("token_transfers_scaled after the migration: %d rows, before %d", got, beforeView)
	}
	want := map[string][][2]int64{}
	for _, n := range append(slices.Clone(partitionedCore), "univ2_evt_swap", "univ2_evt_sync") {
		want[n] = [][2]int64{{0, 1005}}
	}
	want["traces"] = [][2]int64{} // empty: dropped, not attached
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("partitions after the migration: %v, want %v", got, want)
	}
	if got := secondaryIndexDefs(t, s, cfg.Schema); !slices.Equal(got, wantIndexDefs()) {
		t.Fatalf("secondary indexes after the migration:\n got %q\nwant %q", got, wantIndexDefs())
	}
	if got := rowsPerPartition(t, db, "univ2_evt_swap"); len(got) != 1 || got["univ2_evt_swap_p0"] == 0 {
		t.Fatalf("univ2_evt_swap after the migration: %v", got)
	}

	// New heights get partitions of their own, aligned, up to the _p0 partition's end below them.
	if err := store.NewPartitioner(1000).Ensure(ctx, db, []uint64{1500, 5000}); err != nil {
		t.Fatal(err)
	}
	write(3, 1500, 5000)
	for n := range want {
		want[n] = [][2]int64{{0, 1005}, {1005, 2000}, {5000, 6000}, {6000, 7000}}
	}
	want["traces"] = [][2]int64{{1000, 2000}, {5000, 6000}, {6000, 7000}}
	if got := spansOf(t, db); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("partitions after writing 1500 and 5000: %v, want %v", got, want)
	}
	if got := rowsPerPartition(t, db, "logs"); got["logs_p1005"] == 0 || got["logs_p5000"] == 0 || got["logs_default"] != 0 {
		t.Fatalf("logs of heights 1500 and 5000: %v", got)
	}
	// The view was made again over the partitioned table: it sees the new heights too.
	if got := viewRows(); got <= beforeView {
		t.Fatalf("token_transfers_scaled after new heights: %d rows, before them %d", got, beforeView)
	}
	filled, err := pgtest.ChecksumsOf(ctx, db, cfg.Schema, all)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := m.DownTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	if got, err := pgtest.ChecksumsOf(ctx, db, cfg.Schema, all); err != nil || !maps.Equal(got, filled) {
		t.Fatalf("checksums after down: %v (%v), before %v", got, err, filled)
	}
	if got := spansOf(t, db); len(got) != 0 {
		t.Fatalf("partitioned tables after down: %v", got)
	}
	if got := secondaryIndexDefs(t, s, cfg.Schema); !slices.Equal(got, wantIndexDefs()) {
		t.Fatalf("secondary indexes after down:\n got %q\nwant %q", got, wantIndexDefs())
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
