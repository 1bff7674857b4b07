package indexer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// blockDecoder is a minimal format for exercising the pipeline itself: "block:N" becomes block N.
func blockDecoder(_, value []byte) (chain.Rows, *chain.Failure) {
	s := string(value)
	if !strings.HasPrefix(s, "block:") {
		return chain.Rows{}, &chain.Failure{Reason: "invalid", Err: fmt.Errorf("not a block: %.20q", s)}
	}
	n, err := strconv.ParseUint(s[len("block:"):], 10, 63)
	if err != nil {
		return chain.Rows{}, &chain.Failure{Reason: "invalid", Err: err}
	}
	h := make([]byte, 32)
	copy(h, s)
	return chain.Rows{Blocks: []chain.Block{{Number: n, Hash: h, ParentHash: h, Timestamp: time.Unix(int64(n), 0),
		Miner: h[:20]}}}, nil
}

// blocksTopic is the "blocks" topic in blockDecoder's format.
func blocksTopic() []indexer.Topic {
	return []indexer.Topic{{Name: "blocks", Format: indexer.NewFormat("test", chain.ReplaceBlocks, blockDecoder)}}
}

// blocksBroker starts a broker with a "blocks" topic of the given partitions, closed when the test ends.
func blocksBroker(t *testing.T, partitions int32) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"blocks": partitions}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// blockRecords are the messages "block:from" … "block:to-1" of partition 0 of "blocks".
func blockRecords(from, to int) []localkafka.Record {
	var recs []localkafka.Record
	for i := from; i < to; i++ {
		recs = append(recs, localkafka.Record{Topic: "blocks", Value: []byte(fmt.Sprintf("block:%d", i))})
	}
	return recs
}

// requireBlocks fails the test unless exactly want blocks are stored.
func requireBlocks(t *testing.T, ctx context.Context, s *store.Store, want int64) {
	t.Helper()
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != want {
		t.Fatalf("blocks = %d, want %d", counts["blocks"], want)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CHAINSINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// waitFor polls cond until it holds or the deadline passes; it is a wait on a condition, not a sleep.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func storedTotal(ctx context.Context, s *store.Store, group string) (int64, error) {
	offs, err := store.ListOffsets(ctx, s.Pool(), group)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range offs {
		n += o.NextOffset
	}
	return n, nil
}

// startIndexer starts an indexer of cfg on db and stops it when the test ends; a test that checks what Stop
// returns calls it first (a second Stop does nothing).
func startIndexer(t *testing.T, cfg indexer.Config, db store.DB, m indexer.Metrics) *indexer.Indexer {
	t.Helper()
	ix, err := indexer.New(cfg, db, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	return ix
}

// waitStored waits until the offsets group stored in s add up to want messages.
func waitStored(t *testing.T, timeout time.Duration, s *store.Store, group string, want int64) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d offsets of %s stored", want, group), func() (bool, error) {
		n, err := storedTotal(context.Background(), s, group)
		return n == want, err
	})
}

