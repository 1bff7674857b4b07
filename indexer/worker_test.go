package indexer

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// threeRows decodes any message into three block rows, numbered from the message's first byte.
func threeRows(_, value []byte) (chain.Rows, *chain.Failure) {
	n := uint64(value[0]) * 3
	return chain.Rows{Blocks: []chain.Block{{Number: n}, {Number: n + 1}, {Number: n + 2}}}, nil
}

// testWorker is a worker of a partition with no stored offset that decodes with threeRows; its queue is
// filled by the test and its decodeLoop run by hand.
func testWorker(maxRows int) *worker {
	cfg := Config{Brokers: "x", Group: "g", BatchMaxRows: maxRows}.WithDefaults()
	var limits atomic.Pointer[Limits]
	l := cfg.Budget(1)
	limits.Store(&l)
	return &worker{
		tp:      partitionKey{"t", 0},
		topic:   Topic{Name: "t", Format: NewFormat("test", chain.ReplaceBlocks, threeRows)},
		cfg:     cfg,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: metrics.New(),
		q:       newQueue(nil),
		start:   -1,
		limits:  &limits,
	}
}

// decodeAll queues a message per offset (all before the decoder starts, as a backlog), closes the queue,
// runs the decoder to the end and returns the batches it sent.
func decodeAll(t *testing.T, w *worker, offsets []int) []*store.Batch {
	t.Helper()
	for _, o := range offsets {
		w.q.push(record{offset: int64(o), value: []byte{byte(o)}})
	}
	w.q.close()
	out := make(chan *store.Batch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go w.decodeLoop(ctx, out)
	var batches []*store.Batch
	for b := range out {
		batches = append(batches, b)
	}
	if ctx.Err() != nil {
		t.Fatal("the decoder did not finish")
	}
	return batches
}

// TestBatchesStayWithinTheirLimits queues far more than a batch before the decoder runs, as a backlog does,
// and checks that the decoder leaves the rest queued instead of decoding it into one oversized batch.
func TestBatchesStayWithinTheirLimits(t *testing.T) {
	const messages, maxRows = 100, 10
	var offsets []int
	for i := range messages {
		offsets = append(offsets, i)
	}
	next, rows := int64(0), 0
	for _, b := range decodeAll(t, testWorker(maxRows), offsets) {
		// The batch closes at the first message that takes it to maxRows or beyond: 4 messages of 3 rows.
		if b.Rows() > maxRows+2 {
			t.Errorf("batch [%d, %d) has %d rows, want at most %d", b.From, b.To, b.Rows(), maxRows+2)
		}
		if b.From != next {
			t.Fatalf("batch starts at %d, want %d", b.From, next)
		}
		next, rows = b.To, rows+b.Rows()
	}
	if next != messages || rows != 3*messages {
		t.Fatalf("batches covered offsets up to %d with %d rows, want %d and %d", next, rows, messages, 3*messages)
	}
}

// TestQueueReusesItsFront checks that a queue that never empties, because the poll loop pushes as fast as
// the worker pops, does not grow without bound.
func TestQueueReusesItsFront(t *testing.T) {
	q := newQueue(nil)
	q.push(record{offset: 0, value: []byte("x")})
	for i := 1; i < 100_000; i++ {
		q.push(record{offset: int64(i), value: []byte("x")})
		r, ok, _ := q.pop()
		if !ok || r.offset != int64(i-1) {
			t.Fatalf("pop %d: got offset %d, ok %v", i, r.offset, ok)
		}
	}
	if n := cap(q.items); n > 16 {
		t.Fatalf("queue of one item has capacity %d after 100,000 push/pop pairs", n)
	}
	if got := q.size(); got != 1 {
		t.Fatalf("queued bytes %d, want 1", got)
	}
	q.close()
	if _, ok, drained := q.pop(); !ok || drained {
		t.Fatal("the last item was not returned before the queue reported drained")
	}
	if _, ok, drained := q.pop(); ok || !drained {
		t.Fatal("a closed, empty queue must report drained")
	}
}

// TestDuplicateDeliveryIsDroppedWherever checks that a message delivered again (after a seek) is dropped
// whether its first copy is already sent, in the open batch or still queued, instead of being stored twice
// or tripping the batch's offset order.
func TestDuplicateDeliveryIsDroppedWherever(t *testing.T) {
	var offsets []int
	for _, span := range [][2]int{{0, 10}, {2, 10}, {8, 20}, {19, 25}} {
		for i := span[0]; i < span[1]; i++ {
			offsets = append(offsets, i)
		}
	}
	seen := map[int64]bool{}
	next := int64(0)
	for _, b := range decodeAll(t, testWorker(12), offsets) {
		if b.From != next {
			t.Fatalf("batch starts at %d, want %d", b.From, next)
		}
		for _, m := range b.Messages {
			if seen[m.Offset] {
				t.Errorf("offset %d is in two batches", m.Offset)
			}
			seen[m.Offset] = true
		}
		next = b.To
	}
	if next != 25 || len(seen) != 25 {
		t.Fatalf("batches end at %d with %d distinct offsets, want 25 and 25", next, len(seen))
	}
}

// TestWatermarkReadOncePerBacklog: a worker whose queue runs dry after every message of a backlog reads
// librdkafka's high watermark when it starts and when it reaches it, not at every message; and it sends
// the batch at once when it gets there, an hour before its BatchMaxAge.
func TestWatermarkReadOncePerBacklog(t *testing.T) {
	const messages = 200
	w := testWorker(1_000_000)
	w.cfg.BatchMaxAge = time.Hour
	var reads atomic.Int32
	w.highWatermark = func() int64 {
		reads.Add(1)
		return messages
	}
	out := make(chan *store.Batch, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go w.decodeLoop(ctx, out)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for o := range messages {
		w.q.push(record{offset: int64(o), value: []byte{0}})
		for w.q.size() > 0 { // taken: the next push finds the queue dry again
			select {
			case <-ctx.Done():
				t.Fatalf("message %d never taken", o)
			case <-tick.C:
			}
		}
	}
	select {
	case b := <-out:
		if b.From != 0 || b.To != messages {
			t.Fatalf("batch [%d, %d), want [0, %d)", b.From, b.To, messages)
		}
	case <-ctx.Done():
		t.Fatal("the batch that reached the watermark was not sent")
	}
	if n := reads.Load(); n > 2 {
		t.Fatalf("the watermark was read %d times for %d messages, want at most 2", n, messages)
	}
}

// TestQueuePausesSmallMessagesAtHalf: a queue of small messages pauses its partition at half of
// QueueMaxBytes, where it still holds thousands, and one of large messages only at the whole limit, where
// half would be a few messages, too few to decode from while librdkafka fetches again after the resume.
func TestQueuePausesSmallMessagesAtHalf(t *testing.T) {
	const limit = 8 << 20
	for _, c := range []struct {
		name        string
		size        int
		wantAt      int
		wantQueued  int // messages queued when the partition pauses
		wantResumed int // bytes under which it resumes
	}{
		{"ethereum-etl items of 1 KB", 1 << 10, limit / 2, 4096, limit / 4},
		{"mainnet bundles of 600 KB", 600 << 10, limit, 14, limit / 2},
		{"bundles of 128 KiB: 16 fill half the queue", 128 << 10, limit / 2, 32, limit / 4},
		{"one message larger than the limit", limit + 1, limit, 1, limit / 2},
	} {
		q := newQueue(nil)
		at, queued := 0, 0
		for at == 0 {
			bytes, messages := q.push(record{value: make([]byte, c.size)})
			at, queued = pauseAt(limit, bytes, messages), messages
		}
		if at != c.wantAt || queued != c.wantQueued || at/2 != c.wantResumed {
			t.Errorf("%s: paused at %d bytes with %d messages (resumes under %d), want %d with %d (under %d)",
				c.name, at, queued, at/2, c.wantAt, c.wantQueued, c.wantResumed)
		}
		if _, ok, _ := q.pop(); !ok {
			t.Fatalf("%s: nothing to pop", c.name)
		}
		if _, messages := q.push(record{value: []byte{1}}); messages != queued {
			t.Errorf("%s: %d messages queued after a pop and a push, want %d", c.name, messages, queued)
		}
	}
}

// TestQueuedBytesCountEveryQueue: the indexer's total is what its workers' queues hold, a released queue (its
// worker gone, revoked or fenced, with messages left) counts no more, and a wait for room ends when the total
// falls below its mark, not before.
func TestQueuedBytesCountEveryQueue(t *testing.T) {
	var total queuedBytes
	a, b := newQueue(&total), newQueue(&total)
	for i := range 10 {
		a.push(record{offset: int64(i), value: make([]byte, 100)})
		b.push(record{offset: int64(i), key: make([]byte, 10), value: make([]byte, 90)})
	}
	if total.bytes != 2000 {
		t.Fatalf("total %d, want 2000", total.bytes)
	}
	if room := total.roomFor(2001, 1500); room != nil {
		t.Fatal("a wait below the mark")
	}
	room := total.roomFor(2000, 1500)
	if room == nil {
		t.Fatal("no wait at the mark")
	}
	for range 5 {
		if _, ok, _ := a.pop(); !ok {
			t.Fatal("empty")
		}
	}
	select {
	case <-room:
		t.Fatal("room at 1500 bytes, want below 1500")
	default:
	}
	a.pop()
	select {
	case <-room:
	default:
		t.Fatalf("no room at %d bytes", total.bytes)
	}
	b.release() // its worker is gone with 1000 bytes queued
	if total.bytes != 400 {
		t.Fatalf("total %d after the release, want 400", total.bytes)
	}
	b.pop() // a gone worker's flush still pops; the total does not count it twice
	if total.bytes != 400 {
		t.Fatalf("total %d after a released queue's pop, want 400", total.bytes)
	}
}
