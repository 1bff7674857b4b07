package indexer_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// lifecycleConfig is an indexer of the one-partition topic "blocks" whose batches stay open for a minute
// unless a stop flushes them: whatever is stored in these tests was written by a stop, not by a full or aged
// batch.
func lifecycleConfig(brokers, group string) indexer.Config {
	return indexer.Config{
		Brokers: brokers, Group: group,
		Topics:       blocksTopic(),
		BatchMaxAge:  time.Minute,
		BatchMinAge:  time.Minute, // a batch that holds the whole partition stays open too
		BatchMaxRows: 1_000_000,
		KafkaConfig:  map[string]string{"fetch.wait.max.ms": "10", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"},
	}
}

// produceBlocks starts a broker with a one-partition topic "blocks" holding blocks 0..n-1.
func produceBlocks(t *testing.T, n int) *localkafka.Broker {
	t.Helper()
	broker := blocksBroker(t, 1)
	if err := broker.Produce(context.Background(), blockRecords(0, n)); err != nil {
		t.Fatal(err)
	}
	return broker
}

// waitConsumed waits until the poll loop has handed n messages of "blocks" to the workers.
func waitConsumed(t *testing.T, m *metrics.Metrics, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d messages consumed", n), func() (bool, error) {
		return testutil.ToFloat64(m.MessagesConsumed.WithLabelValues("blocks")) >= float64(n), nil
	})
}

// assertNothingStored fails if group has an offset row or any block is stored.
func assertNothingStored(t *testing.T, s *store.Store, group, when string) {
	t.Helper()
	ctx := context.Background()
	offs, err := store.ListOffsets(ctx, s.Pool(), group)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 0 {
		t.Fatalf("%s: offsets stored: %+v", when, offs)
	}
	requireBlocks(t, ctx, s, 0)
}

