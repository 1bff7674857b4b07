package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Options configure a benchmark run. Zero values mean the defaults of cmd/chainsink-bench.
type Options struct {
	Binary   string // the chainsink binary (make build)
	AdminURL string // a PostgreSQL URL allowed to create and drop Database
	Database string // dropped and created afresh
	TestData string // default: found from the current directory
	OutDir   string // results JSON is written here

	Blocks     int     // renumbered copies of block 17173049 in the main workload
	Partitions int32   // partitions of every topic; also the writers of the ceiling and the baseline
	BatchRows  int     // batch size of every writer (chainsink's --batch-max-rows)
	InsertRows int     // rows per INSERT statement of the baseline
	Growth     []int64 // rows preloaded before the cost-growth runs; 0 reuses the main bundle run
	Backlog    int     // ethereum-etl messages of the memory run; 0 skips it
	VerifyRows int64   // rows stored before `chainsink verify` is timed; default 10 M
	// Config is the typed tables' configuration of the typed scenario; default the demo's
	// (internal/demo/chainsink.yaml, next to the testdata directory).
	Config string

	FollowBlocks   int           // blocks measured by the follow scenario; default 60
	FollowInterval time.Duration // how often the simulated chain mines a block there; default 1s
	Scenarios      []string
	RunTimeout     time.Duration

	IndexWorkers int    // CreateSecondaryIndexes workers in the deferred scenario
	IndexMem     string // its maintenance_work_mem

	// ChainsinkArgs are passed to every `chainsink run` after the benchmark's own flags (tuning experiments).
	ChainsinkArgs []string
	// ChainsinkEnv are KEY=VALUE added to every `chainsink run`'s environment (e.g. GOMEMLIMIT), not to ours.
	ChainsinkEnv []string
	// KeepLogs keeps the runs' logs after a successful benchmark.
	KeepLogs bool
	// Compression is how the workload's messages are compressed in the broker, which the consumer pays to
	// undo: "producers" (the default) as their producers publish them, bundles in lz4 (chainsink backfill
	// and follow) and ethereum-etl items uncompressed (ethereum-etl's Kafka exporter sets no codec); or one
	// codec for every topic: none, gzip, snappy, lz4 or zstd.
	Compression string
}

// AllScenarios are the scenario names --scenarios accepts.
var AllScenarios = []string{"ceiling", "baseline", "baseline1", "bundle", "typed", "traced", "deferred", "etl", "growth", "backlog", "backlog32", "tuned", "verify", "follow", "rpc"}

// Tuning is a set of `chainsink run` settings: flags, and environment variables for the Go runtime.
type Tuning struct {
	Args []string
	Env  []string
}

func (t Tuning) String() string { return strings.Join(append(slices.Clone(t.Args), t.Env...), " ") }

// The "tuned" scenario runs bundle, deferred and growth with TunedBundles, and backlog with TunedETL, next to
// the defaults: they are docs/performance.md's tuning guide. TunedBundles spends memory for throughput, as a
// backfill machine with memory to spare can: garbage collection at the Go default (GOGC=100) instead of
// chainsink's 50. TunedETL spends throughput for memory: smaller batches and worker queues, which suit
// small ethereum-etl items (a 4 MiB queue would make bundle partitions, 400 KB a message, pause constantly).
var (
	TunedBundles = Tuning{Env: []string{"GOGC=100"}}
	TunedETL     = Tuning{Args: []string{"--batch-max-rows", "5000", "--queue-max-bytes", "4194304"}}
)

