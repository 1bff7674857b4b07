package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chainsink/chainsink/internal/format"
	retrypkg "github.com/chainsink/chainsink/internal/retry"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Checkpoints stores job progress.
type Checkpoints interface {
	Load(ctx context.Context, job string) (store.BackfillCheckpoint, bool, error)
	Save(ctx context.Context, cp store.BackfillCheckpoint) error
}

// StoreCheckpoints keeps checkpoints in the backfill_checkpoints table.
type StoreCheckpoints struct{ DB store.DB }

// Load implements Checkpoints.
func (s StoreCheckpoints) Load(ctx context.Context, job string) (store.BackfillCheckpoint, bool, error) {
	return store.LoadCheckpoint(ctx, s.DB, job)
}

// Save implements Checkpoints.
func (s StoreCheckpoints) Save(ctx context.Context, cp store.BackfillCheckpoint) error {
	return store.SaveCheckpoint(ctx, s.DB, cp)
}

// Deps are the parts Run talks to.
type Deps struct {
	Fetcher     Fetcher
	Publisher   Publisher
	Checkpoints Checkpoints
	// Tokens, if not nil, is shown every batch's blocks before they are published (`--tokens-topic`).
	Tokens TokenSink
	// Progress is optional.
	Progress Progress
	// Logger is optional.
	Logger *slog.Logger
}

// Result describes a finished (or stopped) run.
type Result struct {
	Job string
	// From and To are the job's range; Start is where this run began (the checkpoint's watermark).
	From, To, Start uint64
	// Next is the low watermark at the end: every block below it is delivered.
	Next uint64
	// Delivered is how many blocks this run delivered.
	Delivered int64
	Elapsed   time.Duration
}

// BlocksPerSecond is the delivery rate of the run.
func (r Result) BlocksPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

// InterruptedError is returned when ctx was cancelled (SIGINT, SIGTERM) before the range was done.
type InterruptedError struct{ Next uint64 }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted at block %d; run the same command again to continue", e.Next)
}

// Job is one run of a backfill, with the lifecycle of every long-running piece of chainsink: Start runs it in
// the background; Stop asks it to stop publishing, waits for the deliveries still outstanding (at most
// DrainTimeout), writes the checkpoint and returns within its ctx; cancelling Start's ctx stops it without
// waiting for deliveries (the checkpoint is still written: it only ever covers delivered blocks).
type Job struct {
	r    *runner
	done chan struct{}

	mu      sync.Mutex
	started bool
	stopped bool
	soft    context.CancelFunc // asks for the graceful stop
	hard    context.CancelFunc

	res Result // set before done is closed
	err error
}

// New checks cfg and prepares a job; nothing is fetched until Start.
func New(cfg Config, deps Deps) (*Job, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Progress == nil {
		deps.Progress = noProgress{}
	}
	return &Job{r: &runner{cfg: cfg, deps: deps, log: deps.Logger}, done: make(chan struct{})}, nil
}

// Start runs the job in the background; Wait or Done tell when it ends. It fails if called twice or after Stop.
func (j *Job) Start(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.started:
		return errors.New("backfill job already started")
	case j.stopped:
		return errors.New("backfill job already stopped")
	}
	j.started = true
	hard, hardCancel := context.WithCancel(ctx)
	soft, softCancel := context.WithCancel(hard)
	j.hard, j.soft = hardCancel, softCancel
	go func() {
		defer close(j.done)
		defer hardCancel()
		j.res, j.err = j.r.run(soft, hard)
	}()
	return nil
}

// Stop stops the job gracefully (see Job) and returns what Wait returns: *InterruptedError when the range was
// not done yet. When ctx is done first, the job is stopped hard. It is safe to call more than once, from
// several goroutines, and before Start (which then fails).
func (j *Job) Stop(ctx context.Context) (Result, error) {
	j.mu.Lock()
	if !j.started {
		if !j.stopped {
			j.stopped = true
			close(j.done)
		}
		j.mu.Unlock()
		return Result{}, nil
	}
	j.stopped = true
	soft, hard := j.soft, j.hard
	j.mu.Unlock()
	soft()
	select {
	case <-j.done:
	case <-ctx.Done():
		select {
		case <-j.done:
		default:
			hard()
			<-j.done
		}
	}
	return j.res, j.err
}

// Done is closed when the job has ended, by itself or by a stop.
func (j *Job) Done() <-chan struct{} { return j.done }

// Wait blocks until the job ends and returns how it went; see Run.
func (j *Job) Wait() (Result, error) {
	<-j.done
	return j.res, j.err
}