func TestPipelineStoresEveryMessageOnceWithBackpressure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 4)

	const perPartition = 500
	var recs []localkafka.Record
	for i := 0; i < 4*perPartition; i++ {
		v := fmt.Sprintf("block:%d", i)
		if i%97 == 13 {
			v = "garbage"
		}
		recs = append(recs, localkafka.Record{Topic: "blocks", Partition: int32(i % 4), Value: []byte(v)})
	}
	// The same blocks again: a producer that re-sent everything must not create a single duplicate row.
	for i := 0; i < 400; i++ {
		recs = append(recs, localkafka.Record{Topic: "blocks", Partition: int32(i % 4), Value: []byte(fmt.Sprintf("block:%d", i))})
	}
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}

	m := metrics.New()
	pauses := &pauseCounter{Metrics: m}
	ix := startIndexer(t, indexer.Config{
		Brokers: broker.Addr(), Group: "g1",
		Topics:        blocksTopic(),
		BatchMaxRows:  50,
		QueueMaxBytes: 2000,             // forces pause/resume all the time,
		PauseAfter:    time.Millisecond, // rather than holding the consumer while a commit makes room
		KafkaConfig:   map[string]string{"queued.max.messages.kbytes": "1", "fetch.wait.max.ms": "10", "session.timeout.ms": "6000"},
	}, s.Pool(), pauses)
	waitStored(t, 15*time.Second, s, "g1", int64(len(recs)))
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	garbage, resentGarbage := 0, 0
	for i := 0; i < 4*perPartition; i++ {
		if i%97 == 13 {
			garbage++
			if i < 400 {
				resentGarbage++ // the re-sent copy of a garbled block is a good one
			}
		}
	}
	if want := int64(4*perPartition - garbage + resentGarbage); counts["blocks"] != want {
		t.Fatalf("blocks = %d, want %d", counts["blocks"], want)
	}
	var dead, invalid int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE reason = 'invalid')
		FROM dead_letters`).Scan(&dead, &invalid); err != nil {
		t.Fatal(err)
	}
	if dead != garbage || invalid != garbage {
		t.Fatalf("dead letters = %d (%d invalid), want %d, all invalid", dead, invalid, garbage)
	}
	if p, r, _ := pauses.counts(); p == 0 || r == 0 {
		t.Fatalf("partitions paused %d times and resumed %d times; the queue limit forces both", p, r)
	} else {
		t.Logf("partitions paused %d times, resumed %d times", p, r)
	}
	if got := testutil.ToFloat64(m.DeadLetters.WithLabelValues("invalid")); int(got) != garbage {
		t.Fatalf("dead letter metric = %v, want %d", got, garbage)
	}
	if got := testutil.ToFloat64(m.RowsWritten.WithLabelValues("blocks")); got < float64(counts["blocks"]) {
		t.Fatalf("rows written metric = %v, below %d stored", got, counts["blocks"])
	}
}

// pauseCounter counts the pauses and resumes the indexer reports through its metrics.
type pauseCounter struct {
	*metrics.Metrics
	mu              sync.Mutex
	last            int
	paused, resumed int
}

func (c *pauseCounter) PartitionsPaused(n int) {
	c.mu.Lock()
	if n > c.last {
		c.paused += n - c.last
	} else {
		c.resumed += c.last - n
	}
	c.last = n
	c.mu.Unlock()
	c.Metrics.PartitionsPaused(n)
}

func (c *pauseCounter) counts() (paused, resumed, now int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused, c.resumed, c.last
}

// TestUnreadableOffsetsStopTheIndexerWithAnError: without its starting offsets an instance cannot own a
// partition safely, so it stops, and it stops as a failure (run exits 1): it used to stop as if asked to,
// and `chainsink run` exited 0 while consuming nothing.
func TestUnreadableOffsetsStopTheIndexerWithAnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	if _, err := s.Pool().Exec(ctx, `DROP TABLE kafka_offsets`); err != nil {
		t.Fatal(err)
	}
	broker := blocksBroker(t, 1)
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "g",
		Topics: blocksTopic(),
	}, s.Pool(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ix.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the indexer did not stop")
	}
	err = ix.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "kafka_offsets") {
		t.Fatalf("Stop = %v, want the error that reading kafka_offsets returned", err)
	}
}

// hangingDB never answers a query until its ctx ends, as a Postgres behind a black-holed network does.
type hangingDB struct{ store.DB }

func (d hangingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestHangingOffsetsReadIsBounded: reading starting offsets runs inside Poll (the rebalance callback); it used
// to retry until stopped, holding Poll past max.poll.interval.ms. Now it gives up after a third of it, and the
// indexer stops with the error.
func TestHangingOffsetsReadIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "g",
		Topics:      blocksTopic(),
		KafkaConfig: map[string]string{"max.poll.interval.ms": "6000", "session.timeout.ms": "6000"},
	}, hangingDB{s.Pool()}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ix.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the indexer is still waiting for its offsets")
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Fatalf("stopped after %v; the budget is 2s", took)
	}
	if err := ix.Stop(ctx); err == nil || !strings.Contains(err.Error(), "read starting offsets") {
		t.Fatalf("Stop = %v, want the offsets read's error", err)
	}
}

// TestStatementTimeoutHalvesTheBatch: a batch too slow for statement_timeout used to be retried as it was,
// forever. A trigger makes each block row cost 50 ms against a 300 ms statement_timeout: 12 blocks in one
// batch time out, and the write halves them (under savepoints of its one transaction) until they fit, every
// block once. Without the halving the batch is retried as it is, forever, and the test times out.
func TestStatementTimeoutHalvesTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	if _, err := s.Pool().Exec(ctx, `
		CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
		CREATE TRIGGER slow_blocks BEFORE INSERT ON blocks FOR EACH ROW EXECUTE FUNCTION slow_row()`); err != nil {
		t.Fatal(err)
	}
	cfg.StatementTimeout = 300 * time.Millisecond
	slow, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	broker := blocksBroker(t, 1)
	if err := broker.Produce(ctx, blockRecords(0, 12)); err != nil {
		t.Fatal(err)
	}
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "g", BatchMaxAge: time.Second, RetryInitial: 10 * time.Millisecond,
		Topics: blocksTopic(),
	}, slow.Pool(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { // bounded: without the halving the batch retries forever
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ix.Stop(sctx)
	}()
	waitFor(t, 30*time.Second, "every offset stored", func() (bool, error) {
		n, err := storedTotal(ctx, s, "g")
		return n == 12, err
	})
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	requireBlocks(t, ctx, s, 12)
}

// TestCaughtUpPartitionCommitsAtOnce: a worker whose partition has nothing more to fetch commits what it
// holds at once rather than after BatchMaxAge (an hour here), both after the backlog and for what a
// producer sends later, one message at a time as a follower does.
func TestCaughtUpPartitionCommitsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	if err := broker.Produce(ctx, blockRecords(0, 10)); err != nil {
		t.Fatal(err)
	}
	ix := startIndexer(t, indexer.Config{
		Brokers: broker.Addr(), Group: "g1", Topics: blocksTopic(),
		BatchMaxAge: time.Hour, BatchMaxRows: 1000,
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
	}, s.Pool(), nil)
	waitStored(t, 10*time.Second, s, "g1", 10) // the backlog
	for i := 10; i < 13; i++ {
		if err := broker.Produce(ctx, blockRecords(i, i+1)); err != nil {
			t.Fatal(err)
		}
		waitStored(t, 10*time.Second, s, "g1", int64(i+1))
	}
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	requireBlocks(t, ctx, s, 13)
}

// TestOneByteQueueResumes: with --queue-max-bytes 1 every message pauses its partition, and the resume
// threshold, half of the limit, was zero bytes, which no queue is below: the partition stayed paused after
// its first message. An empty queue now always resumes it.
func TestOneByteQueueResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	if err := broker.Produce(ctx, blockRecords(0, 30)); err != nil {
		t.Fatal(err)
	}
	ix := startIndexer(t, indexer.Config{
		Brokers: broker.Addr(), Group: "g", Topics: blocksTopic(), BatchMaxRows: 5, QueueMaxBytes: 1,
		PauseAfter:  time.Millisecond, // pause at once rather than hold the consumer for the worker
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
	}, s.Pool(), nil)
	waitStored(t, 20*time.Second, s, "g", 30)
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
