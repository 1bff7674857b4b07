package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/internal/retry"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// record is a message as the poll loop hands it to a worker; it owns key and value.
type record struct {
	offset int64
	key    []byte
	value  []byte
}

// queue is a worker's inbox. The poll loop appends without blocking, and waits for room only after it has
// filled the queue (Indexer.holdForRoom); the worker takes one record at a time, only while its batch has
// room, so that what waits here is raw bytes (bounded by QueueMaxBytes) rather than decoded rows.
type queue struct {
	mu     sync.Mutex
	items  []record
	head   int // items[:head] have been taken
	bytes  int
	closed bool
	notify chan struct{} // capacity 1: "there is something new"
	// total counts the bytes of every queue of the indexer, until release; nil in some tests.
	total *queuedBytes
}

func newQueue(total *queuedBytes) *queue { return &queue{notify: make(chan struct{}, 1), total: total} }

// queuedBytes is what all the workers of an indexer have queued, and the poll loop's wait for it to fall
// (Indexer.holdForRoom).
type queuedBytes struct {
	mu    sync.Mutex
	bytes int
	room  chan struct{} // closed once bytes < below
	below int
}

func (t *queuedBytes) add(n int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.bytes += n
	if t.room != nil && t.bytes < t.below {
		close(t.room)
		t.room = nil
	}
	t.mu.Unlock()
}

// roomFor returns nil when fewer than over bytes are queued; else a channel that is closed once fewer than
// below are. A later call replaces the channel of an earlier one, which then is never closed.
func (t *queuedBytes) roomFor(over, below int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bytes < over {
		return nil
	}
	t.room, t.below = make(chan struct{}), below
	return t.room
}

// release takes what q holds out of the indexer's total, and q counts for itself alone from then on: for a
// worker that is gone, and for a paused partition's, which must not hold the others back (its bytes stay
// queued while it is stuck). count puts a resumed partition's queue back.
func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.total.add(-q.bytes)
	q.total = nil
}

func (q *queue) count(total *queuedBytes) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.total == nil {
		q.total = total
		q.total.add(q.bytes)
	}
}