// Run backfills cfg's range and waits for it. When ctx is cancelled first it stops gracefully (Job.Stop, with
// DrainTimeout as the bound) and returns *InterruptedError; the checkpoint is written in every case.
func Run(ctx context.Context, cfg Config, deps Deps) (Result, error) {
	j, err := New(cfg, deps)
	if err != nil {
		return Result{}, err
	}
	if err := j.Start(context.WithoutCancel(ctx)); err != nil {
		return Result{}, err
	}
	select {
	case <-j.Done():
		return j.Wait()
	case <-ctx.Done():
		return j.Stop(context.Background()) // the drain is bounded by DrainTimeout
	}
}

type runner struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	from, to uint64

	// The delivery tracker: next is the contiguous low watermark, done the delivered blocks above it.
	mu        sync.Mutex
	next      uint64
	done      map[uint64]struct{}
	failure   error
	delivered atomic.Int64
	inFlight  atomic.Int64
	slots     chan struct{} // one per block published and not yet reported
	cancel    context.CancelFunc
}

// run is the job. ctx is the graceful stop; hard, its parent, the hard one.
func (r *runner) run(ctx, hard context.Context) (Result, error) {
	cfg := r.cfg
	res := Result{Job: cfg.Job, From: cfg.From}

	head, err := retry(r, ctx, "eth_blockNumber", func(ctx context.Context) (uint64, error) { return r.deps.Fetcher.Head(ctx) })
	if err != nil {
		return res, r.stopped(ctx, err)
	}
	switch {
	case cfg.To.Latest && head < cfg.To.Depth:
		return res, fmt.Errorf("the node's head %d is below the confirmation depth %d", head, cfg.To.Depth)
	case cfg.To.Latest:
		r.to = head - cfg.To.Depth
		r.log.Info("resolved --to", "to", cfg.To.String(), "head", head, "block", r.to)
	case cfg.To.Number > head:
		return res, fmt.Errorf("--to %d is beyond the node's head %d", cfg.To.Number, head)
	default:
		r.to = cfg.To.Number
	}
	if r.to < cfg.From {
		return res, fmt.Errorf("nothing to backfill: --to %s is block %d, below --from %d", cfg.To, r.to, cfg.From)
	}
	r.from = cfg.From
	res.To = r.to

	cp, ok, err := r.deps.Checkpoints.Load(ctx, cfg.Job)
	if err != nil {
		return res, err
	}
	start := r.from
	if ok {
		switch {
		case cp.Topic != cfg.Topic || uint64(cp.FromBlock) != cfg.From:
			return res, fmt.Errorf("job %q was started with --topic %s --from %d; give another --job for this range",
				cfg.Job, cp.Topic, cp.FromBlock)
		case !cfg.To.Latest && uint64(cp.ToBlock) != r.to:
			return res, fmt.Errorf("job %q was started with --to %d; give another --job for this range", cfg.Job, cp.ToBlock)
		}
		start = max(start, uint64(cp.NextBlock))
		r.log.Info("continuing backfill job from its checkpoint", "job", cfg.Job, "next_block", cp.NextBlock,
			"checkpointed_at", cp.UpdatedAt)
	}
	res.Start = start
	r.next = start
	r.done = map[uint64]struct{}{}
	if err := r.save(ctx); err != nil {
		return res, err
	}
	if start > r.to {
		r.log.Info("backfill job already complete", "job", cfg.Job, "from", r.from, "to", r.to)
		res.Next = start
		return res, nil
	}

	r.log.Info("backfill starting", "job", cfg.Job, "topic", cfg.Topic, "from", start, "to", r.to,
		"blocks", r.to-start+1, "concurrency", cfg.Concurrency, "batch_size", cfg.BatchSize)
	began := time.Now()
	r.deps.Progress.Start(int64(r.to - start + 1))
	r.slots = make(chan struct{}, cfg.MaxInFlight)

	work, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	defer cancel()

	// A generator of batch ranges and Concurrency fetchers; a fetcher's error ends them all (errgroup). A
	// failed delivery, reported on librdkafka's goroutine, ends them too, through r.fail and the work ctx.
	batches := make(chan [2]uint64)
	g, gctx := errgroup.WithContext(work)
	g.Go(func() error {
		defer close(batches)
		for lo := start; lo <= r.to; lo += uint64(cfg.BatchSize) {
			hi := min(lo+uint64(cfg.BatchSize)-1, r.to)
			select {
			case batches <- [2]uint64{lo, hi}:
			case <-gctx.Done():
				return nil
			}
			if hi == r.to {
				return nil
			}
		}
		return nil
	})
	for range cfg.Concurrency {
		g.Go(func() error {
			for b := range batches {
				if err := r.batch(gctx, b[0], b[1]); err != nil {
					r.fail(err)
					return err
				}
			}
			return nil
		})
	}

	ckptDone := make(chan struct{})
	stopCkpt := make(chan struct{})
	go func() {
		defer close(ckptDone)
		t := time.NewTicker(cfg.CheckpointInterval)
		defer t.Stop()
		last := start
		for {
			select {
			case <-stopCkpt:
				return
			case <-t.C:
				if n := r.watermark(); n != last {
					if err := r.save(ctx); err != nil {
						r.log.Warn("checkpoint not saved; retrying in a second", "error", err)
						continue
					}
					last = n
				}
			}
		}
	}()

	_ = g.Wait() // the failure, if any, is r.failure: deliveries can fail too
	drained := r.drain(ctx, hard)
	close(stopCkpt)
	<-ckptDone
	r.deps.Progress.Finish()
	saveErr := r.save(ctx)

	res.Next = r.watermark()
	res.Delivered = r.delivered.Load()
	res.Elapsed = time.Since(began)
	r.mu.Lock()
	failure := r.failure
	r.mu.Unlock()
	switch {
	case failure != nil && ctx.Err() == nil:
		return res, fmt.Errorf("backfill stopped: %w (every block below %d is delivered; run the same command again to continue)",
			failure, res.Next)
	case ctx.Err() != nil:
		if !drained {
			r.log.Warn("gave up waiting for outstanding deliveries", "outstanding", r.inFlight.Load(), "timeout", cfg.DrainTimeout)
		}
		return res, errors.Join(&InterruptedError{Next: res.Next}, saveErr)
	case saveErr != nil:
		return res, saveErr
	case res.Next != r.to+1:
		return res, fmt.Errorf("backfill ended at block %d before --to %d: a delivery is missing", res.Next, r.to)
	}
	r.log.Info("backfill complete", "job", cfg.Job, "from", r.from, "to", r.to, "blocks", res.Delivered,
		"seconds", res.Elapsed.Seconds(), "blocks_per_second", int(res.BlocksPerSecond()))
	return res, nil
}

