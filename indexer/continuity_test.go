package indexer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// continuityCase sets up one partition whose log and stored offset disagree, starts an indexer on it, and
// returns what the test needs to watch it.
func startOnAnomaly(t *testing.T, produce int, stored int64, deleteBelow int64) (*store.Store, *indexer.Indexer, *metrics.Metrics) {
	t.Helper()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	if err := broker.Produce(ctx, blockRecords(0, produce)); err != nil {
		t.Fatal(err)
	}
	if deleteBelow > 0 {
		if err := broker.DeleteRecords(ctx, "blocks", 0, deleteBelow); err != nil {
			t.Fatal(err)
		}
	}
	// What an earlier life of the topic (or of this group) left in Postgres.
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "g", Topic: "blocks", To: stored, By: "test"}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "g", OffsetRecheck: 50 * time.Millisecond, BatchMaxAge: 20 * time.Millisecond,
		Topics:      blocksTopic(),
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
	}, s.Pool(), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Stop(context.Background()) })
	return s, ix, m
}

func waitForAnomaly(t *testing.T, ix *indexer.Indexer, m *metrics.Metrics, want indexer.OffsetAnomaly) {
	t.Helper()
	waitFor(t, 20*time.Second, "the offset anomaly", func() (bool, error) {
		return len(ix.OffsetAnomalies()) == 1, nil
	})
	got := ix.OffsetAnomalies()[0]
	got.Since = time.Time{}
	if got != want {
		t.Fatalf("anomaly %+v, want %+v", got, want)
	}
	if v := testutil.ToFloat64(m.OffsetAnomalies.WithLabelValues("blocks", "0", want.Kind)); v != 1 {
		t.Fatalf("chainsink_offset_anomaly = %v, want 1", v)
	}
	if len(ix.Anomalies()) != 1 {
		t.Fatalf("readiness problems %v", ix.Anomalies())
	}
}

// resolve moves the stored offset as `chainsink offsets set` does and waits until the partition is consumed
// from there: blocks want stored, offset end.
func resolve(t *testing.T, s *store.Store, ix *indexer.Indexer, m *metrics.Metrics, to, end, blocks int64, kind string) {
	t.Helper()
	ctx := context.Background()
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "g", Topic: "blocks", To: to, By: "test",
		Reason: "resolve"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the partition consumed after the fix", func() (bool, error) {
		n, err := storedTotal(ctx, s, "g")
		return n == end, err
	})
	requireBlocks(t, ctx, s, blocks)
	if len(ix.OffsetAnomalies()) != 0 {
		t.Fatalf("anomalies after the fix: %v", ix.OffsetAnomalies())
	}
	if n := testutil.CollectAndCount(m.OffsetAnomalies); n != 0 {
		t.Fatalf("chainsink_offset_anomaly still has %d series (%s)", n, kind)
	}
}

// TestRecreatedTopicIsHeldNotDropped: the measured defect. The stored offset (1000) is above the end of a log
// that restarted at 0; librdkafka used to reset the partition to 0 and the worker then dropped every message
// below 1000 as "delivered again", forever, with /readyz green and lag 0. Now nothing is consumed or moved
// until an operator sets the offset, and then everything is stored.
func TestRecreatedTopicIsHeldNotDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ix, m := startOnAnomaly(t, 10, 1000, 0)
	waitForAnomaly(t, ix, m, indexer.OffsetAnomaly{Topic: "blocks", Partition: 0, Kind: indexer.AnomalyLogRegressed,
		Stored: 1000, LogStart: 0, LogEnd: 10})
	if v := testutil.ToFloat64(m.Lag.WithLabelValues("blocks", "0")); v != -990 {
		t.Fatalf("lag = %v, want -990: a stored offset above the log's end must show", v)
	}
	if n, err := storedTotal(ctx, s, "g"); err != nil || n != 1000 {
		t.Fatalf("stored offset moved to %d (%v) without an operator", n, err)
	}
	resolve(t, s, ix, m, 0, 10, 10, indexer.AnomalyLogRegressed)
}

// TestRetentionGapIsHeldNotJumped: retention deleted offsets 5..9 before they were stored. The first batch
// used to start at the stored 5 and cover 10.., so nothing recorded that 5..9 never reached Postgres.
func TestRetentionGapIsHeldNotJumped(t *testing.T) {
	t.Parallel()
	s, ix, m := startOnAnomaly(t, 20, 5, 10)
	waitForAnomaly(t, ix, m, indexer.OffsetAnomaly{Topic: "blocks", Partition: 0, Kind: indexer.AnomalyRetentionGap,
		Stored: 5, LogStart: 10, LogEnd: 20})
	resolve(t, s, ix, m, 10, 20, 10, indexer.AnomalyRetentionGap)
}

// TestRetentionWhileConsumingIsHeld: retention passes a partition while it is being consumed (its worker is
// stuck behind a frozen commit, the partition paused). The next fetch is out of range; librdkafka used to
// reset it (auto.offset.reset) and the batch range jumped the deleted messages. Now it reports the fetch
// error, the worker commits what it held, and the partition is held until an operator moves it on.
func TestRetentionWhileConsumingIsHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	for _, r := range blockRecords(0, 20) { // one record batch each, so that a fetch can stop between them
		if err := broker.Produce(ctx, []localkafka.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "g", OffsetRecheck: 50 * time.Millisecond, BatchMaxRows: 1,
		QueueMaxBytes: 2, // one message queued pauses the partition; an empty queue resumes it
		PauseAfter:    time.Millisecond,
		Topics:        blocksTopic(),
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10", "queued.max.messages.kbytes": "1",
			"queued.min.messages": "1", "fetch.message.max.bytes": "1"},
	}, db, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ix.Stop(context.Background()) //nolint:errcheck // the test checks the result of its own Stop
	<-db.entered                        // the first batch is being committed; the partition is paused behind it
	if err := broker.DeleteRecords(ctx, "blocks", 0, 15); err != nil {
		t.Fatal(err)
	}
	close(db.release)
	waitFor(t, 20*time.Second, "the partition held after its fetch went out of range", func() (bool, error) {
		return len(ix.OffsetAnomalies()) == 1, nil
	})
	a := ix.OffsetAnomalies()[0]
	if a.Kind != indexer.AnomalyRetentionGap || a.LogStart != 15 || a.Stored >= 15 {
		t.Fatalf("anomaly %+v", a)
	}
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "g", Topic: "blocks", To: 15, By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the rest consumed", func() (bool, error) {
		n, err := storedTotal(ctx, s, "g")
		return n == 20, err
	})
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if want := a.Stored + 5; counts["blocks"] != want {
		t.Fatalf("blocks = %d, want %d (the %d stored before the gap and 15..19)", counts["blocks"], want, a.Stored)
	}
}