// push appends r and returns the queued bytes and messages.
func (q *queue) push(r record) (bytes, messages int) {
	q.mu.Lock()
	if q.head > 0 && q.head >= len(q.items)/2 {
		// Reuse the taken front, so that a queue that is never empty does not grow without bound.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, r)
	q.bytes += len(r.key) + len(r.value)
	q.total.add(len(r.key) + len(r.value))
	bytes, messages = q.bytes, len(q.items)-q.head
	q.mu.Unlock()
	q.signal()
	return bytes, messages
}

func (q *queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// close tells the worker to flush what it has and stop.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop removes and returns the oldest record. ok is false when the queue is empty; drained is true when it is
// also closed, so nothing more will come.
func (q *queue) pop() (r record, ok, drained bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return record{}, false, q.closed
	}
	r = q.items[q.head]
	q.items[q.head] = record{} // the worker owns the buffers now; do not keep them alive from here
	q.head++
	q.bytes -= len(r.key) + len(r.value)
	q.total.add(-len(r.key) - len(r.value))
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return r, true, false
}

func (q *queue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// outcome is how a worker ended.
type outcome struct {
	w      *worker
	tp     partitionKey
	fenced bool
	err    error // fatal; nil when stopped or fenced
}

type partitionKey struct {
	topic     string
	partition int32
}

// worker owns one partition: a decoder goroutine building batches and a committer goroutine writing them.
type worker struct {
	tp     partitionKey
	topic  Topic
	cfg    Config
	db     store.DB
	writer *store.Writer
	// partitions, shared by every worker, creates the partitions of a batch's heights; nil when disabled.
	partitions *store.Partitioner
	log        *slog.Logger
	metrics    Metrics
	q          *queue
	start      int64 // stored next offset, or -1 when the partition has none yet
	onCommit   func(tp partitionKey, next int64)
	onRetry    func(tp partitionKey, since time.Time)
	// limits are the partition's batch limits, its share of the indexer's memory limit (Indexer.rebudget).
	limits *atomic.Pointer[Limits]

	// fetchNext is the offset after the last message routed to the worker; the poll loop's alone.
	fetchNext kafka.Offset
	// paused is set by the poll loop when it pauses the partition.
	paused atomic.Bool
	// resumeBelow is the queued bytes under which the poll loop resumes the paused partition; only the poll
	// loop reads and writes it.
	resumeBelow int
	// highWatermark is the partition's high watermark as librdkafka last heard it from the broker (no
	// request), or negative while unknown.
	highWatermark func() int64
	// lastNext is the stored next offset after the worker's last commit, for the lag gauge.
	lastNext atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
	result outcome
}

// run starts the worker's goroutines; the worker ends when ctx is cancelled, when its queue is closed and
// flushed, or on a fence or fatal error. done is closed at the end and result says why.
func (w *worker) run(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	batches := make(chan *store.Batch)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.decodeLoop(ctx, batches)
	}()
	go func() {
		defer wg.Done()
		w.result = w.commitLoop(ctx, batches)
		w.cancel() // a fence or fatal error ends the decoder too
	}()
	go func() {
		wg.Wait()
		w.cancel()
		close(w.done)
	}()
}

// stop closes the queue and waits until flush is done for the last batch to commit, then cancels.
func (w *worker) stop(flush context.Context) {
	w.q.close()
	select {
	case <-w.done:
		return
	case <-flush.Done():
		select {
		case <-w.done:
			return
		default:
		}
		if errors.Is(flush.Err(), context.DeadlineExceeded) {
			w.log.Warn("partition flush interrupted; its unwritten batch is consumed again by the next owner",
				"error", flush.Err())
		}
	}
	w.cancel()
	<-w.done
}

func (w *worker) decodeLoop(ctx context.Context, out chan<- *store.Batch) {
	defer close(out)
	next := w.start // -1 until the first message says where the partition starts
	lastLen := 0    // messages in the last full batch
	var batch *store.Batch
	var opened time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	closed := false
	// atEnd: the batch's last message was the partition's last when the queue ran dry, so more would only
	// come from a producer; the batch then waits BatchMinAge (0 by default) rather than BatchMaxAge.
	// knownHigh is the high watermark last read: a watermark never falls, so below it the batch is not at
	// the end and nothing needs to be asked (a backlog asks once, not at every message).
	atEnd, knownHigh := false, int64(-1)
	for {
		full := w.full(batch)
		var due time.Time
		if batch != nil {
			age := w.cfg.BatchMaxAge
			if atEnd {
				age = min(age, w.cfg.BatchMinAge)
			}
			due = opened.Add(age)
		}
		aged := batch != nil && !time.Now().Before(due)
		var send chan<- *store.Batch
		if batch != nil && batch.Len() > 0 && (full || aged || closed) {
			send = out
		}
		var inbox <-chan struct{}
		if !full && !closed {
			inbox = w.q.notify
		}
		var expire <-chan time.Time
		if batch != nil && !aged && !full && !closed {
			if timer == nil {
				timer = time.NewTimer(time.Until(due))
			} else {
				timer.Reset(time.Until(due))
			}
			expire = timer.C
		}
		if closed && (batch == nil || batch.Len() == 0) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case send <- batch:
			next = batch.To
			if full {
				lastLen = batch.Len() // the next batch of a backlog will hold about as many messages
			}
			batch, atEnd = nil, false
		case <-expire:
		case <-inbox:
			// Decode only until the batch is full. The rest stays queued as raw bytes, where it counts
			// against QueueMaxBytes and pauses the partition; decoding it now would hold it in memory as
			// rows (larger than their JSON) in a batch far above its limits.
			added := false
			for {
				if w.full(batch) {
					w.q.signal() // come back for the rest once the batch is sent
					break
				}
				r, ok, drained := w.q.pop()
				if !ok {
					closed = drained
					// Only when the queue is dry after adding something, and only at the watermark last
					// read: librdkafka's value is cached, but it is a call into C all the same.
					if added && !closed && w.highWatermark != nil && batch.To >= knownHigh {
						knownHigh = w.highWatermark()
						atEnd = knownHigh >= 0 && batch.To >= knownHigh
					}
					break
				}
				floor := next
				if batch != nil {
					floor = batch.To
				}
				if floor >= 0 && r.offset < floor {
					continue // delivered again after a seek: already in a batch
				}
				if batch == nil {
					from := next
					if from < 0 {
						from = r.offset
					}
					batch = store.NewBatch(w.cfg.Group, w.tp.topic, w.tp.partition, from, w.topic.Format.Mode())
					batch.Grow(lastLen + lastLen/8)
					opened = time.Now()
				}
				t0 := time.Now()
				rows, failure := w.decode(r.key, r.value)
				w.metrics.MessageDecoded(time.Since(t0))
				batch.Add(store.Message{Offset: r.offset, Key: r.key, Value: r.value, Rows: rows, Failure: failure})
				added, atEnd = true, false
				if next < 0 {
					next = r.offset
				}
			}
		}
	}
}

