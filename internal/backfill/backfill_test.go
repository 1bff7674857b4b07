package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

func TestBackfillParseTarget(t *testing.T) {
	for in, want := range map[string]backfill.Target{
		"123": {Number: 123}, "latest": {Latest: true}, "latest-12": {Latest: true, Depth: 12}, " 7 ": {Number: 7},
	} {
		got, err := backfill.ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "latest-", "latest+1", "-1", "head", "latest-x", "99999999999999999999"} {
		if _, err := backfill.ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	if s := (backfill.Target{Latest: true, Depth: 64}).String(); s != "latest-64" {
		t.Errorf("String = %q", s)
	}
}

func TestBackfillConfig(t *testing.T) {
	cfg := backfill.Config{Topic: "blocks", From: 10, To: backfill.Target{Number: 20}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if j := cfg.JobName(); j != "blocks:10-20" {
		t.Errorf("job = %q", j)
	}
	cfg.To = backfill.Target{Latest: true, Depth: 12}
	if j := cfg.JobName(); j != "blocks:10-latest-12" {
		t.Errorf("job = %q", j)
	}
	cfg.Job = "mine"
	if j := cfg.JobName(); j != "mine" {
		t.Errorf("job = %q", j)
	}
	for name, bad := range map[string]backfill.Config{
		"no topic":      {To: backfill.Target{Number: 1}},
		"to below from": {Topic: "t", From: 5, To: backfill.Target{Number: 4}},
		"concurrency":   {Topic: "t", To: backfill.Target{Number: 1}, Concurrency: -1},
		"batch size":    {Topic: "t", To: backfill.Target{Number: 1}, BatchSize: 5000},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// verifyTopic checks that every block in [from, to] is in the topic, keyed by its number, on one partition,
// decoding to the chain's block, transactions and logs. With exactlyOnce, each block has one message.
func verifyTopic(t *testing.T, c *chain, recs map[string][]record, from, to uint64, exactlyOnce bool) {
	t.Helper()
	ctx := context.Background()
	for n := from; n <= to; n++ {
		key := strconv.FormatUint(n, 10)
		rs := recs[key]
		switch {
		case len(rs) == 0:
			t.Fatalf("block %d is not in the topic", n)
		case exactlyOnce && len(rs) != 1:
			t.Fatalf("block %d is in the topic %d times", n, len(rs))
		}
		for _, r := range rs {
			if r.partition != rs[0].partition {
				t.Fatalf("block %d is on partitions %d and %d", n, rs[0].partition, r.partition)
			}
		}
		rows, fail := format.Decode(format.Bundle, []byte(key), rs[len(rs)-1].value)
		if fail != nil {
			t.Fatalf("block %d: %s: %v", n, fail.Reason, fail.Err)
		}
		blk, err := c.client.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if got := common.BytesToHash(rows.Blocks[0].Hash); got != blk.Hash() {
			t.Fatalf("block %d: hash %s, chain has %s", n, got, blk.Hash())
		}
		if len(rows.Transactions) != len(blk.Transactions()) {
			t.Fatalf("block %d: %d transactions, chain has %d", n, len(rows.Transactions), len(blk.Transactions()))
		}
		var logs int
		for i, tx := range blk.Transactions() {
			row := rows.Transactions[i]
			if common.BytesToHash(row.Hash) != tx.Hash() || row.Value.Cmp(tx.Value()) != 0 || !bytes.Equal(row.Input, tx.Data()) {
				t.Fatalf("block %d transaction %d differs from the chain's %s", n, i, tx.Hash())
			}
			rc, err := c.client.TransactionReceipt(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			if row.Status == nil || uint64(*row.Status) != rc.Status || row.GasUsed == nil || uint64(*row.GasUsed) != rc.GasUsed {
				t.Fatalf("block %d transaction %d: receipt fields differ from the chain's", n, i)
			}
			for _, l := range rc.Logs {
				got := rows.Logs[logs]
				logs++
				if uint(got.LogIndex) != l.Index || common.BytesToAddress(got.Address) != l.Address ||
					!bytes.Equal(got.Data, l.Data) || len(got.Topics) != len(l.Topics) {
					t.Fatalf("block %d log %d differs from the chain's", n, l.Index)
				}
				for k := range l.Topics {
					if common.BytesToHash(got.Topics[k]) != l.Topics[k] {
						t.Fatalf("block %d log %d topic %d differs", n, l.Index, k)
					}
				}
			}
		}
		if logs != len(rows.Logs) {
			t.Fatalf("block %d: %d logs, chain has %d", n, len(rows.Logs), logs)
		}
	}
	for k := range recs {
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil || n < from || n > to {
			t.Fatalf("unexpected key %q in the topic", k)
		}
	}
}

func logger(t *testing.T) *testLogger { return &testLogger{t: t} }

// runBackfill runs one backfill against url into topic with Postgres checkpoints.
func runBackfill(t *testing.T, ctx context.Context, cfg backfill.Config, url string, pub backfill.Publisher,
	cps backfill.Checkpoints, progress backfill.Progress) (backfill.Result, error) {
	t.Helper()
	f, err := backfill.DialRPC(ctx, url, 0, logger(t).slog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return backfill.Run(ctx, cfg, backfill.Deps{Fetcher: f, Publisher: pub, Checkpoints: cps, Progress: progress, Logger: logger(t).slog()})
}

func TestBackfillSimulatedChain(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	// Block 1: value transfers, legacy and dynamic-fee.
	c.commit(c.transfer(0, 1, 1e15, true), c.transfer(1, 2, 2e15, false), c.transfer(2, 0, 3e15, false))
	// Block 2: WETH9 deployed. Block 3: deposits. Block 4: a WETH transfer, a withdrawal and a transfer.
	w := c.deployWETH()
	c.commit(c.send(1, &w.addr, big.NewInt(5e17), w.pack(t, "deposit"), 300_000, false),
		c.send(2, &w.addr, big.NewInt(1e17), w.pack(t, "deposit"), 300_000, true))
	c.commit(c.send(1, &w.addr, big.NewInt(0), w.pack(t, "transfer", c.addrs[2], big.NewInt(2e17)), 300_000, false),
		c.send(2, &w.addr, big.NewInt(0), w.pack(t, "withdraw", big.NewInt(5e16)), 300_000, false),
		c.transfer(0, 2, 7, false))
	c.commit() // an empty block
	c.commit(c.transfer(0, 1, 1, false))
	head := c.head()

	const topic = "blocks"
	b := newBroker(t, topic, 3)
	s, _ := pgtest.Open(t)
	cps := backfill.StoreCheckpoints{DB: s.Pool()}
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Latest: true}, BatchSize: 3, Concurrency: 2}
	res, err := runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, topic), cps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.To != head || res.Delivered != int64(head+1) || res.Next != head+1 {
		t.Fatalf("result %+v, head %d", res, head)
	}
	recs := consume(t, b, topic)
	verifyTopic(t, c, recs, 0, head, true)

	// The WETH events are there: 2 Deposits, 1 Transfer, 1 Withdrawal, all from the contract.
	count := map[string]int{}
	for _, rs := range recs {
		rows, _ := format.Decode(format.Bundle, []byte(rs[0].key), rs[0].value)
		for _, l := range rows.Logs {
			if common.BytesToAddress(l.Address) != w.addr {
				t.Fatalf("a log from %x", l.Address)
			}
			for name, ev := range w.abi.Events {
				if common.BytesToHash(l.Topics[0]) == ev.ID {
					count[name]++
				}
			}
		}
	}
	if count["Deposit"] != 2 || count["Transfer"] != 1 || count["Withdrawal"] != 1 {
		t.Fatalf("WETH events in the topic: %v", count)
	}
	cp, ok, err := store.LoadCheckpoint(context.Background(), s.Pool(), "blocks:0-latest")
	if err != nil || !ok || cp.NextBlock != int64(head+1) || cp.ToBlock != int64(head) {
		t.Fatalf("checkpoint %+v ok=%v err=%v", cp, ok, err)
	}

	// Running the job again does nothing: it is complete.
	res, err = runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, topic), cps, nil)
	if err != nil || res.Delivered != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	// ... until the chain grows: a "latest" job continues from its checkpoint.
	c.commit(c.transfer(1, 0, 9, false))
	res, err = runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, topic), cps, nil)
	if err != nil || res.Delivered != 1 || res.Start != head+1 {
		t.Fatalf("run after the chain grew: %+v, %v", res, err)
	}
	verifyTopic(t, c, consume(t, b, topic), 0, head+1, true)

	// A --to beyond the head fails at once.
	cfg = backfill.Config{Topic: topic, From: 0, To: backfill.Target{Number: head + 100}}
	if _, err := runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, topic), cps, nil); err == nil ||
		!strings.Contains(err.Error(), "beyond the node's head") {
		t.Fatalf("--to beyond the head: %v", err)
	}
}

