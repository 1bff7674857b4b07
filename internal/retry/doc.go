// Package retry is chainsink's one way to retry: capped exponential backoff with jitter, a predicate that says
// which errors are worth another try, and a hook before each wait where the caller logs and counts.
//
// Every retry loop goes through Do or DoValue so that they all back off, give up and stop the same way, and so
// that an error coming out of one tells its caller the same things:
//
//   - f succeeded: nil (and f's value).
//   - retryable said no: f's error, unchanged, so that errors.Is, errors.As and == on it work as if f had been
//     called directly.
//   - Policy.Attempts ran out: "giving up after N attempts: <last error>", wrapping the last error.
//   - ctx was done before the first attempt: ctx's error; f is not called, since it could only fail with it.
//   - ctx was done during an attempt or a wait: "<ctx error> after N attempts; last error: <last error>",
//     wrapping both, so that errors.Is(err, context.Canceled) (or DeadlineExceeded, or the cause given to
//     context.WithCancelCause) holds and the reason the loop was still retrying is not lost. A caller's own
//     classifier then sees the cancellation: store.IsTransient, for one, reports it as not worth a retry.
//
// The schedule comes from github.com/sethvargo/go-retry's backoffs (exponential, capped, jittered, bounded),
// which get the arithmetic right at the edges: doubling past the range of time.Duration, a cap below the first
// wait, jitter above 100%. Its Do is not used: interrupted, it returns only ctx's error and drops the last
// failure; out of retries, it returns the bare last error without the count; and it has no hook before a wait.
// Those three are what callers need, and the loop that provides them is short.
package retry