func (o *Options) defaults() {
	if o.Binary == "" {
		o.Binary = "bin/chainsink"
	}
	if o.AdminURL == "" {
		o.AdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if o.Database == "" {
		o.Database = "chainsink_bench"
	}
	if o.OutDir == "" {
		o.OutDir = "bench/results"
	}
	if o.Blocks == 0 {
		o.Blocks = 2000
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if o.Compression == "" {
		o.Compression = CompressionProducers
	}
	if o.BatchRows == 0 {
		o.BatchRows = indexer.Config{}.WithDefaults().BatchMaxRows
	}
	if o.InsertRows == 0 {
		o.InsertRows = 500
	}
	if o.VerifyRows == 0 {
		o.VerifyRows = 10_000_000
	}
	if o.FollowBlocks == 0 {
		o.FollowBlocks = 60
	}
	if o.FollowInterval == 0 {
		o.FollowInterval = time.Second
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = AllScenarios
	}
	if o.RunTimeout == 0 {
		o.RunTimeout = 10 * time.Minute
	}
	if o.IndexWorkers == 0 {
		o.IndexWorkers = 2
	}
	if o.IndexMem == "" {
		o.IndexMem = "256MB"
	}
}

type bencher struct {
	o         Options
	out       io.Writer
	dbURL     string
	admin     *pgxpool.Pool // on the bench database, for CHECKPOINT and schema drops
	broker    *localkafka.Broker
	refetches *localkafka.Refetches  // counted for each chainsink run
	producers map[string]*kgo.Client // by codec
	w         *Workload
	logDir    string
	rep       *Report
	typed     *typedSetup  // the typed scenario's tables; nil unless it runs
	traced    *tracedSetup // the traced scenario's bundles and rows; nil unless it runs
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

func (b *bencher) want(s string) bool { return slices.Contains(b.o.Scenarios, s) }

const (
	topicBundles = "bench-bundles"
	topicETL     = "bench-etl"
	topicBacklog = "bench-backlog"
	// topicBacklog32 holds the backlog again on 32 partitions, all of which one instance owns: the memory
	// limit is shared by however many partitions it has.
	topicBacklog32 = "bench-backlog-32"
)

// Run executes the benchmark, prints progress and the table to out, writes the JSON report into o.OutDir and
// returns the report.
func Run(ctx context.Context, o Options, out io.Writer) (*Report, error) {
	o.defaults()
	for _, s := range o.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q: want some of %s", s, strings.Join(AllScenarios, ","))
		}
	}
	if o.Compression != CompressionProducers {
		if _, err := codecOf(o.Compression); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("chainsink binary %s: %w (run make build)", o.Binary, err)
	}
	if o.TestData == "" {
		root, err := fixtures.Root()
		if err != nil {
			return nil, err
		}
		o.TestData = root
	}
	if o.Config == "" {
		o.Config = filepath.Join(filepath.Dir(o.TestData), "internal", "demo", "chainsink.yaml")
	}
	began := time.Now()
	b := &bencher{o: o, out: out, rep: newReport(o, began)}
	var err error
	if b.logDir, err = os.MkdirTemp("", "chainsink-bench-"); err != nil {
		return nil, err
	}
	b.logf("==> chainsink-bench: %d blocks, %d partitions, batches of %d rows; load average %.2f on %d CPUs; logs in %s",
		o.Blocks, o.Partitions, o.BatchRows, b.rep.Machine.LoadBefore, runtime.NumCPU(), b.logDir)
	if b.rep.Machine.LoadBefore > float64(runtime.NumCPU())/2 {
		b.logf("    warning: the machine is busy (load %.2f); the numbers will be low and noisy", b.rep.Machine.LoadBefore)
	}
	b.rep.Machine.ChainsinkVersion = binaryVersion(o.Binary)

	if err := b.setupDatabase(ctx); err != nil {
		return nil, err
	}
	defer b.admin.Close()

	backlogBlocks := 0
	if (b.want("backlog") || b.want("backlog32")) && o.Backlog > 0 {
		backlogBlocks = (o.Backlog + ItemsPerBlock - 1) / ItemsPerBlock
	}
	t0 := time.Now()
	b.w, err = BuildWorkload(o.TestData, max(o.Blocks, backlogBlocks), o.Blocks)
	if err != nil {
		return nil, err
	}
	b.rep.setWorkload(b.w, time.Since(t0))
	b.logf("==> workload: %d blocks of %d rows (%s) built in %s", o.Blocks, b.w.RowsPerBlock(),
		rowsByTable(&b.w.Base), time.Since(t0).Round(time.Millisecond))

	if b.want("typed") {
		if b.typed, err = loadTyped(o.Config, b.w); err != nil {
			return nil, err
		}
		b.logf("==> typed tables of %s: %d tables, %d typed rows per block", o.Config, len(b.typed.tables.All), b.typed.rowsPerBlock)
	}
	if b.want("traced") {
		if b.traced, err = loadTraced(o.TestData, b.w); err != nil {
			return nil, err
		}
		b.logf("==> traced bundles: %d frames, %d rows per block", b.traced.frames, b.traced.rowsPerBlock)
	}
	if err := b.startBroker(ctx, backlogBlocks); err != nil {
		return nil, err
	}
	defer b.broker.Close()
	// The broker holds the messages now; what this process keeps is the rows of (a), (b) and the preloads.
	for i := range b.w.Blocks {
		b.w.Blocks[i].Items, b.w.Blocks[i].Bundle = nil, nil
	}
	if b.traced != nil {
		b.traced.bundles = nil
	}
	runtime.GC()

	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"ceiling", b.ceiling}, {"baseline", b.baseline}, {"baseline1", b.baseline1}, {"bundle", b.bundle}, {"typed", b.typedRuns}, {"traced", b.tracedRuns}, {"deferred", b.deferred},
		{"etl", b.etl}, {"growth", b.growth}, {"backlog", b.backlog}, {"backlog32", b.backlog32}, {"tuned", b.tuned}, {"verify", b.verify}, {"follow", b.followLatency}, {"rpc", b.rpcScenario},
	} {
		if !b.want(step.name) {
			continue
		}
		if err := step.run(ctx); err != nil {
			return b.rep, fmt.Errorf("%s: %w", step.name, err)
		}
	}
	if !o.KeepLogs {
		_ = os.RemoveAll(b.logDir)
	}
	b.rep.finish(time.Since(began))
	b.logf("")
	b.rep.Print(out)
	path, err := b.rep.Write(o.OutDir)
	if err != nil {
		return b.rep, err
	}
	b.logf("\nwritten to %s (total %s)", path, time.Since(began).Round(time.Second))
	return b.rep, nil
}

func binaryVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "chainsink "))
}

func rowsByTable(r *chain.Rows) string {
	return fmt.Sprintf("%d block, %d withdrawals, %d transactions, %d logs, %d token transfers, %d events, %d calls",
		len(r.Blocks), len(r.Withdrawals), len(r.Transactions), len(r.Logs), len(r.TokenTransfers), len(r.Events), len(r.Calls))
}

// setupDatabase drops and creates the bench database and records the server's settings.
func (b *bencher) setupDatabase(ctx context.Context) error {
	u, err := url.Parse(b.o.AdminURL)
	if err != nil {
		return fmt.Errorf("parse admin URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, b.o.AdminURL)
	if err != nil {
		return fmt.Errorf("connect to Postgres at %s: %w (is PostgreSQL running?)", store.Redact(b.o.AdminURL), err)
	}
	defer conn.Close(ctx)
	db := pgx.Identifier{b.o.Database}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", b.o.Database, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return fmt.Errorf("create database %s: %w", b.o.Database, err)
	}
	u.Path = "/" + b.o.Database
	b.dbURL = u.String()
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&b.rep.Machine.Postgres); err != nil {
		return err
	}
	b.rep.Machine.Settings = map[string]string{}
	for _, s := range []string{"shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression",
		"synchronous_commit", "fsync", "effective_io_concurrency", "maintenance_work_mem", "work_mem",
		"max_parallel_maintenance_workers", "wal_buffers"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v); err == nil {
			b.rep.Machine.Settings[s] = v
		}
	}
	b.admin, err = pgxpool.New(ctx, b.dbURL)
	return err
}

// freshSchema drops schema (if present), migrates it anew and checkpoints, so that every scenario starts on
// empty tables with no dirty buffers or WAL of the previous one.
func (b *bencher) freshSchema(ctx context.Context, schema string) error {
	if err := b.dropSchema(ctx, schema); err != nil {
		return err
	}
	m, err := store.NewMigrator(ctx, store.Config{DatabaseURL: b.dbURL, Schema: schema}, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		return err
	}
	return b.settle(ctx)
}

