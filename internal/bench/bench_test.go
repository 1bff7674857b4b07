package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// TestRenumberRowsEqualsRenumberedItems: the preload copies made at the row level are the rows that the
// renumbered ethereum-etl items decode into.
func TestRenumberRowsEqualsRenumberedItems(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	w, err := BuildWorkload(root, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Blocks) != 3 || w.Blocks[2].Bundle != nil || len(w.Blocks[2].Items) != 388 {
		t.Fatalf("workload shape: %d blocks, third has bundle %v and %d items", len(w.Blocks),
			w.Blocks[2].Bundle != nil, len(w.Blocks[2].Items))
	}
	for _, b := range w.Blocks[:2] {
		got := fixtures.RenumberRows(&w.Base, b.Number)
		if !reflect.DeepEqual(got, b.Rows) {
			t.Fatalf("block %d: RenumberRows differs from decoding the renumbered items", b.Number)
		}
	}
	r := &w.Blocks[0].Rows
	if len(r.Transactions) != 116 || len(r.Logs) != 271 || len(r.TokenTransfers) != 114 {
		t.Fatalf("block: %d transactions, %d logs, %d token transfers", len(r.Transactions), len(r.Logs), len(r.TokenTransfers))
	}
	if string(w.Blocks[0].Rows.Blocks[0].Hash) == string(w.Blocks[1].Rows.Blocks[0].Hash) {
		t.Fatal("two copies share a block hash")
	}
	// Every item is ethereum-etl's, renumbered: the same bytes but for the number and hashes.
	items, err := fixtures.ETLItems(root)
	if err != nil {
		t.Fatal(err)
	}
	var one [][]byte
	for _, k := range []string{"block", "transaction", "log"} {
		one = append(one, items[k]...)
	}
	for j, it := range w.Blocks[2].Items {
		renumbered, err := fixtures.Renumber(one[j], w.Blocks[2].Number)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(it, renumbered) {
			t.Fatalf("item %d is not item %d of block 17173049 renumbered:\n%s\n%s", j, j, it, renumbered)
		}
	}
}

// TestPostgresCPUPerRowAgainstItsCeiling: each chainsink run's Postgres CPU a row is set against the ceiling
// that copies the same tables (the typed and traced ones against theirs), whatever the run's row count.
func TestPostgresCPUPerRowAgainstItsCeiling(t *testing.T) {
	r := &Report{Results: []Result{
		{Key: "ceiling", Format: "rows", Rows: 100, PostgresCPU: 10, RowsPerSec: 1},
		{Key: "etl", Format: "ethereum-etl", Rows: 100, PostgresCPU: 12, RowsPerSec: 1},
		{Key: "backlog", Format: "ethereum-etl", Rows: 200, PostgresCPU: 21, RowsPerSec: 1},
		{Key: "typed-ceiling", Format: "rows", Rows: 100, PostgresCPU: 20, RowsPerSec: 1},
		{Key: "typed-bundle", Format: "bundle", Rows: 100, PostgresCPU: 21, RowsPerSec: 1},
	}}
	r.finish(time.Second)
	for key, want := range map[string]float64{"ceiling": 0, "etl": 1.2, "backlog": 1.05, "typed-ceiling": 0, "typed-bundle": 1.05} {
		if got := r.result(key).PostgresVsCeiling; math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: Postgres CPU a row vs its ceiling = %v, want %v", key, got, want)
		}
	}
	var out bytes.Buffer
	r.Print(&out)
	if !strings.Contains(out.String(), "a row vs (a)") {
		t.Errorf("the report has no column of it:\n%s", out.String())
	}
}