// batch fetches, checks and publishes blocks lo..hi.
func (r *runner) batch(ctx context.Context, lo, hi uint64) error {
	type msg struct {
		n          uint64
		key, value []byte
		rows       chain.Rows
	}
	msgs, err := retry(r, ctx, fmt.Sprintf("blocks %d-%d", lo, hi), func(ctx context.Context) ([]msg, error) {
		blocks, err := r.deps.Fetcher.Fetch(ctx, lo, hi)
		if err != nil {
			return nil, err
		}
		if len(blocks) != int(hi-lo+1) {
			return nil, fmt.Errorf("fetch %d-%d returned %d blocks", lo, hi, len(blocks))
		}
		out := make([]msg, len(blocks))
		for i, b := range blocks {
			if b.Number != lo+uint64(i) {
				return nil, fmt.Errorf("fetch %d-%d returned block %d at position %d", lo, hi, b.Number, i)
			}
			key := format.BundleKey(b.Number)
			value, rows, err := EncodeRows(b)
			if err != nil {
				return nil, err
			}
			if r.deps.Tokens == nil {
				rows = chain.Rows{} // the decoded rows are only the sink's, and a batch in flight should not hold them
			}
			out[i] = msg{b.Number, key, value, rows}
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	if r.deps.Tokens != nil {
		rows := make([]chain.Rows, len(msgs))
		for i := range msgs {
			rows[i], msgs[i].rows = msgs[i].rows, chain.Rows{}
		}
		if _, err := retry(r, ctx, fmt.Sprintf("tokens of blocks %d-%d", lo, hi), func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.deps.Tokens.Observe(ctx, rows)
		}); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		r.inFlight.Add(1)
		n := m.n
		err := r.deps.Publisher.Publish(ctx, m.key, m.value, func(err error) { r.delivered1(n, err) })
		if err != nil {
			r.inFlight.Add(-1)
			<-r.slots
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publish block %d: %w", n, err)
		}
	}
	return nil
}

// TokenSink learns of the tokens in published blocks: internal/tokens' Watcher, which reads and publishes
// the metadata of tokens it has not seen. Observe is given a batch's decoded blocks, in order, before they
// are published, and returns once what it published about them is acknowledged, so that a block's
// checkpoint never passes tokens that were not delivered.
type TokenSink interface {
	Observe(ctx context.Context, blocks []chain.Rows) error
}

// Encode builds block b's bundle message and checks that chainsink's consumer will accept it, so that a
// node's inconsistent answer (receipts of another block, a missing field) fails here and not in the topic.
func Encode(b Block) ([]byte, error) {
	value, _, err := EncodeRows(b)
	return value, err
}

// EncodeRows is Encode that also returns the rows the bundle decodes into.
func EncodeRows(b Block) ([]byte, chain.Rows, error) {
	var value []byte
	var err error
	if f := b.Filtered; f != nil {
		value, err = format.EncodeFilteredBundle(f.Header, f.Logs, f.Transactions, f.Receipts)
	} else {
		value, err = format.EncodeBundle(b.Block, b.Receipts, b.Traces)
	}
	if err != nil {
		return nil, chain.Rows{}, fmt.Errorf("block %d: %w", b.Number, err)
	}
	if len(value) > format.MaxMessageBytes {
		return nil, chain.Rows{}, permanent(fmt.Errorf("block %d: bundle of %d bytes is above the %d bytes a consumer accepts",
			b.Number, len(value), format.MaxMessageBytes))
	}
	rows, fail := format.Decode(format.Bundle, format.BundleKey(b.Number), value)
	if fail != nil {
		return nil, chain.Rows{}, fmt.Errorf("block %d: the node's answer does not decode (%s): %w", b.Number, fail.Reason, fail.Err)
	}
	if len(rows.Blocks) != 1 || rows.Blocks[0].Number != b.Number {
		return nil, chain.Rows{}, fmt.Errorf("block %d: the node's answer is another block", b.Number)
	}
	return value, rows, nil
}

// delivered1 is a delivery report.
func (r *runner) delivered1(n uint64, err error) {
	defer func() {
		r.inFlight.Add(-1)
		<-r.slots
	}()
	if err != nil {
		r.fail(fmt.Errorf("deliver block %d: %w", n, err))
		return
	}
	r.mu.Lock()
	if n == r.next {
		r.next++
		for {
			if _, ok := r.done[r.next]; !ok {
				break
			}
			delete(r.done, r.next)
			r.next++
		}
	} else if n > r.next {
		r.done[n] = struct{}{}
	}
	r.mu.Unlock()
	r.delivered.Add(1)
	r.deps.Progress.Add(1)
}

func (r *runner) fail(err error) {
	r.mu.Lock()
	if r.failure == nil {
		r.failure = err
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *runner) watermark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// save writes the checkpoint, even when ctx is cancelled.
func (r *runner) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return r.deps.Checkpoints.Save(ctx, store.BackfillCheckpoint{
		Job: r.cfg.Job, Topic: r.cfg.Topic, FromBlock: int64(r.from), ToBlock: int64(r.to), NextBlock: int64(r.watermark()),
	})
}

// drain waits until every published block has its delivery report: without bound while the run goes on,
// for DrainTimeout once it was interrupted or failed, and not at all after a hard stop.
func (r *runner) drain(ctx, hard context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var deadline <-chan time.Time
	for r.inFlight.Load() > 0 {
		if deadline == nil {
			r.mu.Lock()
			failed := r.failure != nil
			r.mu.Unlock()
			if failed || ctx.Err() != nil {
				timer := time.NewTimer(r.cfg.DrainTimeout)
				defer timer.Stop()
				deadline = timer.C
			}
		}
		select {
		case <-deadline:
			return false
		case <-hard.Done():
			return r.inFlight.Load() == 0
		case <-t.C:
		}
	}
	return true
}

// permanentError is not retried.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// retry calls f with a per-attempt timeout until it succeeds, up to MaxAttempts, with the project's capped,
// jittered exponential backoff between attempts. It gives up at once when ctx is done or the error is
// permanent.
func retry[T any](r *runner, ctx context.Context, what string, f func(context.Context) (T, error)) (T, error) {
	policy := retrypkg.Policy{Initial: r.cfg.RetryBase, Max: r.cfg.RetryMax, Attempts: r.cfg.MaxAttempts}
	retryable := func(err error) bool {
		var pe permanentError
		return !errors.As(err, &pe)
	}
	onRetry := func(attempt int, wait time.Duration, err error) {
		r.log.Warn("request failed; retrying", "what", what, "attempt", attempt, "max_attempts", r.cfg.MaxAttempts,
			"retry_in", wait.Round(time.Millisecond).String(), "error", err)
	}
	attempts := 0
	v, err := retrypkg.DoValue(ctx, policy, retryable, onRetry, func(ctx context.Context) (T, error) {
		attempts++
		actx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		defer cancel()
		v, err := f(actx)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v: %w", r.cfg.RequestTimeout, err)
		}
		return v, err
	})
	switch {
	case err == nil:
		if attempts > 1 {
			r.log.Info("request succeeded after retries", "what", what, "attempts", attempts)
		}
		return v, nil
	case ctx.Err() != nil:
		return v, ctx.Err()
	case retryable(err):
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, err
}

// stopped turns an error into InterruptedError when ctx was cancelled.
func (r *runner) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.New("interrupted before the backfill started; nothing was published")
	}
	return err
}