// decode runs the topic's Format. A Format is the caller's code: a panic in it must not take the partition
// (and the process) down in a crash loop over one message, so it becomes the message's dead letter, as
// chainsink's own decoders do with theirs.
func (w *worker) decode(key, value []byte) (rows chain.Rows, failure *chain.Failure) {
	defer func() {
		if p := recover(); p != nil {
			rows, failure = chain.Rows{}, &chain.Failure{Reason: ReasonDecoderPanic,
				Err: fmt.Errorf("format %s panicked: %v\n%s", w.topic.Format.Name(), p, debug.Stack())}
		}
	}()
	return w.topic.Format.Decode(key, value)
}

// ReasonDecoderPanic is the dead-letter reason of a message whose Format panicked.
const ReasonDecoderPanic = "internal_error"

// full says whether b has reached a limit and must be sent before anything else is added.
func (w *worker) full(b *store.Batch) bool {
	if b == nil {
		return false
	}
	l := w.limits.Load()
	return b.Rows() >= l.BatchMaxRows || b.Bytes() >= l.BatchMaxBytes || b.Heights() >= w.cfg.BatchMaxHeights
}

func (w *worker) commitLoop(ctx context.Context, in <-chan *store.Batch) outcome {
	res := outcome{w: w, tp: w.tp}
	for b := range in {
		err := w.commit(ctx, b)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return res
		case errors.Is(err, store.ErrFenced):
			w.metrics.BatchFenced()
			w.log.Warn("batch fenced: another owner advanced the partition; restarting it from Postgres",
				"from_offset", b.From, "to_offset", b.To)
			res.fenced = true
			return res
		default:
			w.log.Error("batch failed permanently", "error", err, "from_offset", b.From, "to_offset", b.To)
			res.err = err
			return res
		}
	}
	return res
}

// conflictRetries is how many times a batch is retried on store.ErrConflict before its conflicting messages
// are taken for bad data and dead-lettered: a race resolves on the first retry, a decoder that emits one key
// twice never does.
const conflictRetries = 3

