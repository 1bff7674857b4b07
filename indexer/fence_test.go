package indexer_test

import (
	"bytes"
	"context"
	"log/slog"
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

// frozenDB holds the first batch transaction of an indexer at Begin until released: the indexer's committer
// is "frozen" exactly where a stalled process would be, before its fence.
type frozenDB struct {
	store.DB
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (f *frozenDB) Begin(ctx context.Context) (pgx.Tx, error) {
	first := false
	f.once.Do(func() { first = true })
	if first {
		close(f.entered)
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.DB.Begin(ctx)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStaleOwnerIsFenced: while an indexer's committer is frozen before its commit, another owner stores the
// same offsets. When the frozen one wakes, its batch is fenced and rolled back, counted and logged, the
// partition restarts from what Postgres holds, and later messages are stored: every row exactly once.
func TestStaleOwnerIsFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	produce := func(from, to int) []localkafka.Record {
		recs := blockRecords(from, to)
		if err := broker.Produce(ctx, recs); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	first := produce(0, 10)

	db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	var logs syncBuffer
	m := metrics.New()
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "fence",
		Topics:      blocksTopic(),
		BatchMaxAge: 50 * time.Millisecond,
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
	}, db, slog.New(slog.NewJSONHandler(&logs, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ix.Stop(context.Background()) //nolint:errcheck // the test checks the result of its own Stop
	<-db.entered

	// The new owner stores offsets 0..10 while the old one is frozen.
	owner := store.NewBatch("fence", "blocks", 0, 0, chain.ReplaceBlocks)
	for i, r := range first {
		rows, _ := blockDecoder(nil, r.Value)
		owner.Add(store.Message{Offset: int64(i), Value: r.Value, Rows: rows})
	}
	if _, err := store.WriteBatch(ctx, s.Pool(), owner); err != nil {
		t.Fatal(err)
	}
	close(db.release)

	waitFor(t, 20*time.Second, "the fenced batch to be counted", func() (bool, error) {
		return testutil.ToFloat64(m.FencedBatches) >= 1, nil
	})
	produce(10, 20)
	waitFor(t, 20*time.Second, "offsets after the restart", func() (bool, error) {
		n, err := storedTotal(ctx, s, "fence")
		return n == 20, err
	})
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	requireBlocks(t, ctx, s, 20)
	for _, want := range []string{"batch fenced", "fenced partition restarted from Postgres"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
