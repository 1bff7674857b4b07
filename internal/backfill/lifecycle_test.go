package backfill_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/backfill"
)

// recordingPublisher notes what it publishes and which delivery reports it passes on (before passing them).
type recordingPublisher struct {
	inner     backfill.Publisher
	mu        sync.Mutex
	published map[uint64]int
	delivered map[uint64]int
}

func newRecordingPublisher(inner backfill.Publisher) *recordingPublisher {
	return &recordingPublisher{inner: inner, published: map[uint64]int{}, delivered: map[uint64]int{}}
}

func (p *recordingPublisher) Publish(ctx context.Context, key, value []byte, done func(error)) error {
	n, err := strconv.ParseUint(string(key), 10, 64)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.published[n]++
	p.mu.Unlock()
	return p.inner.Publish(ctx, key, value, func(err error) {
		if err == nil {
			p.mu.Lock()
			p.delivered[n]++
			p.mu.Unlock()
		}
		done(err)
	})
}

// snapshot returns copies of what was published and delivered so far.
func (p *recordingPublisher) snapshot() (published, delivered map[uint64]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	published, delivered = map[uint64]int{}, map[uint64]int{}
	for k, v := range p.published {
		published[k] = v
	}
	for k, v := range p.delivered {
		delivered[k] = v
	}
	return published, delivered
}

// withholdingPublisher acknowledges every block at once except hold, whose report it never gives.
type withholdingPublisher struct {
	hold  uint64
	held  chan struct{} // closed when hold is published
	mu    sync.Mutex
	saved func(error)
}

func (p *withholdingPublisher) Publish(_ context.Context, key, _ []byte, done func(error)) error {
	if string(key) == strconv.FormatUint(p.hold, 10) {
		p.mu.Lock()
		p.saved = done
		p.mu.Unlock()
		close(p.held)
		return nil
	}
	done(nil)
	return nil
}

// signalAt closes reached once n deliveries were reported.
type signalAt struct {
	n       int64
	count   atomic.Int64
	reached chan struct{}
}

func newSignalAt(n int64) *signalAt { return &signalAt{n: n, reached: make(chan struct{})} }

func (p *signalAt) Start(int64) {}
func (p *signalAt) Finish()     {}
func (p *signalAt) Add(n int) {
	if p.count.Add(int64(n)) == p.n {
		close(p.reached)
	}
}

// countingFetcher counts the calls of a fakeFetcher.
type countingFetcher struct {
	fakeFetcher
	calls atomic.Int64
}

func (f *countingFetcher) Head(ctx context.Context) (uint64, error) {
	f.calls.Add(1)
	return f.fakeFetcher.Head(ctx)
}

func (f *countingFetcher) Fetch(ctx context.Context, from, to uint64) ([]backfill.Block, error) {
	f.calls.Add(1)
	return f.fakeFetcher.Fetch(ctx, from, to)
}

// hangingFetcher never answers: a job on it runs until it is stopped.
type hangingFetcher struct{}

func (hangingFetcher) Head(ctx context.Context) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (hangingFetcher) Fetch(ctx context.Context, _, _ uint64) ([]backfill.Block, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func waitDone(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not done after %v", what, timeout)
	}
}

func asInterrupted(t *testing.T, err error) *backfill.InterruptedError {
	t.Helper()
	var ie *backfill.InterruptedError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want *InterruptedError", err)
	}
	return ie
}

// TestBackfillLifecycleStopMidRun: a graceful Stop in the middle of a range stops publishing, waits for every
// outstanding delivery, checkpoints the watermark it returns and reports the interruption.
func TestBackfillLifecycleStopMidRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shuffler := &shufflingPublisher{}
	go shuffler.flusher(ctx)
	pub := newRecordingPublisher(shuffler)
	cps := &memCheckpoints{}
	progress := newSignalAt(200)
	cfg := backfill.Config{Topic: "t", From: 1000, To: backfill.Target{Number: 1_000_000}, BatchSize: 5, Concurrency: 4,
		CheckpointInterval: time.Hour, // only the checkpoint that Stop writes counts
		DrainTimeout:       10 * time.Second}
	j, err := backfill.New(cfg, backfill.Deps{Fetcher: fakeFetcher{head: 2_000_000}, Publisher: pub, Checkpoints: cps,
		Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = j.Stop(context.Background()) })
	waitDone(t, progress.reached, 5*time.Second, "200 deliveries")

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	res, err := j.Stop(stopCtx)
	published, delivered := pub.snapshot()
	ie := asInterrupted(t, err)
	if ie.Next != res.Next {
		t.Fatalf("InterruptedError.Next = %d, Result.Next = %d", ie.Next, res.Next)
	}
	if res.Next <= cfg.From || res.Next > cfg.To.Number {
		t.Fatalf("Result.Next = %d, want within (%d, %d]", res.Next, cfg.From, cfg.To.Number)
	}
	select {
	case <-j.Done():
	default:
		t.Fatal("Done is not closed after Stop returned")
	}

	cp, ok, _ := cps.Load(context.Background(), cfg.JobName())
	if !ok || uint64(cp.NextBlock) != res.Next || cp.FromBlock != int64(cfg.From) || cp.ToBlock != int64(cfg.To.Number) {
		t.Fatalf("checkpoint %+v (saved: %v), want next block %d", cp, ok, res.Next)
	}
	for n := cfg.From; n < res.Next; n++ {
		if delivered[n] != 1 {
			t.Fatalf("block %d below the watermark %d was delivered %d times", n, res.Next, delivered[n])
		}
	}
	// The graceful stop drained: every block published got its report before Stop returned.
	for n := range published {
		if delivered[n] != published[n] {
			t.Fatalf("block %d: published %d times, delivered %d times when Stop returned", n, published[n], delivered[n])
		}
	}
	if res.Delivered != int64(len(delivered)) {
		t.Fatalf("Result.Delivered = %d, %d blocks delivered", res.Delivered, len(delivered))
	}
	t.Logf("stopped at block %d after %d deliveries", res.Next, res.Delivered)

	// Stop is idempotent and agrees with Wait.
	res2, err2 := j.Stop(context.Background())
	res3, err3 := j.Wait()
	if res2 != res || err2 != err || res3 != res || err3 != err {
		t.Fatalf("second Stop %+v, %v and Wait %+v, %v differ from the first Stop %+v, %v", res2, err2, res3, err3, res, err)
	}
	if err := j.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