// commitTransfers mines n blocks, every third with a transfer.
func commitTransfers(c *chain, n int) {
	for i := range n {
		if i%3 == 0 {
			c.commit(c.transfer(i%3, (i+1)%3, int64(i+1), i%2 == 0))
		} else {
			c.commit()
		}
	}
}

func TestBackfillFaultyNode(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	commitTransfers(c, 60)
	head := c.head()

	p := newProxy(t, c.url)
	var hung atomic.Bool
	p.fault = func(n int64, body []byte) string {
		switch {
		case n == 1: // eth_blockNumber
			return "429"
		case n == 4 && !hung.Swap(true):
			return "hang"
		case n%5 == 0:
			return "429"
		case n%7 == 0:
			return "500"
		}
		return ""
	}
	const topic = "blocks"
	b := newBroker(t, topic, 2)
	s, _ := pgtest.Open(t)
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Number: head}, BatchSize: 4, Concurrency: 3,
		RequestTimeout: time.Second, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	res, err := runBackfill(t, context.Background(), cfg, p.URL(), newPublisher(t, b, topic), backfill.StoreCheckpoints{DB: s.Pool()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Next != head+1 {
		t.Fatalf("result %+v", res)
	}
	p.mu.Lock()
	faults := map[string]int{}
	for k, v := range p.faults {
		faults[k] = v
	}
	p.mu.Unlock()
	if faults["429"] < 3 || faults["500"] < 2 || faults["hang"] != 1 {
		t.Fatalf("faults injected: %v", faults)
	}
	t.Logf("faults injected: %v in %d requests", faults, p.requests.Load())
	verifyTopic(t, c, consume(t, b, topic), 0, head, true)

	// A node that keeps failing makes the backfill fail with a clear error, after MaxAttempts, and the
	// checkpoint stays below what was not delivered.
	p.fault = func(int64, []byte) string { return "500" }
	cfg.Job, cfg.MaxAttempts = "always-failing", 3
	_, err = runBackfill(t, context.Background(), cfg, p.URL(), newPublisher(t, b, topic), backfill.StoreCheckpoints{DB: s.Pool()}, nil)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("always failing node: %v", err)
	}
}

