package indexer_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store/chain"
)

// TestBudgetSharesTheMemoryLimit: each partition's queue and batch limits are the configured ones or its
// share of the memory limit, whichever is smaller, never below the floors, never above what is configured.
func TestBudgetSharesTheMemoryLimit(t *testing.T) {
	def := indexer.Config{}
	small := indexer.Config{BatchMaxRows: 100, BatchMaxBytes: 1 << 20, QueueMaxBytes: 2000}
	off := indexer.Config{MemoryLimit: -1}
	tiny := indexer.Config{MemoryLimit: 1 << 20}
	for _, c := range []struct {
		name       string
		cfg        indexer.Config
		partitions int
		want       indexer.Limits
	}{
		{"no partition yet", def, 0, indexer.Limits{BatchMaxRows: 10000, BatchMaxBytes: 32 << 20, QueueMaxBytes: 8 << 20}},
		{"one partition", def, 1, indexer.Limits{BatchMaxRows: 10000, BatchMaxBytes: 32 << 20, QueueMaxBytes: 8 << 20}},
		{"two", def, 2, indexer.Limits{BatchMaxRows: 8192, BatchMaxBytes: 16 << 20, QueueMaxBytes: 8 << 20}},
		{"four", def, 4, indexer.Limits{BatchMaxRows: 4096, BatchMaxBytes: 8 << 20, QueueMaxBytes: 8 << 20}},
		{"32", def, 32, indexer.Limits{BatchMaxRows: 512, BatchMaxBytes: 1 << 20, QueueMaxBytes: 1 << 20}},
		{"1000: the floors", def, 1000, indexer.Limits{BatchMaxRows: 500, BatchMaxBytes: 256 << 10, QueueMaxBytes: 256 << 10}},
		{"small flags are kept", small, 32, indexer.Limits{BatchMaxRows: 100, BatchMaxBytes: 1 << 20, QueueMaxBytes: 2000}},
		{"off", off, 32, indexer.Limits{BatchMaxRows: 10000, BatchMaxBytes: 32 << 20, QueueMaxBytes: 8 << 20}},
		{"a tiny limit", tiny, 1, indexer.Limits{BatchMaxRows: 500, BatchMaxBytes: 256 << 10, QueueMaxBytes: 256 << 10}},
	} {
		if got := c.cfg.Budget(c.partitions); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// batchSizes records the rows of every committed batch.
type batchSizes struct {
	*metrics.Metrics
	mu      sync.Mutex
	largest int64
	batches int
}

func (b *batchSizes) BatchCommitted(rows chain.Counts, reasons []string, took time.Duration) {
	var n int64
	for _, v := range rows {
		n += v
	}
	b.mu.Lock()
	b.largest, b.batches = max(b.largest, n), b.batches+1
	b.mu.Unlock()
	b.Metrics.BatchCommitted(rows, reasons, took)
}

// blockWithWithdrawals decodes "block:N" into block N and 19 withdrawals: 20 rows of one height.
func blockWithWithdrawals(_, value []byte) (chain.Rows, *chain.Failure) {
	var n uint64
	if _, err := fmt.Sscanf(string(value), "block:%d", &n); err != nil {
		return chain.Rows{}, &chain.Failure{Reason: "invalid", Err: err}
	}
	r := chain.Rows{Blocks: []chain.Block{{Number: n, Hash: []byte{1}, ParentHash: []byte{1}, Miner: []byte{1},
		Timestamp: time.Unix(1_700_000_000, 0)}}}
	for i := range 19 {
		r.Withdrawals = append(r.Withdrawals, chain.Withdrawal{BlockNumber: n, Index: uint64(i), Position: int32(i),
			Address: []byte{2}, AmountGwei: big.NewInt(1)})
	}
	return r, nil
}

// drainBacklog stores a backlog of 8 partitions of 1,500 blocks each ("block:N", decoded by format) with the
// given memory limit and --batch-max-rows 10000, and returns the sizes of the batches committed.
func drainBacklog(t *testing.T, format indexer.Format, limit int64) *batchSizes {
	t.Helper()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	const partitions, perPartition = 8, 1500
	broker := blocksBroker(t, partitions)
	var recs []localkafka.Record
	for i := range partitions * perPartition {
		recs = append(recs, localkafka.Record{Topic: "blocks", Partition: int32(i % partitions), Value: []byte(fmt.Sprintf("block:%d", i))})
	}
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	m := &batchSizes{Metrics: metrics.New()}
	ix, err := indexer.New(indexer.Config{Brokers: broker.Addr(), Group: "g", Topics: []indexer.Topic{{Name: "blocks", Format: format}},
		BatchMaxRows: 10000, MemoryLimit: limit, BatchMaxAge: time.Second,
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"}}, s.Pool(), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ix.Stop(context.Background()) //nolint:errcheck // the test checks the result of its own Stop
	waitFor(t, 60*time.Second, "every offset stored", func() (bool, error) {
		n, err := storedTotal(ctx, s, "g")
		return n == int64(len(recs)), err
	})
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m
}

// TestBatchesShareTheMemoryLimit: an instance that owns 8 partitions, each with a backlog of 1,500 blocks of
// 20 rows, closes its batches at its share of the memory limit (the 500-row floor here) however large
// --batch-max-rows is; without a limit the same backlog makes batches of 64 heights (--batch-max-heights).
func TestBatchesShareTheMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		limit   int64
		check   func(largest int64) bool
		explain string
	}{
		{"a 32 MiB limit", 32 << 20, func(n int64) bool { return n <= 520 }, "at most 500 rows and the message that reached them"},
		{"no limit", -1, func(n int64) bool { return n > 520 && n <= 64*20 }, "more than the limit's 500 rows, at most 64 heights"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := drainBacklog(t, indexer.NewFormat("test", chain.ReplaceBlocks, blockWithWithdrawals), c.limit)
			if !c.check(m.largest) {
				t.Errorf("largest batch %d rows (of %d batches), want %s", m.largest, m.batches, c.explain)
			}
		})
	}
}

// TestBatchesHoldAtMostMaxHeights: one-row blocks (an L2's empty blocks) fill a batch to --batch-max-heights
// heights, not to --batch-max-rows: each height is a lock of the batch's transaction, and 8 partitions of
// 1,500-height batches asked Postgres for 12,000 locks at once, more than its lock table holds by default
// (the write failed with "out of shared memory").
func TestBatchesHoldAtMostMaxHeights(t *testing.T) {
	t.Parallel()
	if m := drainBacklog(t, blocksTopic()[0].Format, -1); m.largest > 64 {
		t.Errorf("largest batch %d one-height rows, want at most 64 heights", m.largest)
	}
}