// assertAllStored fails unless the offset of "blocks"/0 is n and blocks 0..n-1 are stored, each once.
func assertAllStored(t *testing.T, s *store.Store, group string, n int) {
	t.Helper()
	ctx := context.Background()
	offs, err := store.ListOffsets(ctx, s.Pool(), group)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 1 || offs[0].Topic != "blocks" || offs[0].Partition != 0 || offs[0].NextOffset != int64(n) {
		t.Fatalf("offsets %+v, want blocks/0 at %d", offs, n)
	}
	var count, distinct int64
	var lo, hi int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT number), coalesce(min(number), -1), coalesce(max(number), -1) FROM blocks`).
		Scan(&count, &distinct, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if count != int64(n) || distinct != int64(n) || lo != 0 || hi != int64(n-1) {
		t.Fatalf("blocks: %d rows, %d distinct, %d..%d; want blocks 0..%d once each", count, distinct, lo, hi, n-1)
	}
}

// offlineConfig is an indexer that is never meant to reach a broker (librdkafka's connection errors muted).
func offlineConfig() indexer.Config {
	cfg := lifecycleConfig("127.0.0.1:1", "never")
	cfg.KafkaConfig["log_level"] = "0"
	return cfg
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails unless ch closes within timeout.
func waitClosed(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not done after %v", what, timeout)
	}
}

// TestIndexerLifecycleStopBeforeStart: Stop before Start is a no-op that returns nil, leaves the indexer
// stopped (Done closed) and makes a later Start fail instead of starting an indexer nobody will stop.
func TestIndexerLifecycleStopBeforeStart(t *testing.T) {
	t.Parallel()
	ix, err := indexer.New(offlineConfig(), nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ix.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := ix.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if !isClosed(ix.Done()) {
		t.Fatal("Done is not closed after Stop before Start")
	}
	if err := ix.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestIndexerLifecycleStopDuringStart: a Stop racing a Start either prevents it or waits for the indexer it
// started; it never returns while an indexer is still running.
func TestIndexerLifecycleStopDuringStart(t *testing.T) {
	t.Parallel()
	for i := range 10 {
		ix, err := indexer.New(offlineConfig(), nil, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		started := make(chan error, 1)
		go func() { started <- ix.Start(ctx) }()
		for range i % 5 { // vary which of the two comes first
			runtime.Gosched()
		}
		if err := ix.Stop(ctx); err != nil {
			t.Fatalf("round %d: Stop: %v", i, err)
		}
		if !isClosed(ix.Done()) {
			t.Fatalf("round %d: Stop returned before the indexer stopped (Start: %v)", i, <-started)
		}
		<-started
		cancel()
	}
}

// TestIndexerLifecycleStopIsIdempotent: two Stops at once both wait for the indexer to be down and return the
// same result; a third after that too.
func TestIndexerLifecycleStopIsIdempotent(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	broker := produceBlocks(t, 5)
	m := metrics.New()
	ix, err := indexer.New(lifecycleConfig(broker.Addr(), "idem"), s.Pool(), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	waitConsumed(t, m, 5)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	downAtReturn := make([]bool, 2)
	for i := range 2 {
		wg.Go(func() {
			errs[i] = ix.Stop(ctx)
			downAtReturn[i] = isClosed(ix.Done())
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("concurrent Stop %d: %v", i, errs[i])
		}
		if !downAtReturn[i] {
			t.Errorf("concurrent Stop %d returned before Done was closed", i)
		}
	}
	if err := ix.Stop(ctx); err != nil {
		t.Errorf("third Stop: %v", err)
	}
	if err := ix.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}
	if err := ix.Start(ctx); err == nil {
		t.Error("Start after Stop succeeded")
	}
	assertAllStored(t, s, "idem", 5)
}

// TestIndexerLifecycleGracefulStopCommitsOpenBatches: the workers hold an open batch (it would not close by
// itself for a minute); Stop writes it before returning.
func TestIndexerLifecycleGracefulStopCommitsOpenBatches(t *testing.T) {
	t.Parallel()
	const n = 40
	s, _ := pgtest.Open(t)
	broker := produceBlocks(t, n)
	m := metrics.New()
	ix, err := indexer.New(lifecycleConfig(broker.Addr(), "graceful"), s.Pool(), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	waitConsumed(t, m, n)
	assertNothingStored(t, s, "graceful", "before Stop (the batch should still be open)")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ix.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !isClosed(ix.Done()) {
		t.Fatal("Done is not closed after Stop returned")
	}
	assertAllStored(t, s, "graceful", n)
}

// TestIndexerLifecycleHardStopCommitsNothing: cancelling Start's ctx drops the open batch (nothing is written
// after a hard stop); the next indexer of the group consumes it again and stores every message exactly once.
func TestIndexerLifecycleHardStopCommitsNothing(t *testing.T) {
	t.Parallel()
	const n = 40
	s, _ := pgtest.Open(t)
	broker := produceBlocks(t, n)
	m := metrics.New()
	ix, err := indexer.New(lifecycleConfig(broker.Addr(), "hard"), s.Pool(), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	if err := ix.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	waitConsumed(t, m, n)
	assertNothingStored(t, s, "hard", "before the hard stop (the batch should still be open)")

	hardStop()
	waitClosed(t, ix.Done(), 5*time.Second, "indexer after its Start ctx was cancelled")
	if err := ix.Err(); err != nil {
		t.Fatalf("Err after a hard stop: %v", err)
	}
	if err := ix.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after a hard stop: %v", err)
	}
	assertNothingStored(t, s, "hard", "after the hard stop")

	// The next owner starts from what Postgres holds: nothing, so offset 0.
	m2 := metrics.New()
	cfg := lifecycleConfig(broker.Addr(), "hard")
	cfg.BatchMaxAge, cfg.BatchMinAge = 20*time.Millisecond, 0
	ix2, err := indexer.New(cfg, s.Pool(), testLogger(t), m2)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix2.Stop(context.Background()) })
	waitFor(t, 10*time.Second, "the second indexer to store every offset", func() (bool, error) {
		n2, err := storedTotal(context.Background(), s, "hard")
		return n2 >= n, err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ix2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertAllStored(t, s, "hard", n)
	if got := testutil.ToFloat64(m2.MessagesConsumed.WithLabelValues("blocks")); got != n {
		t.Fatalf("second indexer consumed %v messages, want all %d again", got, n)
	}
}

// TestIndexerLifecycleStopTimesOutOnBlockedCommit: a worker's commit is stuck (in Begin); Stop waits for it
// until its ctx ends, then cancels it and returns promptly, with the indexer down and nothing written.
func TestIndexerLifecycleStopTimesOutOnBlockedCommit(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	broker := produceBlocks(t, 10)
	db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(db.release) }) // unblocks the commit should Stop not cancel it
	cfg := lifecycleConfig(broker.Addr(), "blocked")
	cfg.BatchMaxAge, cfg.BatchMinAge = 20*time.Millisecond, 0 // the batch goes to the committer, which blocks in Begin
	ix, err := indexer.New(cfg, db, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, db.entered, 10*time.Second, "the first commit to reach Begin")

	const grace = 300 * time.Millisecond
	began := time.Now() // before the ctx, whose deadline is then no earlier than began+grace
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- ix.Stop(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(grace + 3*time.Second):
		t.Fatalf("Stop has not returned %v after its ctx expired", 3*time.Second)
	}
	took := time.Since(began)
	if took < grace {
		t.Fatalf("Stop returned after %v, before its ctx expired (%v), with a commit still blocked", took, grace)
	}
	if !isClosed(ix.Done()) {
		t.Fatal("Done is not closed after Stop returned")
	}
	assertNothingStored(t, s, "blocked", "after the interrupted Stop")
}