func TestBackfillReceiptsFallback(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	w := c.deployWETH()
	c.commit(c.send(1, &w.addr, big.NewInt(1e17), w.pack(t, "deposit"), 300_000, false), c.transfer(0, 2, 5, true))
	c.commit(c.send(1, &w.addr, big.NewInt(0), w.pack(t, "transfer", c.addrs[0], big.NewInt(1e16)), 300_000, false))
	commitTransfers(c, 10)
	head := c.head()

	// The proxy renames eth_getBlockReceipts so that the node answers "method not found" (-32601), as
	// nodes without it do.
	p := newProxy(t, c.url)
	p.rewrite = func(body []byte) []byte {
		return bytes.ReplaceAll(body, []byte(`"eth_getBlockReceipts"`), []byte(`"eth_getBlockReceiptsNotHere"`))
	}
	const topic = "blocks"
	b := newBroker(t, topic, 1)
	s, _ := pgtest.Open(t)
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Latest: true}, BatchSize: 2, Concurrency: 2,
		ReceiptsBatchSize: 2}
	if _, err := runBackfill(t, context.Background(), cfg, p.URL(), newPublisher(t, b, topic), backfill.StoreCheckpoints{DB: s.Pool()}, nil); err != nil {
		t.Fatal(err)
	}
	if p.methodCount("eth_getTransactionReceipt") < 7 {
		t.Fatalf("eth_getTransactionReceipt called %d times", p.methodCount("eth_getTransactionReceipt"))
	}
	verifyTopic(t, c, consume(t, b, topic), 0, head, true)
}