// TestBackfillLifecycleStopBeforeStart: Stop before Start returns the zero Result and no error, touches
// nothing, ends the job (Done, Wait) and makes Start fail.
func TestBackfillLifecycleStopBeforeStart(t *testing.T) {
	t.Parallel()
	f := &countingFetcher{fakeFetcher: fakeFetcher{head: 100}}
	cps := &memCheckpoints{}
	pub := newRecordingPublisher(&shufflingPublisher{})
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 10}}
	j, err := backfill.New(cfg, backfill.Deps{Fetcher: f, Publisher: pub, Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := j.Stop(ctx)
	if res != (backfill.Result{}) || err != nil {
		t.Fatalf("Stop before Start = %+v, %v; want the zero Result and nil", res, err)
	}
	if err := j.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	waitDone(t, j.Done(), time.Second, "job stopped before Start")
	if res, err := j.Wait(); res != (backfill.Result{}) || err != nil {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	if res, err := j.Stop(ctx); res != (backfill.Result{}) || err != nil {
		t.Fatalf("second Stop = %+v, %v", res, err)
	}
	published, _ := pub.snapshot()
	cps.mu.Lock()
	saves := cps.saves
	cps.mu.Unlock()
	if n := f.calls.Load(); n != 0 || len(published) != 0 || saves != 0 {
		t.Fatalf("a job stopped before Start did something: %d node calls, %d published, %d checkpoints", n,
			len(published), saves)
	}
}

// TestBackfillLifecycleStopDuringStart: a Stop racing a Start either keeps the job from running or stops the
// job it started, gracefully: it never misses it and falls back to the hard stop when its ctx ends.
func TestBackfillLifecycleStopDuringStart(t *testing.T) {
	t.Parallel()
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 10}}
	for i := range 20 {
		j, err := backfill.New(cfg, backfill.Deps{Fetcher: hangingFetcher{}, Publisher: &shufflingPublisher{},
			Checkpoints: &memCheckpoints{}})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan error, 1)
		go func() { started <- j.Start(context.Background()) }()
		for range i % 5 { // vary which of the two comes first
			runtime.Gosched()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		began := time.Now()
		_, _ = j.Stop(ctx)
		if took := time.Since(began); took > time.Second {
			t.Fatalf("round %d: Stop took %v: it missed the job that Start started (Start: %v)", i, took, <-started)
		}
		cancel()
		<-started
	}
}

// TestBackfillLifecycleHardStop: cancelling Start's ctx while a delivery report is withheld ends the job at
// once, without the DrainTimeout wait, with the interruption reported and the checkpoint at the watermark.
func TestBackfillLifecycleHardStop(t *testing.T) {
	t.Parallel()
	pub := &withholdingPublisher{hold: 5, held: make(chan struct{})}
	cps := &memCheckpoints{}
	progress := newSignalAt(50) // blocks 0..50 but 5
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 50}, BatchSize: 5, Concurrency: 2,
		CheckpointInterval: time.Hour, DrainTimeout: time.Minute}
	j, err := backfill.New(cfg, backfill.Deps{Fetcher: fakeFetcher{head: 100}, Publisher: pub, Checkpoints: cps, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	if err := j.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, pub.held, 5*time.Second, "block 5 to be published")
	waitDone(t, progress.reached, 5*time.Second, "every other block to be delivered")
	select {
	case <-j.Done():
		t.Fatal("the job ended with block 5's delivery outstanding")
	default:
	}

	hardStop()
	waitDone(t, j.Done(), 3*time.Second, "job after a hard stop (it must not wait DrainTimeout)")
	res, err := j.Wait()
	if ie := asInterrupted(t, err); ie.Next != 5 || res.Next != 5 {
		t.Fatalf("interrupted at %d, Result.Next %d; want 5", ie.Next, res.Next)
	}
	if cp, ok, _ := cps.Load(context.Background(), cfg.JobName()); !ok || cp.NextBlock != 5 {
		t.Fatalf("checkpoint %+v (saved: %v), want next block 5", cp, ok)
	}
	// Stop after the end returns the same.
	if res2, err2 := j.Stop(context.Background()); res2 != res || err2 != err {
		t.Fatalf("Stop after a hard stop = %+v, %v; want %+v, %v", res2, err2, res, err)
	}
}

