package retry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/retry"
)

var (
	errFlaky = errors.New("flaky")
	errFatal = errors.New("fatal")
)

func isFlaky(err error) bool { return errors.Is(err, errFlaky) }

// script returns an f that fails with errs in turn and then succeeds, and a pointer to how often it ran.
func script(errs ...error) (func(context.Context) error, *int) {
	calls := new(int)
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}, calls
}

// retryLog records what onRetry was told.
type retryLog struct {
	attempts []int
	waits    []time.Duration
	errs     []error
}

func (l *retryLog) onRetry(attempt int, wait time.Duration, err error) {
	l.attempts = append(l.attempts, attempt)
	l.waits = append(l.waits, wait)
	l.errs = append(l.errs, err)
}

func TestDo(t *testing.T) {
	t.Parallel()
	fast := func(attempts int) retry.Policy {
		return retry.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: attempts}
	}
	for _, tc := range []struct {
		name      string
		policy    retry.Policy
		retryable func(error) bool
		errs      []error
		wantCalls int
		wantErr   error  // nil: want success; the error Do returns must be (or wrap) this one
		wantSame  bool   // the error is returned as f returned it, not wrapped
		wantMsg   string // exact message, when not empty
	}{
		{name: "first try succeeds", policy: fast(0), retryable: isFlaky, wantCalls: 1},
		{name: "succeeds after transient failures", policy: fast(0), retryable: isFlaky,
			errs: []error{errFlaky, errFlaky, errFlaky}, wantCalls: 4},
		{name: "succeeds on the last attempt", policy: fast(3), retryable: isFlaky,
			errs: []error{errFlaky, errFlaky}, wantCalls: 3},
		{name: "permanent error stops at once", policy: fast(0), retryable: isFlaky,
			errs: []error{errFatal}, wantCalls: 1, wantErr: errFatal, wantSame: true},
		{name: "permanent error after transient ones", policy: fast(0), retryable: isFlaky,
			errs: []error{errFlaky, errFlaky, errFatal, errFlaky}, wantCalls: 3, wantErr: errFatal, wantSame: true},
		{name: "attempts run out", policy: fast(3), retryable: isFlaky,
			errs: []error{errFlaky, errFlaky, errFlaky, errFlaky}, wantCalls: 3, wantErr: errFlaky,
			wantMsg: "giving up after 3 attempts: flaky"},
		{name: "one attempt never retries", policy: fast(1), retryable: isFlaky,
			errs: []error{errFlaky}, wantCalls: 1, wantErr: errFlaky, wantMsg: "giving up after 1 attempts: flaky"},
		{name: "nil retryable retries every error", policy: fast(0), retryable: nil,
			errs: []error{errFatal, errFlaky}, wantCalls: 3},
		{name: "negative attempts means no limit", policy: fast(-1), retryable: isFlaky,
			errs: []error{errFlaky, errFlaky}, wantCalls: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, calls := script(tc.errs...)
			var log retryLog
			err := retry.Do(context.Background(), tc.policy, tc.retryable, log.onRetry, f)
			if *calls != tc.wantCalls {
				t.Errorf("f ran %d times, want %d", *calls, tc.wantCalls)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want it to wrap %v", err, tc.wantErr)
			case tc.wantSame && err != tc.wantErr:
				t.Fatalf("err = %#v, want %v itself", err, tc.wantErr)
			case tc.wantMsg != "" && err.Error() != tc.wantMsg:
				t.Fatalf("err = %q, want %q", err, tc.wantMsg)
			}
			// onRetry is told about every failure that is followed by another attempt, and no other.
			wantRetries := tc.wantCalls - 1
			if len(log.attempts) != wantRetries {
				t.Fatalf("onRetry called %d times (%v), want %d", len(log.attempts), log.attempts, wantRetries)
			}
			for i := range wantRetries {
				if log.attempts[i] != i+1 || log.errs[i] != tc.errs[i] {
					t.Errorf("onRetry #%d got attempt %d, err %v; want %d, %v", i, log.attempts[i], log.errs[i], i+1, tc.errs[i])
				}
			}
		})
	}
}

func TestWaitsGrowAndAreCapped(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	// Without jitter the waits double from Initial up to Max and stay there.
	want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms, 8 * ms}
	for _, tc := range []struct {
		name   string
		jitter int
		pct    int // the widest a wait may stray from want, in percent
	}{
		{"no jitter", retry.NoJitter, 0},
		{"default jitter", 0, retry.DefaultJitter},
		{"10 percent", 10, 10},
		{"100 percent", 100, 100},
		{"above 100 is 100", 250, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := retry.Policy{Initial: 1 * ms, Max: 8 * ms, Attempts: len(want) + 1, Jitter: tc.jitter}
			var log retryLog
			err := retry.Do(context.Background(), p, nil, log.onRetry, func(context.Context) error { return errFlaky })
			if !errors.Is(err, errFlaky) {
				t.Fatalf("err = %v", err)
			}
			if len(log.waits) != len(want) {
				t.Fatalf("waits = %v, want %d of them", log.waits, len(want))
			}
			for i, w := range log.waits {
				lo := want[i] * time.Duration(100-tc.pct) / 100
				hi := want[i] * time.Duration(100+tc.pct) / 100
				if w < lo || w > hi {
					t.Errorf("wait %d = %v, want within [%v, %v]", i+1, w, lo, hi)
				}
				if limit := p.Max * time.Duration(100+tc.pct) / 100; w > limit {
					t.Errorf("wait %d = %v exceeds Max·(1+jitter) = %v", i+1, w, limit)
				}
			}
			// Up to the cap, ±25% is narrow enough that each wait is longer than the one before.
			if tc.pct <= 25 {
				for i := 1; i < 4; i++ {
					if log.waits[i] <= log.waits[i-1] {
						t.Errorf("waits %v do not grow before the cap", log.waits)
					}
				}
			}
		})
	}
}