// cancelAt cancels a context after n deliveries.
type cancelAt struct {
	n      int64
	done   atomic.Int64
	cancel context.CancelFunc
}

func (p *cancelAt) Start(int64) {}
func (p *cancelAt) Finish()     {}
func (p *cancelAt) Add(n int) {
	if p.done.Add(int64(n)) == p.n {
		p.cancel()
	}
}

func TestBackfillResume(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	commitTransfers(c, 1000)
	head := c.head()

	const topic = "blocks"
	b := newBroker(t, topic, 4)
	s, _ := pgtest.Open(t)
	cps := backfill.StoreCheckpoints{DB: s.Pool()}
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Number: head}, Concurrency: 4, BatchSize: 10,
		CheckpointInterval: 50 * time.Millisecond}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := &cancelAt{n: 400, cancel: cancel}
	res, err := runBackfill(t, ctx, cfg, c.url, newPublisher(t, b, topic), cps, stop)
	var ie *backfill.InterruptedError
	if !errors.As(err, &ie) {
		t.Fatalf("interrupted run: %v", err)
	}
	if !strings.Contains(err.Error(), "run the same command again to continue") || ie.Next != res.Next {
		t.Fatalf("interrupted run: %v, result %+v", err, res)
	}
	cp, _, _ := store.LoadCheckpoint(context.Background(), s.Pool(), cfg.JobName())
	if cp.NextBlock < 300 || uint64(cp.NextBlock) > head || uint64(cp.NextBlock) != ie.Next {
		t.Fatalf("checkpoint after the interruption: %+v (interrupted at %d)", cp, ie.Next)
	}
	t.Logf("first run: interrupted at block %d after %d deliveries", ie.Next, res.Delivered)

	// Every block below the checkpoint is in the topic.
	recs := consume(t, b, topic)
	for n := uint64(0); n < ie.Next; n++ {
		if len(recs[strconv.FormatUint(n, 10)]) != 1 {
			t.Fatalf("block %d below the checkpoint %d: %d messages", n, ie.Next, len(recs[strconv.FormatUint(n, 10)]))
		}
	}

	res2, err := runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, topic), cps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Start != ie.Next || res2.Delivered != int64(head+1-ie.Next) {
		t.Fatalf("second run %+v after an interruption at %d", res2, ie.Next)
	}
	cp, _, _ = store.LoadCheckpoint(context.Background(), s.Pool(), cfg.JobName())
	if uint64(cp.NextBlock) != head+1 {
		t.Fatalf("final checkpoint %+v, want next %d", cp, head+1)
	}
	// Duplicates only above the first checkpoint (re-published after the restart).
	recs = consume(t, b, topic)
	verifyTopic(t, c, recs, 0, head, false)
	var dups int
	for k, rs := range recs {
		n, _ := strconv.ParseUint(k, 10, 64)
		if len(rs) > 1 {
			dups++
			if n < ie.Next || len(rs) > 2 {
				t.Fatalf("block %d is in the topic %d times (restart at %d)", n, len(rs), ie.Next)
			}
		}
	}
	t.Logf("second run: %d blocks from %d, %d re-published", res2.Delivered, res2.Start, dups)

	// Throughput of a whole backfill of the same chain, into another topic.
	cfg.Topic, cfg.CheckpointInterval = "blocks-full", 0
	res3, err := runBackfill(t, context.Background(), cfg, c.url, newPublisher(t, b, "blocks-full"), cps, nil)
	if err != nil || res3.Delivered != int64(head+1) {
		t.Fatalf("full run: %+v, %v", res3, err)
	}
	t.Logf("full backfill of %d blocks (concurrency %d, batch size %d): %.2fs, %.0f blocks/s",
		res3.Delivered, cfg.Concurrency, cfg.BatchSize, res3.Elapsed.Seconds(), res3.BlocksPerSecond())
}

// mixedReceipts is a node that answers block bad-1's receipts for block bad.
type mixedReceipts struct {
	backfill.Fetcher
	bad uint64
}

func (m mixedReceipts) Fetch(ctx context.Context, from, to uint64) ([]backfill.Block, error) {
	bs, err := m.Fetcher.Fetch(ctx, from, to)
	if err != nil {
		return nil, err
	}
	for i := range bs {
		if bs[i].Number == m.bad {
			other, err := m.Fetcher.Fetch(ctx, m.bad-1, m.bad-1)
			if err != nil {
				return nil, err
			}
			bs[i].Receipts = other[0].Receipts
		}
	}
	return bs, nil
}