// TestBackfillLifecycleStopTimeout: a graceful Stop waits for the withheld delivery until its own ctx ends
// (DrainTimeout is longer), then stops hard and returns at once.
func TestBackfillLifecycleStopTimeout(t *testing.T) {
	t.Parallel()
	pub := &withholdingPublisher{hold: 5, held: make(chan struct{})}
	cps := &memCheckpoints{}
	progress := newSignalAt(50)
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 50}, BatchSize: 5, Concurrency: 2,
		CheckpointInterval: time.Hour, DrainTimeout: time.Minute}
	j, err := backfill.New(cfg, backfill.Deps{Fetcher: fakeFetcher{head: 100}, Publisher: pub, Checkpoints: cps, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, progress.reached, 5*time.Second, "every block but 5 to be delivered")

	const grace = 200 * time.Millisecond
	began := time.Now() // before the ctx, whose deadline is then no earlier than began+grace
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	type result struct {
		res backfill.Result
		err error
	}
	stopped := make(chan result, 1)
	go func() {
		res, err := j.Stop(ctx)
		stopped <- result{res, err}
	}()
	var r result
	select {
	case r = <-stopped:
	case <-time.After(grace + 3*time.Second):
		t.Fatal("Stop has not returned 3s after its ctx ended")
	}
	if took := time.Since(began); took < grace {
		t.Fatalf("Stop returned after %v, before its ctx ended, with a delivery outstanding", took)
	}
	if ie := asInterrupted(t, r.err); ie.Next != 5 || r.res.Next != 5 {
		t.Fatalf("interrupted at %d, Result.Next %d; want 5", ie.Next, r.res.Next)
	}
	if cp, ok, _ := cps.Load(context.Background(), cfg.JobName()); !ok || cp.NextBlock != 5 {
		t.Fatalf("checkpoint %+v (saved: %v), want next block 5", cp, ok)
	}
}

// TestBackfillLifecycleStopDrainIsBounded: a graceful Stop with all the time in the world still gives up on a
// withheld delivery after DrainTimeout.
func TestBackfillLifecycleStopDrainIsBounded(t *testing.T) {
	t.Parallel()
	pub := &withholdingPublisher{hold: 5, held: make(chan struct{})}
	cps := &memCheckpoints{}
	progress := newSignalAt(50)
	const drain = 200 * time.Millisecond
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 50}, BatchSize: 5, Concurrency: 2,
		CheckpointInterval: time.Hour, DrainTimeout: drain}
	j, err := backfill.New(cfg, backfill.Deps{Fetcher: fakeFetcher{head: 100}, Publisher: pub, Checkpoints: cps, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, progress.reached, 5*time.Second, "every block but 5 to be delivered")

	began := time.Now()
	go func() { _, _ = j.Stop(context.Background()) }()
	waitDone(t, j.Done(), drain+3*time.Second, "job after a graceful Stop with a delivery withheld")
	if took := time.Since(began); took < drain {
		t.Fatalf("the job ended %v after Stop, before DrainTimeout (%v), with a delivery outstanding", took, drain)
	}
	res, err := j.Wait()
	if ie := asInterrupted(t, err); ie.Next != 5 || res.Next != 5 {
		t.Fatalf("interrupted at %d, Result.Next %d; want 5", ie.Next, res.Next)
	}
	if cp, ok, _ := cps.Load(context.Background(), cfg.JobName()); !ok || cp.NextBlock != 5 {
		t.Fatalf("checkpoint %+v (saved: %v), want next block 5", cp, ok)
	}
}

// TestBackfillLifecycleStopBeforeStartExpiredCtx: Stop before Start with a ctx that has already ended is as
// harmless as with a live one (there is nothing to stop hard).
func TestBackfillLifecycleStopBeforeStartExpiredCtx(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := backfill.Config{Topic: "t", From: 0, To: backfill.Target{Number: 10}}
	for i := range 50 { // Stop chooses between two ready channels at random
		j, err := backfill.New(cfg, backfill.Deps{Fetcher: hangingFetcher{}, Publisher: &shufflingPublisher{},
			Checkpoints: &memCheckpoints{}})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := j.Stop(ctx); res != (backfill.Result{}) || err != nil {
			t.Fatalf("round %d: Stop before Start with an expired ctx = %+v, %v", i, res, err)
		}
		if err := j.Start(context.Background()); err == nil {
			t.Fatalf("round %d: Start after Stop succeeded", i)
		}
	}
}