func (b *bencher) dropSchema(ctx context.Context, schema string) error {
	_, err := b.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// pgCounters are server-wide counters read around a timed window.
type pgCounters struct {
	walLSN      string
	checkpoints int64
}

func (b *bencher) counters(ctx context.Context) pgCounters {
	var c pgCounters
	_ = b.admin.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&c.walLSN)
	// Postgres 17 moved the checkpoint counters to pg_stat_checkpointer.
	if err := b.admin.QueryRow(ctx, "SELECT num_timed + num_requested FROM pg_stat_checkpointer").Scan(&c.checkpoints); err != nil {
		_ = b.admin.QueryRow(ctx, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").Scan(&c.checkpoints)
	}
	return c
}

// since fills r's WAL volume and checkpoint count of the window that began at before.
func (b *bencher) since(ctx context.Context, before pgCounters, r *Result) {
	after := b.counters(ctx)
	if before.walLSN != "" && after.walLSN != "" {
		_ = b.admin.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", after.walLSN, before.walLSN).Scan(&r.WALBytes)
	}
	r.Checkpoints = after.checkpoints - before.checkpoints
}

// settle checkpoints so that a scenario does not pay for the previous one's dirty buffers.
func (b *bencher) settle(ctx context.Context) error {
	_, err := b.admin.Exec(ctx, "CHECKPOINT")
	return err
}

// scratchSchema migrates schema afresh and opens a store of conns connections on it; done closes the store and
// drops the schema.
func (b *bencher) scratchSchema(ctx context.Context, schema string, conns int32) (*store.Store, func(), error) {
	if err := b.freshSchema(ctx, schema); err != nil {
		return nil, nil, err
	}
	st, err := b.openSchema(ctx, schema, conns)
	if err != nil {
		_ = b.dropSchema(ctx, schema)
		return nil, nil, err
	}
	return st, func() {
		st.Close()
		_ = b.dropSchema(ctx, schema) // best effort; the next run drops the database anyway
	}, nil
}

func (b *bencher) openSchema(ctx context.Context, schema string, conns int32) (*store.Store, error) {
	return store.Open(ctx, store.Config{DatabaseURL: b.dbURL, Schema: schema, MaxConns: conns})
}

// startBroker starts the in-process broker and publishes the bundles, the ethereum-etl items of the main
// workload and the backlog; publishing is not timed.
func (b *bencher) startBroker(ctx context.Context, backlogBlocks int) error {
	p := b.o.Partitions
	var err error
	b.broker, err = localkafka.Start(localkafka.Options{Topics: map[string]int32{topicBundles: p, topicETL: p, topicBacklog: p, topicTraced: p, topicBacklog32: 32}})
	if err != nil {
		return err
	}
	b.refetches = b.broker.CountRefetches()
	t0 := time.Now()
	needBundles := b.want("bundle") || b.want("typed") || b.want("deferred") || b.want("tuned") || (b.want("growth") && slices.ContainsFunc(b.o.Growth, func(n int64) bool { return n > 0 }))
	if needBundles {
		recs := make([]localkafka.Record, 0, b.o.Blocks)
		for i := range b.w.Bundled {
			blk := &b.w.Blocks[i]
			recs = append(recs, localkafka.Record{Topic: topicBundles, Partition: int32(blk.Number % uint64(p)),
				Key: format.BundleKey(blk.Number), Value: blk.Bundle})
		}
		if err := b.produce(ctx, b.codec(true), recs); err != nil {
			return err
		}
	}
	if b.traced != nil {
		recs := make([]localkafka.Record, 0, b.w.Bundled)
		for i, v := range b.traced.bundles {
			n := b.w.Blocks[i].Number
			recs = append(recs, localkafka.Record{Topic: topicTraced, Partition: int32(n % uint64(p)), Key: format.BundleKey(n), Value: v})
		}
		if err := b.produce(ctx, b.codec(true), recs); err != nil {
			return err
		}
	}
	if b.want("etl") {
		if err := b.produce(ctx, b.codec(false), b.etlRecords(topicETL, b.o.Blocks*ItemsPerBlock, p)); err != nil {
			return err
		}
	}
	if backlogBlocks > 0 && b.want("backlog") {
		if err := b.produce(ctx, b.codec(false), b.etlRecords(topicBacklog, b.o.Backlog, p)); err != nil {
			return err
		}
	}
	if backlogBlocks > 0 && b.want("backlog32") {
		if err := b.produce(ctx, b.codec(false), b.etlRecords(topicBacklog32, b.o.Backlog, 32)); err != nil {
			return err
		}
	}
	b.closeProducers()
	b.logf("==> published to an in-process broker (%s) in %s", b.broker.Addr(), time.Since(t0).Round(time.Millisecond))
	return nil
}

// etlRecords is the first n ethereum-etl items of the workload, block by block (block, transactions, logs),
// spread round-robin over the topic's partitions.
func (b *bencher) etlRecords(topic string, n int, partitions int32) []localkafka.Record {
	recs := make([]localkafka.Record, 0, n)
	for i := range b.w.Blocks {
		for _, it := range b.w.Blocks[i].Items {
			if len(recs) == n {
				return recs
			}
			recs = append(recs, localkafka.Record{Topic: topic, Partition: int32(len(recs) % int(partitions)), Value: it})
		}
	}
	return recs
}

// produce publishes recs like a typical Kafka producer does: record batches of at most 1 MB (Kafka's default
// max.message.bytes), snappy-compressed (franz-go's defaults). localkafka's own producer batches up to 16 MiB,
// which a broker with default settings would refuse.
// CompressionProducers is Options.Compression's default: each topic compressed as its producer does.
const CompressionProducers = "producers"

// codecs are the codecs Options.Compression names.
var codecs = map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

// codecOf is the codec Options.Compression names, or the error that refuses the name.
func codecOf(name string) (kgo.CompressionCodec, error) {
	c, ok := codecs[name]
	if !ok {
		return c, fmt.Errorf("unknown compression %q: want %s, none, gzip, snappy, lz4 or zstd", name, CompressionProducers)
	}
	return c, nil
}

// codec is the codec a topic's messages are produced with: what chainsink backfill and follow use for bundles
// (compression.type lz4), none for ethereum-etl items, unless Options.Compression names one for all.
func (b *bencher) codec(bundles bool) string {
	switch {
	case b.o.Compression != CompressionProducers && b.o.Compression != "":
		return b.o.Compression
	case bundles:
		return "lz4"
	}
	return "none"
}

// produce publishes recs with codec, through one client per codec (franz-go's default would be snappy).
func (b *bencher) produce(ctx context.Context, codec string, recs []localkafka.Record) error {
	producer := b.producers[codec]
	if producer == nil {
		c, err := codecOf(codec)
		if err != nil {
			return err
		}
		producer, err = kgo.NewClient(kgo.SeedBrokers(b.broker.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.MaxBufferedRecords(100000), kgo.ProducerBatchCompression(c))
		if err != nil {
			return fmt.Errorf("create producer: %w", err)
		}
		if b.producers == nil {
			b.producers = map[string]*kgo.Client{}
		}
		b.producers[codec] = producer
	}
	for len(recs) > 0 {
		n := min(len(recs), 50000)
		rs := make([]*kgo.Record, n)
		for i, r := range recs[:n] {
			rs[i] = &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return fmt.Errorf("produce %d records: %w", n, err)
		}
		recs = recs[n:]
	}
	return nil
}

// closeProducers closes every client produce made.
func (b *bencher) closeProducers() {
	for _, p := range b.producers {
		p.Close()
	}
	b.producers = nil
}

// writeFunc writes a batch of blocks' rows in one transaction.
type writeFunc func(ctx context.Context, db store.DB, rows []chain.Rows) (chain.Counts, error)

// writeParallel writes blocks with one writer per partition, each taking the blocks of its partition (number
// mod partitions, as the bundles are keyed) in batches of at least BatchRows rows, one transaction each: the
// batches chainsink's partition workers would make.
func (b *bencher) writeParallel(ctx context.Context, pool *pgxpool.Pool, n int, block func(i int) chain.Rows,
	write writeFunc) (chain.Counts, error) {
	p := int(b.o.Partitions)
	var mu sync.Mutex
	total := chain.Counts{}
	errs := make([]error, p)
	var wg sync.WaitGroup
	for w := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []chain.Rows
			rows := 0
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				c, err := write(ctx, pool, batch)
				if err != nil {
					return err
				}
				mu.Lock()
				for k, v := range c {
					total[k] += v
				}
				mu.Unlock()
				batch, rows = batch[:0], 0
				return nil
			}
			for i := w; i < n; i += p {
				r := block(i)
				batch = append(batch, r)
				rows += r.Len()
				if rows >= b.o.BatchRows {
					if errs[w] = flush(); errs[w] != nil {
						return
					}
				}
			}
			errs[w] = flush()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return total, nil
}

// direct times writing the workload's decoded rows with write (the ceiling or the baseline).
func (b *bencher) direct(ctx context.Context, key, name string, write writeFunc) error {
	return b.directOf(ctx, key, name, write, func(i int) chain.Rows { return b.w.Blocks[i].Rows },
		int64(b.w.Bundled*b.w.RowsPerBlock()), nil)
}

// directOf is direct of the rows block gives, want rows in all, on a schema that prepare completes.
func (b *bencher) directOf(ctx context.Context, key, name string, write writeFunc, block func(i int) chain.Rows,
	want int64, prepare func(*store.Store) error) error {
	schema := "bench_" + strings.ReplaceAll(key, "-", "_")
	st, done, err := b.scratchSchema(ctx, schema, b.o.Partitions+1)
	if err != nil {
		return err
	}
	defer done()
	if prepare != nil {
		if err := prepare(st); err != nil {
			return err
		}
	}
	// Connect every writer before timing.
	conns := make([]*pgxpool.Conn, b.o.Partitions)
	for i := range conns {
		if conns[i], err = st.Pool().Acquire(ctx); err != nil {
			return err
		}
	}
	for _, c := range conns {
		c.Release()
	}
	b.logf("==> %s: %d blocks, %d writers", name, b.w.Bundled, b.o.Partitions)
	pgBefore := postgresCPU()
	selfBefore, _, _ := procCPU(os.Getpid())
	ctrs := b.counters(ctx)
	machineBefore := machineCPU()
	t0 := time.Now()
	counts, err := b.writeParallel(ctx, st.Pool(), b.w.Bundled, block, write)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	selfAfter, _, _ := procCPU(os.Getpid())
	r := Result{Key: key, Name: name, Format: "rows", Indexes: "live", Blocks: b.w.Bundled, Rows: sum(counts),
		Seconds: secs, PostgresCPU: postgresCPU().since(pgBefore), ClientCPU: selfAfter - selfBefore}
	r.OtherCPU = machineCPU() - machineBefore - r.PostgresCPU - r.ClientCPU
	b.since(ctx, ctrs, &r)
	if r.Rows != want {
		return fmt.Errorf("%s wrote %d rows, want %d", key, r.Rows, want)
	}
	b.rep.add(r)
	b.logf("    %s", r.summary())
	return nil
}

func sum(c chain.Counts) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func (b *bencher) ceiling(ctx context.Context) error {
	return b.direct(ctx, "ceiling", "(a) ceiling: binary COPY", CopyRows)
}

func (b *bencher) baseline(ctx context.Context) error {
	return b.direct(ctx, "baseline", fmt.Sprintf("(b) baseline: INSERT ON CONFLICT, %d rows/stmt", b.o.InsertRows),
		func(ctx context.Context, db store.DB, rows []chain.Rows) (chain.Counts, error) {
			return InsertRows(ctx, db, rows, b.o.InsertRows)
		})
}

// baseline1 is (b1): the baseline's statements with one row each, pipelined, which is what Kafka Connect's
// JDBC sink sends by default (reWriteBatchedInserts off): the weaker, more common, upsert shape.
func (b *bencher) baseline1(ctx context.Context) error {
	return b.direct(ctx, "baseline1", "(b1) baseline: INSERT ON CONFLICT, 1 row/stmt, pipelined",
		func(ctx context.Context, db store.DB, rows []chain.Rows) (chain.Counts, error) {
			return InsertRows(ctx, db, rows, 1)
		})
}

// chainsinkRun runs the binary on a fresh schema (or on one prepared by prepare) and records the result.
func (b *bencher) chainsinkRun(ctx context.Context, r Result, spec runSpec, prepare func(*store.Store) error,
	after func(*store.Store, *Result) error) error {
	if err := b.freshSchema(ctx, spec.schema); err != nil {
		return err
	}
	defer b.dropSchema(ctx, spec.schema) //nolint:errcheck // best effort
	st, err := b.openSchema(ctx, spec.schema, 4)
	if err != nil {
		return err
	}
	defer st.Close()
	if prepare != nil {
		if err := prepare(st); err != nil {
			return err
		}
	}
	b.logf("==> %s: %d messages, chainsink run --topics %s:%s", r.Name, spec.messages, spec.topic, spec.format)
	ctrs := b.counters(ctx)
	rr, err := b.runChainsink(ctx, spec)
	if err != nil {
		return err
	}
	b.since(ctx, ctrs, &r)
	r.Messages, r.Blocks = spec.messages, spec.blocks
	r.Rows = rr.RowsInTables - r.Preloaded
	r.Seconds, r.FirstCommit, r.PeakRSS = rr.Seconds, rr.FirstCommit, rr.PeakRSS
	r.CommitP50, r.CommitP99, r.Batches = rr.CommitP50, rr.CommitP99, rr.Batches
	r.ChainsinkCPU, r.ChainsinkGCCPU, r.PostgresCPU, r.ClientCPU = rr.ChainsinkCPU, rr.GCCPU, rr.PostgresCPU, rr.BenchCPU
	r.PeakSample, r.Refetched = rr.PeakSample, rr.Refetched
	r.OtherCPU = rr.MachineCPU - rr.ChainsinkCPU - rr.PostgresCPU - rr.BenchCPU
	if after != nil {
		if err := after(st, &r); err != nil {
			return err
		}
	}
	b.rep.add(r)
	b.logf("    %s", r.summary())
	return nil
}

func (b *bencher) bundleSpec(key string) runSpec {
	return runSpec{key: key, schema: "bench_" + strings.ReplaceAll(key, "-", "_"), topic: topicBundles,
		format: "bundle", messages: b.w.Bundled, blocks: b.w.Bundled, wantRows: int64(b.w.Bundled * b.w.RowsPerBlock())}
}

func (b *bencher) bundle(ctx context.Context) error {
	return b.chainsinkRun(ctx, Result{Key: "bundle", Name: "(c) chainsink, bundles", Format: "bundle", Indexes: "live"},
		b.bundleSpec("bundle"), nil, nil)
}

func (b *bencher) etl(ctx context.Context) error {
	n := b.o.Blocks * ItemsPerBlock
	spec := runSpec{key: "etl", schema: "bench_etl", topic: topicETL, format: "ethereum-etl", messages: n,
		blocks: b.o.Blocks, wantRows: int64(b.w.Bundled * b.w.RowsPerBlock())}
	return b.chainsinkRun(ctx, Result{Key: "etl", Name: "(c) chainsink, ethereum-etl items", Format: "ethereum-etl", Indexes: "live"},
		spec, nil, nil)
}

// deferred is the backfill mode: secondary indexes dropped before the run, built again after it (timed).
func (b *bencher) deferred(ctx context.Context) error {
	return b.deferredRun(ctx, "deferred", "(5) chainsink, bundles, indexes deferred", false)
}

func (b *bencher) deferredRun(ctx context.Context, key, name string, tuned bool) error {
	r := Result{Key: key, Name: name, Format: "bundle", Indexes: "deferred", Tuned: tuned}
	spec := b.bundleSpec(key)
	if tuned {
		spec.args, spec.env = TunedBundles.Args, TunedBundles.Env
	}
	return b.chainsinkRun(ctx, r, spec,
		func(st *store.Store) error {
			_, err := store.DropSecondaryIndexes(ctx, st.Pool())
			return err
		},
		func(st *store.Store, r *Result) error {
			t0 := time.Now()
			built, err := store.CreateSecondaryIndexes(ctx, st.Pool(),
				store.IndexBuildOptions{Workers: b.o.IndexWorkers, MaintenanceWorkMem: b.o.IndexMem})
			if err != nil {
				return err
			}
			if len(built) != len(store.SecondaryIndexes) {
				return fmt.Errorf("rebuilt %d of %d indexes", len(built), len(store.SecondaryIndexes))
			}
			r.IndexRebuild = time.Since(t0).Seconds()
			return nil
		})
}

// growth measures the bundle run again with rows already in the tables, preloaded through the ceiling's COPY
// path with further renumbered copies below the workload's block numbers.
func (b *bencher) growth(ctx context.Context) error {
	for _, n := range b.o.Growth {
		if n <= 0 {
			continue // the main bundle run is the 0 point
		}
		if err := b.growthRun(ctx, n, false); err != nil {
			return err
		}
	}
	return nil
}

func (b *bencher) growthRun(ctx context.Context, n int64, tuned bool) error {
	key, label := fmt.Sprintf("growth-%d", n), ""
	if tuned {
		key, label = "tuned-"+key, " — tuned"
	}
	spec := b.bundleSpec(key)
	if tuned {
		spec.args, spec.env = TunedBundles.Args, TunedBundles.Env
	}
	blocks := int((n + int64(b.w.RowsPerBlock()) - 1) / int64(b.w.RowsPerBlock()))
	preloaded := int64(blocks * b.w.RowsPerBlock())
	spec.wantRows += preloaded
	r := Result{Key: key, Name: fmt.Sprintf("(3) chainsink, bundles, %s rows preloaded%s", human(float64(preloaded)), label),
		Format: "bundle", Indexes: "live", Preloaded: preloaded, Tuned: tuned}
	return b.chainsinkRun(ctx, r, spec, func(st *store.Store) error {
		t0 := time.Now()
		if err := ensurePartitions(ctx, st, FirstPreloadBlock, blocks); err != nil {
			return err
		}
		counts, err := b.writeParallel(ctx, st.Pool(), blocks, func(i int) chain.Rows {
			return fixtures.RenumberRows(&b.w.Base, FirstPreloadBlock+uint64(i))
		}, CopyRows)
		if err != nil {
			return err
		}
		if got := sum(counts); got != preloaded {
			return fmt.Errorf("preloaded %d rows, want %d", got, preloaded)
		}
		if _, err := st.Pool().Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(chain.CoreTables.Names(), ", ")); err != nil {
			return err
		}
		b.logf("    preloaded %d rows (%d blocks) with COPY and vacuumed in %s", preloaded, blocks,
			time.Since(t0).Round(time.Millisecond))
		return b.settle(ctx)
	}, nil)
}