// firstWait returns the wait p schedules after the first failure, without waiting it: onRetry cancels ctx, so
// Do returns as soon as the wait starts.
func firstWait(t *testing.T, p retry.Policy) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wait time.Duration
	err := retry.Do(ctx, p, nil, func(_ int, w time.Duration, _ error) { wait = w; cancel() },
		func(context.Context) error { return errFlaky })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancellation", err)
	}
	return wait
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	within := func(d, w time.Duration, pct int) bool {
		return d >= w*time.Duration(100-pct)/100 && d <= w*time.Duration(100+pct)/100
	}
	for _, tc := range []struct {
		name   string
		policy retry.Policy
		want   time.Duration
		pct    int
	}{
		{"zero policy waits 100ms ±25%", retry.Policy{}, 100 * time.Millisecond, 25},
		{"negative durations are the defaults", retry.Policy{Initial: -1, Max: -1, Jitter: retry.NoJitter}, 100 * time.Millisecond, 0},
		{"default Max is 30s", retry.Policy{Initial: time.Hour, Jitter: retry.NoJitter}, 30 * time.Second, 0},
		{"Initial above Max waits Max", retry.Policy{Initial: time.Hour, Max: time.Minute}, time.Minute, 25},
	} {
		if got := firstWait(t, tc.policy); !within(got, tc.want, tc.pct) {
			t.Errorf("%s: first wait = %v, want %v ±%d%%", tc.name, got, tc.want, tc.pct)
		}
	}
}

func TestContextDoneDuringWait(t *testing.T) {
	t.Parallel()
	errStop := errors.New("shutting down")
	for _, tc := range []struct {
		name string
		ctx  func() (ctx context.Context, stop func(), byItself bool) // byItself: ctx ends without stop
		want []error
	}{
		{"cancel", func() (context.Context, func(), bool) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel, false
		}, []error{context.Canceled}},
		{"cancel with cause", func() (context.Context, func(), bool) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(errStop) }, false
		}, []error{context.Canceled, errStop}},
		{"deadline", func() (context.Context, func(), bool) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			return ctx, cancel, true
		}, []error{context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, stop, byItself := tc.ctx()
			defer stop()
			f, calls := script(errFlaky, errFlaky, errFlaky)
			onRetry := func(int, time.Duration, error) {
				if !byItself {
					time.AfterFunc(2*time.Millisecond, stop)
				}
			}
			start := time.Now()
			// The wait is an hour; ctx ends a few milliseconds into it.
			err := retry.Do(ctx, retry.Policy{Initial: time.Hour}, isFlaky, onRetry, f)
			if took := time.Since(start); took > time.Second {
				t.Errorf("Do returned %v after ctx ended, want promptly", took)
			}
			if *calls != 1 {
				t.Errorf("f ran %d times, want 1", *calls)
			}
			for _, w := range append(tc.want, errFlaky) {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want it to wrap %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), "after 1 attempts; last error: flaky") {
				t.Errorf("err = %q, want it to say how many attempts and the last error", err)
			}
		})
	}
}

func TestContextDoneDuringAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		err      error
		wantSame bool // a permanent error is returned as it is, even though ctx is done
	}{
		{"transient error", errFlaky, false},
		{"permanent error", errFatal, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			var log retryLog
			err := retry.Do(ctx, retry.Policy{Initial: time.Hour}, isFlaky, log.onRetry, func(context.Context) error {
				calls++
				cancel()
				return tc.err
			})
			if calls != 1 || len(log.attempts) != 0 {
				t.Errorf("f ran %d times and onRetry %d times, want 1 and 0", calls, len(log.attempts))
			}
			if tc.wantSame {
				if err != tc.err {
					t.Errorf("err = %v, want %v itself", err, tc.err)
				}
				return
			}
			if !errors.Is(err, context.Canceled) || !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want it to wrap context.Canceled and %v", err, tc.err)
			}
		})
	}
}

func TestContextDoneBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, calls := script()
	err := retry.Do(ctx, retry.Policy{}, nil, nil, f)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if *calls != 0 {
		t.Errorf("f ran %d times, want 0", *calls)
	}
}

func TestDoValue(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Initial: time.Millisecond, Attempts: 3}
	calls := 0
	v, err := retry.DoValue(context.Background(), p, isFlaky, nil, func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "partial", errFlaky
		}
		return "done", nil
	})
	if err != nil || v != "done" || calls != 3 {
		t.Errorf("DoValue = %q, %v after %d calls; want \"done\", nil after 3", v, err, calls)
	}

	// A failed DoValue returns T's zero value, not what the last attempt returned alongside its error.
	v, err = retry.DoValue(context.Background(), p, isFlaky, nil, func(context.Context) (string, error) {
		return "partial", errFatal
	})
	if v != "" || err != errFatal {
		t.Errorf("DoValue = %q, %v; want \"\", %v", v, err, errFatal)
	}
}