// TestCompressionOfTheWorkload: bundles are published in lz4 and items uncompressed by default, as their
// producers publish them, one codec for all when --compression names it, and an unknown codec is refused
// before anything runs.
func TestCompressionOfTheWorkload(t *testing.T) {
	for _, c := range []struct{ compression, bundles, items string }{
		{"", "lz4", "none"}, {CompressionProducers, "lz4", "none"}, {"snappy", "snappy", "snappy"}, {"none", "none", "none"},
	} {
		b := &bencher{o: Options{Compression: c.compression}}
		if got, want := b.codec(true)+"/"+b.codec(false), c.bundles+"/"+c.items; got != want {
			t.Errorf("--compression %q: bundles/items %s, want %s", c.compression, got, want)
		}
	}
	_, err := Run(context.Background(), Options{Compression: "brotli", Binary: "/nonexistent"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown compression "brotli"`) {
		t.Errorf("Run with --compression brotli: %v, want the codec refused", err)
	}
}

func TestHistogramQuantile(t *testing.T) {
	text := `# HELP chainsink_commit_seconds Time to write and commit one batch, retries excluded.
# TYPE chainsink_commit_seconds histogram
chainsink_commit_seconds_bucket{le="0.001"} 0
chainsink_commit_seconds_bucket{le="0.002"} 0
chainsink_commit_seconds_bucket{le="0.004"} 10
chainsink_commit_seconds_bucket{le="0.008"} 90
chainsink_commit_seconds_bucket{le="0.016"} 100
chainsink_commit_seconds_bucket{le="+Inf"} 100
chainsink_commit_seconds_sum 0.6
chainsink_commit_seconds_count 100
chainsink_rows_written_total{table="logs"} 271
`
	h, err := parseHistogram(strings.NewReader(text), "chainsink_commit_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 100 || math.Abs(h.Sum-0.6) > 1e-9 {
		t.Fatalf("count %v sum %v", h.Count, h.Sum)
	}
	// p50: rank 50 lies in (0.004, 0.008], 40 of its 80 observations in: 0.004 + 0.5×0.004.
	if q := h.Quantile(0.5); math.Abs(q-0.006) > 1e-9 {
		t.Fatalf("p50 = %v, want 0.006", q)
	}
	// p99: rank 99 in (0.008, 0.016], 9 of 10.
	if q := h.Quantile(0.99); math.Abs(q-(0.008+0.9*0.008)) > 1e-9 {
		t.Fatalf("p99 = %v", q)
	}
	if q := (histogram{}).Quantile(0.5); !math.IsNaN(q) {
		t.Fatalf("empty histogram p50 = %v, want NaN", q)
	}
}

// benchBlocks is how many renumbered blocks make one batch of about 20,000 rows (chainsink's default).
const benchBlocks = 25

func benchWorkload(b *testing.B) *Workload {
	b.Helper()
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	w, err := BuildWorkload(root, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkWriteBatch is chainsink's write path in process, for CPU profiles of the client side: one op is
// store.WriteBatch of a bundle-mode batch of 25 blocks (20,225 rows; fence, replacement deletes, COPY of 7
// tables, commit) into a fresh schema with every index live. It needs the test PostgreSQL
// (CHAINSINK_TEST_DATABASE_URL) and is skipped without it:
//
//	go test ./internal/bench -run '^$' -bench WriteBatch -cpuprofile cpu.out
func BenchmarkWriteBatch(b *testing.B) {
	benchWrite(b, func(ctx context.Context, db store.DB, i int, rows []chain.Rows) error {
		batch := store.NewBatch("bench", "blocks", 0, int64(i*benchBlocks), chain.ReplaceBlocks)
		for j, r := range rows {
			batch.Add(store.Message{Offset: int64(i*benchBlocks + j), Rows: r})
		}
		_, err := store.WriteBatch(ctx, db, batch)
		return err
	})
}

// BenchmarkCopyRows is the same batches through the ceiling's plain COPY (CopyRows).
func BenchmarkCopyRows(b *testing.B) {
	benchWrite(b, func(ctx context.Context, db store.DB, _ int, rows []chain.Rows) error {
		_, err := CopyRows(ctx, db, rows)
		return err
	})
}

func benchWrite(b *testing.B, write func(ctx context.Context, db store.DB, i int, rows []chain.Rows) error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		b.Skipf("no PostgreSQL at %s: %v", pgtest.URL(), err)
	}
	conn.Close(ctx)
	w := benchWorkload(b)
	s, _ := pgtest.Open(b)
	b.ReportAllocs()
	rows := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		batch := make([]chain.Rows, benchBlocks)
		for j := range batch {
			batch[j] = fixtures.RenumberRows(&w.Base, FirstBlock+uint64(i*benchBlocks+j))
			rows += batch[j].Len()
		}
		b.StartTimer()
		if err := write(ctx, s.Pool(), i, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkIndexer is `chainsink run` in process, for CPU and heap profiles of the whole pipeline (the binary
// has no pprof endpoint): the librdkafka consumer, decoding, batching and store.WriteBatch, on 4 partitions of
// an in-process broker, into a fresh schema per op. One op drains 400 blocks, as bundles (with the typed
// tables of the demo's configuration, or with traces) or as their 155,200 ethereum-etl items. It needs the test PostgreSQL and is skipped without it:
//
//	go test ./internal/bench -run '^$' -bench Indexer/bundle -benchtime 3x -cpuprofile cpu.out
func BenchmarkIndexer(b *testing.B) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		b.Skipf("no PostgreSQL at %s: %v", pgtest.URL(), err)
	}
	conn.Close(ctx)
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	const blocks = 400
	w, err := BuildWorkload(root, blocks, blocks)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := loadTraced(root, w)
	if err != nil {
		b.Fatal(err)
	}
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"bundles": 4, "items": 4, "traced": 4}})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	bn := &bencher{broker: broker, w: w, o: Options{Partitions: 4, Blocks: blocks}}
	var bundles []localkafka.Record
	for _, blk := range w.Blocks {
		bundles = append(bundles, localkafka.Record{Topic: "bundles", Partition: int32(blk.Number % 4),
			Key: format.BundleKey(blk.Number), Value: blk.Bundle})
	}
	for i, blk := range w.Blocks {
		bundles = append(bundles, localkafka.Record{Topic: "traced", Partition: int32(blk.Number % 4),
			Key: format.BundleKey(blk.Number), Value: tr.bundles[i]})
	}
	if err := bn.produce(ctx, bn.codec(true), bundles); err != nil {
		b.Fatal(err)
	}
	if err := bn.produce(ctx, bn.codec(false), bn.etlRecords("items", blocks*ItemsPerBlock, 4)); err != nil {
		b.Fatal(err)
	}
	bn.closeProducers()
	reg, err := abi.Default()
	if err != nil {
		b.Fatal(err)
	}
	ty, err := loadTyped(filepath.Join(filepath.Dir(root), "internal", "demo", "chainsink.yaml"), w)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, format, topic string
		typed               bool
	}{{"bundle", "bundle", "bundles", false}, {"ethereum-etl", "ethereum-etl", "items", false}, {"bundle-typed", "bundle", "bundles", true},
		{"bundle-traced", "bundle", "traced", false}} {
		b.Run(tc.name, func(b *testing.B) {
			fm, _ := format.Parse(tc.format)
			want := broker.HighWatermarks(tc.topic)
			rows := 0
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				s, _ := pgtest.Open(b)
				m := metrics.New()
				group := fmt.Sprintf("bench-%s-%d-%d", tc.name, time.Now().UnixNano(), i)
				dec := decode.New(reg, m)
				cfg := indexer.Config{Brokers: broker.Addr(), Group: group}
				if tc.typed {
					if err := ty.apply(ctx, s); err != nil {
						b.Fatal(err)
					}
					dec = dec.WithTables(ty.tables)
					cfg.ExtraTables, cfg.Discovery = ty.schema[len(chain.CoreTables):], ty.tables.Discovery()
				}
				cfg.Topics = []indexer.Topic{{Name: tc.topic, Format: dec.Format(fm)}}
				ix, err := indexer.New(cfg, s.Pool(), slog.New(slog.DiscardHandler), m)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := ix.Start(ctx); err != nil {
					b.Fatal(err)
				}
				poll := time.NewTicker(20 * time.Millisecond)
				for { // wait until every partition's offset is stored
					offs, err := store.ListOffsets(ctx, s.Pool(), group)
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for _, o := range offs {
						if want[o.Partition] == o.NextOffset {
							n++
						}
					}
					if n == len(want) {
						break
					}
					<-poll.C
				}
				poll.Stop()
				b.StopTimer()
				if err := ix.Stop(ctx); err != nil {
					b.Fatal(err)
				}
				rows += blocks * w.RowsPerBlock()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestCopyRowsAndInsertRowsStoreWhatWriteBatchStores: the ceiling and the baseline write exactly the rows of
// chainsink's own write, so that comparing their speeds is fair.
func TestCopyRowsAndInsertRowsStoreWhatWriteBatchStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	w, err := BuildWorkload(root, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows := []chain.Rows{fixtures.RenumberRows(&w.Base, FirstBlock), fixtures.RenumberRows(&w.Base, FirstBlock+1)}
	total := int64(rows[0].Len() + rows[1].Len())

	ref, _ := pgtest.Open(t)
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 0, Rows: rows[0]})
	b.Add(store.Message{Offset: 1, Rows: rows[1]})
	if _, err := store.WriteBatch(ctx, ref.Pool(), b); err != nil {
		t.Fatal(err)
	}
	want, err := pgtest.ReadRows(ctx, ref.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if int64(want.Len()) != total {
		t.Fatalf("WriteBatch stored %d rows of %d", want.Len(), total)
	}

	cp, _ := pgtest.Open(t)
	counts, err := CopyRows(ctx, cp.Pool(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if sum(counts) != total {
		t.Fatalf("CopyRows counts %v, want %d rows", counts, total)
	}
	got, err := pgtest.ReadRows(ctx, cp.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, want)

	ins, _ := pgtest.Open(t)
	counts, err = InsertRows(ctx, ins.Pool(), rows, 7) // 7 rows a statement: several statements per table
	if err != nil {
		t.Fatal(err)
	}
	if sum(counts) != total {
		t.Fatalf("InsertRows counts %v, want %d rows", counts, total)
	}
	got, err = pgtest.ReadRows(ctx, ins.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, want)
	// ON CONFLICT DO NOTHING: a second delivery writes nothing and fails nothing.
	counts, err = InsertRows(ctx, ins.Pool(), rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sum(counts) != 0 {
		t.Fatalf("second InsertRows wrote %v", counts)
	}
}