// ensurePartitions creates the partitions of n heights from first, as `chainsink run` would have: the
// preloads copy around it, and history that chainsink stored is in partitions of its ranges.
func ensurePartitions(ctx context.Context, st *store.Store, first uint64, n int) error {
	heights := make([]uint64, n)
	for i := range heights {
		heights[i] = first + uint64(i)
	}
	if err := store.NewPartitioner(store.DefaultPartitionBlocks).Ensure(ctx, st.Pool(), heights); err != nil {
		return fmt.Errorf("create the partitions of the preload: %w", err)
	}
	return nil
}

// verify times `chainsink verify` (the real binary, every check) over VerifyRows rows: renumbered copies of
// the workload's block that form one chain, stored with the ceiling's COPY and vacuumed, as after a backfill.
// The check must pass: a report of problems would mean the data or the checks are wrong.
func (b *bencher) verify(ctx context.Context) error {
	const schema = "bench_verify"
	st, done, err := b.scratchSchema(ctx, schema, b.o.Partitions+1)
	if err != nil {
		return err
	}
	defer done()
	blocks := int((b.o.VerifyRows + int64(b.w.RowsPerBlock()) - 1) / int64(b.w.RowsPerBlock()))
	b.logf("==> chainsink verify: storing %d blocks (%s rows) first", blocks, human(float64(blocks*b.w.RowsPerBlock())))
	t0 := time.Now()
	if err := ensurePartitions(ctx, st, FirstPreloadBlock, blocks); err != nil {
		return err
	}
	counts, err := b.writeParallel(ctx, st.Pool(), blocks, func(i int) chain.Rows {
		return fixtures.RenumberRows(&b.w.Base, FirstPreloadBlock+uint64(i))
	}, CopyRows)
	if err != nil {
		return err
	}
	if _, err := st.Pool().Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(chain.CoreTables.Names(), ", ")); err != nil {
		return err
	}
	b.logf("    stored and vacuumed in %s", time.Since(t0).Round(time.Millisecond))
	if err := b.settle(ctx); err != nil {
		return err
	}
	pgBefore := postgresCPU()
	ctrs := b.counters(ctx)
	machineBefore := machineCPU()
	cmd := exec.CommandContext(ctx, b.o.Binary, "verify", "--database-url", b.dbURL, "--schema", schema, "--json")
	t0 = time.Now()
	out, err := cmd.Output()
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("chainsink verify: %w\n%s", err, out)
	}
	var rep struct {
		OK     bool  `json:"ok"`
		Blocks int64 `json:"blocks"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || !rep.OK || rep.Blocks != int64(blocks) {
		return fmt.Errorf("chainsink verify: %v, report %s", err, out)
	}
	r := Result{Key: "verify", Name: "(v) chainsink verify, every check", Format: "rows", Indexes: "live",
		Blocks: blocks, Rows: sum(counts), Seconds: secs, PostgresCPU: postgresCPU().since(pgBefore)}
	if cmd.ProcessState != nil {
		r.ChainsinkCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	r.OtherCPU = machineCPU() - machineBefore - r.PostgresCPU - r.ChainsinkCPU
	b.since(ctx, ctrs, &r)
	b.rep.add(r)
	b.logf("    verified %d rows in %.1fs (%s rows/s)", r.Rows, secs, human(float64(r.Rows)/secs))
	return nil
}

// tuned runs bundle, deferred and growth again with TunedBundles, and backlog with TunedETL.
func (b *bencher) tuned(ctx context.Context) error {
	const label = " — tuned"
	spec := b.bundleSpec("tuned-bundle")
	spec.args, spec.env = TunedBundles.Args, TunedBundles.Env
	if err := b.chainsinkRun(ctx, Result{Key: "tuned-bundle", Name: "(c) chainsink, bundles" + label, Format: "bundle",
		Indexes: "live", Tuned: true}, spec, nil, nil); err != nil {
		return err
	}
	if b.want("deferred") {
		if err := b.deferredRun(ctx, "tuned-deferred", "(5) chainsink, bundles, indexes deferred"+label, true); err != nil {
			return err
		}
	}
	if b.want("growth") {
		for _, n := range b.o.Growth {
			if n > 0 {
				if err := b.growthRun(ctx, n, true); err != nil {
					return err
				}
			}
		}
	}
	if b.want("backlog") && b.o.Backlog > 0 {
		return b.backlogRun(ctx, "tuned-backlog", label, true)
	}
	return nil
}

// backlog is chainsink's memory while it drains a large ethereum-etl backlog published before it starts.
func (b *bencher) backlog(ctx context.Context) error {
	if b.o.Backlog <= 0 {
		return nil
	}
	return b.backlogRun(ctx, "backlog", "", false)
}

// backlog32 is the backlog again on 32 partitions, every one owned by the one instance.
func (b *bencher) backlog32(ctx context.Context) error {
	if b.o.Backlog <= 0 {
		return nil
	}
	blocks := (b.o.Backlog + ItemsPerBlock - 1) / ItemsPerBlock
	spec := runSpec{key: "backlog32", schema: "bench_backlog32", topic: topicBacklog32, format: "ethereum-etl",
		messages: b.o.Backlog, blocks: blocks}
	return b.chainsinkRun(ctx, Result{Key: "backlog32", Name: fmt.Sprintf("(4) chainsink, %s-message ethereum-etl backlog, 32 partitions",
		human(float64(b.o.Backlog))), Format: "ethereum-etl", Indexes: "live"}, spec, nil, nil)
}

func (b *bencher) backlogRun(ctx context.Context, key, label string, tuned bool) error {
	blocks := (b.o.Backlog + ItemsPerBlock - 1) / ItemsPerBlock
	spec := runSpec{key: key, schema: "bench_" + strings.ReplaceAll(key, "-", "_"), topic: topicBacklog,
		format: "ethereum-etl", messages: b.o.Backlog, blocks: blocks}
	if tuned {
		spec.args, spec.env = TunedETL.Args, TunedETL.Env
	}
	return b.chainsinkRun(ctx, Result{Key: key, Name: fmt.Sprintf("(4) chainsink, %s-message ethereum-etl backlog%s",
		human(float64(b.o.Backlog)), label), Format: "ethereum-etl", Indexes: "live", Tuned: tuned}, spec, nil, nil)
}