// commit writes b, retrying transient errors with backoff while the partition is owned. (A statement timeout
// is handled inside the write, which halves the statement's messages; see store.Writer.)
func (w *worker) commit(ctx context.Context, b *store.Batch) error {
	var retryingSince, attemptStart time.Time
	conflicts := 0
	// uncertain: an earlier attempt's COMMIT failed without an answer, so it may have committed what
	// pending says.
	uncertain := false
	var pending store.Result
	// However the batch ends, the partition is no longer stuck on it: a fenced or failed worker must not
	// keep /readyz failing after it is gone.
	defer func() {
		if !retryingSince.IsZero() && w.onRetry != nil {
			w.onRetry(w.tp, time.Time{})
		}
	}()
	onRetry := func(attempt int, wait time.Duration, err error) {
		if retryingSince.IsZero() {
			retryingSince = attemptStart // stuck since the first attempt that failed began
			if w.onRetry != nil {
				w.onRetry(w.tp, retryingSince)
			}
		}
		if store.IsReadOnly(err) {
			// A demoted primary: its connections stay read-only. New ones find the primary (with
			// target_session_attrs=read-write in the URL), or this server once it is writable again; so on
			// every such retry, which the backoff spaces out. A Reset leaves statements in flight alone.
			if r, ok := w.db.(interface{ Reset() }); ok {
				r.Reset()
			}
		}
		if errors.Is(err, store.ErrConflict) {
			if conflicts++; conflicts >= conflictRetries {
				b.RejectConflicts = true
			}
		}
		w.metrics.Retried("postgres")
		w.log.Info("transient Postgres error; retrying the batch", "error", err, "attempt", attempt,
			"backoff", wait, "from_offset", b.From, "to_offset", b.To)
	}
	if w.partitions != nil {
		if err := w.partitions.Ensure(ctx, w.db, b.BlockHeights()); err != nil && ctx.Err() == nil {
			// Never a reason to hold the batch: its rows go to the default partition, and the partition is
			// created, with those rows moved into it, by a later batch's attempt.
			w.log.Warn("could not create the partitions of the batch's heights; their rows go to the default partition for now",
				"error", err, "from_offset", b.From, "to_offset", b.To)
		}
	}
	retryable := func(err error) bool { return store.IsTransient(err) || errors.Is(err, store.ErrConflict) }
	policy := retry.Policy{Initial: w.cfg.RetryInitial, Max: w.cfg.RetryMax}
	return retry.Do(ctx, policy, retryable, onRetry, func(ctx context.Context) error {
		attemptStart = time.Now()
		r, err := w.writer.Write(ctx, w.db, b)
		switch {
		case err == nil:
			w.committed(b, r, time.Since(attemptStart))
		case uncertain && errors.Is(err, store.ErrCommitted):
			// Not a zombie: this batch's own earlier COMMIT went through and only its reply was lost.
			w.log.Info("the batch had committed; only the reply to its COMMIT was lost",
				"from_offset", b.From, "to_offset", b.To)
			w.committed(b, pending, time.Since(attemptStart))
			return nil
		case errors.Is(err, store.ErrCommitUncertain):
			uncertain, pending = true, r
		}
		return err
	})
}

func (w *worker) committed(b *store.Batch, r store.Result, took time.Duration) {
	reasons := make([]string, len(r.DeadLetters))
	for i, d := range r.DeadLetters {
		reasons[i] = d.Reason
	}
	w.metrics.BatchCommitted(r.Rows, reasons, took)
	total := 0
	for _, n := range r.Rows {
		total += int(n)
	}
	if r.TimedOut > 0 {
		w.log.Warn("statements of the batch hit statement_timeout and were written in halves; raise the timeout or lower --batch-max-rows",
			"timed_out_statements", r.TimedOut, "from_offset", b.From, "to_offset", b.To)
	}
	for _, d := range r.DeadLetters {
		w.log.Warn("message stored in dead_letters", "offset", d.Offset, "reason", d.Reason, "error", d.Err)
	}
	w.log.Debug("batch committed", "from_offset", b.From, "to_offset", b.To, "messages", b.Len(), "rows", total,
		"dead_letters", len(r.DeadLetters), "commit_ms", took.Milliseconds())
	w.lastNext.Store(b.To)
	if w.onCommit != nil {
		w.onCommit(w.tp, b.To)
	}
}
