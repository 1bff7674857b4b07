package indexer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
)

// holdCounter counts the waits of the poll loop for a full queue, and the pauses.
type holdCounter struct {
	pauseCounter
	held int
}

func (c *holdCounter) ConsumerHeld(held bool) {
	c.mu.Lock()
	if held {
		c.held++
	}
	c.mu.Unlock()
	c.Metrics.ConsumerHeld(held)
}

func (c *holdCounter) holds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// TestFullQueueHoldsTheConsumer: a worker's queue fills while its batch commits. The poll loop used to pause
// the partition at once, which makes librdkafka drop what it had fetched ahead for it and fetch it again on
// the resume: in make bench every ethereum-etl item was fetched 2.2 times. It now waits for the worker to
// make room (up to --pause-after), and nothing is fetched twice; with a short --pause-after, a worker stuck
// for longer still gets its partition paused, and everything is stored exactly once either way.
func TestFullQueueHoldsTheConsumer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		pauseAfter time.Duration
		wantPause  bool
	}{{"held", indexer.MaxPauseAfter, false}, {"paused", time.Millisecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, _ := pgtest.Open(t)
			broker := blocksBroker(t, 1)
			refetches := broker.CountRefetches()
			const blocks = 600
			if err := broker.Produce(ctx, blockRecords(0, blocks)); err != nil {
				t.Fatal(err)
			}
			db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
			m := &holdCounter{pauseCounter: pauseCounter{Metrics: metrics.New()}}
			ix := startIndexer(t, indexer.Config{
				Brokers: broker.Addr(), Group: "g", Topics: blocksTopic(), BatchMaxRows: 20,
				QueueMaxBytes: 400, // ≈ 40 messages: full behind the frozen commit, with the rest fetched ahead
				PauseAfter:    tc.pauseAfter,
				KafkaConfig:   map[string]string{"fetch.wait.max.ms": "10"},
			}, db, m)
			<-db.entered // the first batch commits and stays there: the next fills, then the queue
			waitFor(t, 20*time.Second, "the queue full: the consumer held or the partition paused", func() (bool, error) {
				p, _, _ := m.counts()
				return p > 0 || m.holds() > 0, nil
			})
			close(db.release)
			waitStored(t, 30*time.Second, s, "g", blocks)
			if err := ix.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			requireBlocks(t, ctx, s, blocks)
			paused, resumed, _ := m.counts()
			t.Logf("held %d times, paused %d, resumed %d; %d messages fetched again", m.holds(), paused, resumed, refetches.Messages())
			if tc.wantPause {
				if paused == 0 || resumed == 0 {
					t.Fatalf("paused %d and resumed %d times: a worker stuck past --pause-after must be paused", paused, resumed)
				}
				if refetches.Messages() == 0 {
					t.Fatal("no message fetched again after a pause: the count does not see what a pause drops")
				}
				return
			}
			if paused != 0 || refetches.Messages() != 0 {
				t.Fatalf("paused %d times and fetched %d messages again: a full queue must hold the consumer, not drop its prefetch",
					paused, refetches.Messages())
			}
		})
	}
}

// TestStuckPartitionHoldsNoOneElse: one partition's worker is stuck on a commit. Its queue fills the total,
// the consumer waits --pause-after and pauses it; from then on its queue must not count, or every other
// partition's full queue would hold the consumer as long again and be paused in turn, as if stuck too.
func TestStuckPartitionHoldsNoOneElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 2)
	const perPartition = 300
	var recs []localkafka.Record
	for i := range 2 * perPartition {
		recs = append(recs, localkafka.Record{Topic: "blocks", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("block:%d", i))})
	}
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	m := &holdCounter{pauseCounter: pauseCounter{Metrics: metrics.New()}}
	ix := startIndexer(t, indexer.Config{
		Brokers: broker.Addr(), Group: "g", Topics: blocksTopic(), BatchMaxRows: 20,
		QueueMaxBytes:   400,
		PauseAfter:      5 * time.Second, // far above a commit of 20 rows, so that only the stuck one is paused
		PartitionBlocks: -1,              // the first transaction is then a batch's, not the partitioner's (shared by all)
		KafkaConfig:     map[string]string{"fetch.wait.max.ms": "10"},
	}, db, m)
	var once sync.Once
	unfreeze := func() { once.Do(func() { close(db.release) }) }
	t.Cleanup(unfreeze) // before the indexer's Stop, which waits for the stuck commit
	<-db.entered        // the first batch to commit is stuck there, and its partition with it
	waitStored(t, 30*time.Second, s, "g", perPartition)
	if paused, _, _ := m.counts(); paused != 1 {
		t.Fatalf("paused %d times while one partition was stuck; only the stuck one should be", paused)
	}
	unfreeze()
	waitStored(t, 30*time.Second, s, "g", 2*perPartition)
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	requireBlocks(t, ctx, s, 2*perPartition)
}