func TestBackfillInconsistentNode(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	commitTransfers(c, 12) // transfers in blocks 1, 4, 7, 10
	const topic = "blocks"
	b := newBroker(t, topic, 1)
	f, err := backfill.DialRPC(context.Background(), c.url, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cps := &memCheckpoints{}
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Latest: true}, BatchSize: 1, Concurrency: 1,
		MaxAttempts: 2, RetryBase: time.Millisecond}
	_, err = backfill.Run(context.Background(), cfg, backfill.Deps{Fetcher: mixedReceipts{f, 5}, Publisher: newPublisher(t, b, topic),
		Checkpoints: cps})
	if err == nil || !strings.Contains(err.Error(), "block 5") || !strings.Contains(err.Error(), format.ReasonReceiptsMismatch) {
		t.Fatalf("inconsistent node: %v", err)
	}
	recs := consume(t, b, topic)
	if _, ok := recs["5"]; ok {
		t.Fatal("block 5 with foreign receipts reached the topic")
	}
	cp, _, _ := cps.Load(context.Background(), cfg.JobName())
	if cp.NextBlock != 5 {
		t.Fatalf("checkpoint %+v, want next block 5", cp)
	}
}

// fakeFetcher serves synthetic empty blocks.
type fakeFetcher struct{ head uint64 }

func (f fakeFetcher) Head(context.Context) (uint64, error) { return f.head, nil }

func (f fakeFetcher) Fetch(_ context.Context, from, to uint64) ([]backfill.Block, error) {
	var out []backfill.Block
	for n := from; n <= to; n++ {
		hash := crypto.Keccak256Hash([]byte(strconv.FormatUint(n, 10))).Hex()
		blk := `{"number":"0x` + strconv.FormatUint(n, 16) + `","hash":"` + hash + `","parentHash":"` + hash +
			`","timestamp":"0x1","miner":"0x0000000000000000000000000000000000000000","gasUsed":"0x0","gasLimit":"0x1","transactions":[]}`
		out = append(out, backfill.Block{Number: n, Block: []byte(blk), Receipts: []byte(`[]`)})
	}
	return out, nil
}

// shufflingPublisher acknowledges messages in reverse order, in groups, from another goroutine, and records
// which were delivered before it tells the backfill so.
type shufflingPublisher struct {
	mu        sync.Mutex
	pending   []func(error)
	keys      [][]byte
	fail      string
	delivered map[string]bool
}

func (p *shufflingPublisher) Publish(_ context.Context, key, _ []byte, done func(error)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, key)
	var err error
	if string(key) == p.fail {
		err = errors.New("broker said no")
	}
	p.pending = append(p.pending, func(error) {
		if err == nil {
			p.mu.Lock()
			if p.delivered == nil {
				p.delivered = map[string]bool{}
			}
			p.delivered[string(key)] = true
			p.mu.Unlock()
		}
		done(err)
	})
	if len(p.pending) == 7 {
		batch := p.pending
		p.pending = nil
		go func() {
			for i := len(batch) - 1; i >= 0; i-- {
				batch[i](nil)
			}
		}()
	}
	return nil
}

// deliveredBelow is a checkpoint check: every block from `from` up to the checkpoint was delivered.
func (p *shufflingPublisher) deliveredBelow(from int64) func(store.BackfillCheckpoint) error {
	return func(cp store.BackfillCheckpoint) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for n := from; n < cp.NextBlock; n++ {
			if !p.delivered[strconv.FormatInt(n, 10)] {
				return fmt.Errorf("checkpoint at %d, but block %d is not delivered", cp.NextBlock, n)
			}
		}
		return nil
	}
}

func (p *shufflingPublisher) flusher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
		p.mu.Lock()
		batch := p.pending
		p.pending = nil
		p.mu.Unlock()
		for i := len(batch) - 1; i >= 0; i-- {
			batch[i](nil)
		}
	}
}

