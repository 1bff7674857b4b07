package indexer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// continuityCase sets up one partition whose log and stored offset disagree, starts an indexer on it, and
// returns what the test needs to watch it.
func startOnAnomaly(t *testing.T, produce int, stored int64, deleteBelow int64) (*store.Store, *indexer.Indexer, *metrics.Metrics) {
	t.Helper()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"blocks": 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	var recs []localkafka.Record
	for i := range produce {
		recs = append(recs, localkafka.Record{Topic: "blocks", Value: []byte(fmt.Sprintf("block:%d", i))})
	}
	if err := broker.Produce(ctx, recs); err != nil {
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
		Topics:      []indexer.Topic{{Name: "blocks", Format: indexer.NewFormat("test", chain.ReplaceBlocks, blockDecoder)}},
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
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != blocks {
		t.Fatalf("blocks = %d, want %d", counts["blocks"], blocks)
	}
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
