package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	goretry "github.com/sethvargo/go-retry"
)

// Defaults for the zero fields of a Policy.
const (
	DefaultInitial = 100 * time.Millisecond
	DefaultMax     = 30 * time.Second
	DefaultJitter  = 25
)

// NoJitter as Policy.Jitter makes every wait exactly the backoff's, for callers (and tests) that need to
// predict them.
const NoJitter = -1

// Policy says how to retry: capped exponential backoff with jitter. The zero Policy retries until ctx is
// done, waiting 100ms, 200ms, 400ms, ... up to 30s, each ±25%.
//
// Wait n (counting from 1) is w = min(Initial·2^(n-1), Max) moved by a random whole percentage of at most
// Jitter: it lies in [w·(1-Jitter/100), w·(1+Jitter/100)], so no wait is longer than Max·(1+Jitter/100).
// Jitter is applied after the cap so that callers that have all reached the cap, as every worker does during a
// long Postgres outage, still spread out instead of reconnecting in lockstep.
type Policy struct {
	Initial  time.Duration // first wait; 0 or less means DefaultInitial
	Max      time.Duration // cap on one wait before jitter; 0 or less means DefaultMax; below Initial, every wait is Max
	Attempts int           // calls of f in all, the first one included; 0 or less means until ctx is done
	Jitter   int           // percent; 0 means DefaultJitter, NoJitter (any negative) none, above 100 is 100
}

// backoff returns a fresh schedule: go-retry's backoffs count the waits they have handed out, so one cannot be
// shared between loops.
func (p Policy) backoff() goretry.Backoff {
	initial, maxWait, jitter := p.Initial, p.Max, p.Jitter
	if initial <= 0 {
		initial = DefaultInitial
	}
	if maxWait <= 0 {
		maxWait = DefaultMax
	}
	switch {
	case jitter == 0:
		jitter = DefaultJitter
	case jitter < 0:
		jitter = 0
	}
	b := goretry.WithCappedDuration(maxWait, goretry.NewExponential(initial))
	if jitter > 0 {
		b = goretry.WithJitterPercent(uint64(jitter), b) // go-retry clamps it to 100
	}
	if p.Attempts > 0 {
		b = goretry.WithMaxRetries(uint64(p.Attempts-1), b)
	}
	return b
}

// Do calls f until it succeeds, returns an error that retryable says is not worth retrying, p.Attempts run out,
// or ctx is done; the package documentation lists what it returns in each case. A nil retryable retries every
// error.
//
// onRetry, if not nil, is called before each wait with the number of the attempt that just failed (from 1),
// the wait that follows and that attempt's error: callers log and count retries there. It is not called when
// Do is about to return instead of waiting.
func Do(ctx context.Context, p Policy, retryable func(error) bool, onRetry func(attempt int, wait time.Duration, err error),
	f func(ctx context.Context) error) error {
	_, err := DoValue(ctx, p, retryable, onRetry, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f(ctx)
	})
	return err
}

// DoValue is Do for an f that returns a value: the value of the call that succeeded, or T's zero value.
func DoValue[T any](ctx context.Context, p Policy, retryable func(error) bool,
	onRetry func(attempt int, wait time.Duration, err error), f func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, ctxError(ctx)
	}
	b := p.backoff()
	for attempt := 1; ; attempt++ {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		if retryable != nil && !retryable(err) {
			return zero, err
		}
		// Checked before asking for a wait: an attempt that failed because ctx ended is reported as
		// interrupted, not as one more retry (onRetry would log a wait that never happens) nor as giving up.
		if ctx.Err() != nil {
			return zero, interrupted(ctx, attempt, err)
		}
		wait, stop := b.Next()
		if stop {
			return zero, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, interrupted(ctx, attempt, err)
		case <-t.C:
		}
		// When the timer and ctx fire together select picks either; ctx wins so that no attempt starts late.
		if ctx.Err() != nil {
			return zero, interrupted(ctx, attempt, err)
		}
	}
}

// interrupted wraps both ctx's error and the last failure: the first says why the loop stopped, the second why
// it was still looping.
func interrupted(ctx context.Context, attempts int, last error) error {
	return fmt.Errorf("%w after %d attempts; last error: %w", ctxError(ctx), attempts, last)
}

// ctxError is ctx.Err() with the cause given to context.WithCancelCause (or WithTimeoutCause) added, so that
// errors.Is finds both context.Canceled and the caller's own reason for stopping.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