func TestBackfillOutOfOrderDeliveries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := &shufflingPublisher{}
	go pub.flusher(ctx)
	cps := &memCheckpoints{check: pub.deliveredBelow(100)}
	cfg := backfill.Config{Topic: "t", From: 100, To: backfill.Target{Number: 1099}, BatchSize: 3, Concurrency: 5,
		CheckpointInterval: time.Millisecond}
	res, err := backfill.Run(ctx, cfg, backfill.Deps{Fetcher: fakeFetcher{head: 2000}, Publisher: pub, Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	if res.Next != 1100 || res.Delivered != 1000 {
		t.Fatalf("result %+v", res)
	}
	seen := map[string]bool{}
	for _, k := range pub.keys {
		if seen[string(k)] {
			t.Fatalf("block %s published twice", k)
		}
		seen[string(k)] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d blocks published", len(seen))
	}
	cps.requireSound(t) // every checkpoint on the way stayed behind the first undelivered block

	// A failed delivery stops the backfill, and the checkpoint stays below the failed block.
	pub2 := &shufflingPublisher{fail: "555"}
	go pub2.flusher(ctx)
	cps2 := &memCheckpoints{check: pub2.deliveredBelow(100)}
	_, err = backfill.Run(ctx, cfg, backfill.Deps{Fetcher: fakeFetcher{head: 2000}, Publisher: pub2, Checkpoints: cps2})
	if err == nil || !strings.Contains(err.Error(), "deliver block 555") {
		t.Fatalf("failed delivery: %v", err)
	}
	cp, _, _ := cps2.Load(ctx, cfg.JobName())
	if cp.NextBlock > 555 || cp.NextBlock < 100 {
		t.Fatalf("checkpoint %+v after a failed delivery of 555", cp)
	}
	cps2.requireSound(t)
}

// oversizeFetcher serves fakeFetcher's blocks with one of them padded above the consumer's 16 MiB limit, and
// counts how often that block is asked for.
type oversizeFetcher struct {
	fakeFetcher
	big   uint64
	asked atomic.Int32
}

func (f *oversizeFetcher) Fetch(ctx context.Context, from, to uint64) ([]backfill.Block, error) {
	blocks, err := f.fakeFetcher.Fetch(ctx, from, to)
	for i, b := range blocks {
		if b.Number == f.big {
			f.asked.Add(1)
			pad := `,"extraData":"0x` + strings.Repeat("ab", format.MaxMessageBytes/2) + `"}`
			blocks[i].Block = append(bytes.TrimSuffix(b.Block, []byte("}")), pad...)
		}
	}
	return blocks, err
}

// TestBackfillBundleTooLarge: docs/backfill.md says a bundle above 16 MiB fails at once. Asking the node again
// cannot make a block smaller, so the run must stop at the first attempt, with nothing of that block in the
// topic and the checkpoint at it.
func TestBackfillBundleTooLarge(t *testing.T) {
	t.Parallel()
	const topic = "blocks"
	b := newBroker(t, topic, 1)
	f := &oversizeFetcher{fakeFetcher: fakeFetcher{head: 6}, big: 3}
	cps := &memCheckpoints{}
	cfg := backfill.Config{Topic: topic, From: 0, To: backfill.Target{Number: 6}, BatchSize: 1, Concurrency: 1,
		MaxAttempts: 5, RetryBase: time.Millisecond, RetryMax: time.Millisecond}
	_, err := backfill.Run(context.Background(), cfg, backfill.Deps{Fetcher: f, Publisher: newPublisher(t, b, topic),
		Checkpoints: cps})
	if err == nil || !strings.Contains(err.Error(), "block 3") || !strings.Contains(err.Error(), "bytes a consumer accepts") {
		t.Fatalf("a bundle above the limit: %v", err)
	}
	if n := f.asked.Load(); n != 1 {
		t.Fatalf("block 3 was fetched %d times; an oversize bundle must fail at once", n)
	}
	recs := consume(t, b, topic)
	if _, ok := recs["3"]; ok {
		t.Fatal("the oversize block reached the topic")
	}
	for _, k := range []string{"0", "1", "2"} {
		if _, ok := recs[k]; !ok {
			t.Fatalf("block %s before the oversize one is missing from the topic", k)
		}
	}
	cp, _, _ := cps.Load(context.Background(), cfg.JobName())
	if cp.NextBlock != 3 {
		t.Fatalf("checkpoint %+v, want next block 3", cp)
	}
}
