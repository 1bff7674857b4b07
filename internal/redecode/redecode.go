package redecode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/retry"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Config says what to re-derive.
type Config struct {
	// From and To are the blocks, inclusive.
	From, To uint64
	// ABIs, when not empty, limits the events and calls replaced to these ABIs (see store.ReplaceDerived).
	ABIs []string
	// BatchBlocks is the blocks per transaction. Default 1000.
	BatchBlocks uint64
	// MaxAttempts is the attempts per batch on transient errors. Default 5.
	MaxAttempts int
	// Typed are the typed tables (and the children registry) replaced too; Discovery gates the factory
	// sets' rows. See store.DeriveOptions.
	Typed     chain.Schema
	Discovery *chain.Discovery
	// TypedOnly leaves token_transfers, events and calls alone (but see UntypedEvents).
	TypedOnly bool
	// Untyped keeps the events and calls the typed tables hold out of events and calls (the configuration's
	// `events_table: untyped` and `calls_table: untyped`); with TypedOnly, those stored are removed.
	Untyped store.Untyped
	// Progress, when set, is told the blocks to do and each batch done (a terminal's progress bar).
	Progress Progress
}

// Progress is told how many blocks a run has to do and the blocks of each batch done.
type Progress interface {
	Start(total int64)
	Add(n int)
	Finish()
}

func (c Config) withDefaults() Config {
	if c.BatchBlocks == 0 {
		c.BatchBlocks = 1000
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	return c
}

// Validate reports a range or limit that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.From > c.To {
		errs = append(errs, fmt.Errorf("--from %d is above --to %d", c.From, c.To))
	}
	if c.To > math.MaxInt64 {
		errs = append(errs, fmt.Errorf("--to %d: block numbers are stored as bigint, at most %d", c.To, int64(math.MaxInt64)))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, errors.New("--max-attempts must be at least 1"))
	}
	return errors.Join(errs...)
}

// Result sums what every batch changed.
type Result struct {
	store.DerivedResult
	Elapsed time.Duration
}

// Run re-derives cfg's range batch by batch with dec. On error, the message says which blocks are done and
// where to resume.
func Run(ctx context.Context, db store.DB, dec *decode.Decoder, cfg Config, logger *slog.Logger) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	total := cfg.To - cfg.From + 1
	start := time.Now()
	if cfg.Progress != nil {
		cfg.Progress.Start(int64(total))
		defer cfg.Progress.Finish()
	}
	sum := Result{DerivedResult: store.DerivedResult{Deleted: chain.Counts{}, Written: chain.Counts{}}}
	for lo := cfg.From; ; {
		hi := lo + cfg.BatchBlocks - 1
		if hi < lo || hi > cfg.To { // hi < lo: overflow near the top of uint64
			hi = cfg.To
		}
		res, err := batch(ctx, db, dec, cfg, lo, hi, logger)
		if err != nil {
			done := "none is done"
			if lo > cfg.From {
				done = fmt.Sprintf("blocks %d to %d are done; resume with --from %d", cfg.From, lo-1, lo)
			}
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("redecode blocks [%d,%d] (%s): %w", lo, hi, done, err)
		}
		sum.Logs += res.Logs
		sum.Transactions += res.Transactions
		sum.Kept += res.Kept
		for t, n := range res.Deleted {
			sum.Deleted[t] += n
		}
		for t, n := range res.Written {
			sum.Written[t] += n
		}
		done := hi - cfg.From + 1
		elapsed := time.Since(start)
		if cfg.Progress != nil {
			cfg.Progress.Add(int(hi - lo + 1))
		}
		logger.Info("redecoded batch", "from", lo, "to", hi, "done_blocks", done, "total_blocks", total,
			"percent", math.Round(1000*float64(done)/float64(total))/10,
			"blocks_per_second", int64(float64(done)/max(elapsed.Seconds(), 1e-9)),
			"logs", res.Logs, "transactions", res.Transactions, "token_transfers", res.Written["token_transfers"],
			"events", res.Written["events"], "calls", res.Written["calls"], "kept", res.Kept)
		if hi == cfg.To {
			break
		}
		lo = hi + 1
	}
	if cfg.Discovery != nil {
		// The factory children the range registered: their rows above it, which the live gate dropped
		// while they were not registered yet (store.DeriveChildrenAbove).
		policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Attempts: cfg.MaxAttempts}
		counts, err := retry.DoValue(ctx, policy, store.IsTransient, nil, func(ctx context.Context) (chain.Counts, error) {
			return store.DeriveChildrenAbove(ctx, db, cfg.Typed, cfg.Discovery, cfg.Untyped, cfg.From, cfg.To)
		})
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("redecode blocks [%d,%d] is done, but not the rows of its factory children above %d "+
				"(run the same command again): %w", cfg.From, cfg.To, cfg.To, err)
		}
		var n int64
		for t, c := range counts {
			sum.Written[t] += c
			n += c
		}
		logger.Info("derived the rows of the range's factory children above it", "above", cfg.To, "rows", n)
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// batch re-derives one batch, retrying transient errors: the transaction either committed or left nothing, so
// running it again is safe.
func batch(ctx context.Context, db store.DB, dec *decode.Decoder, cfg Config, lo, hi uint64, logger *slog.Logger) (store.DerivedResult, error) {
	policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Attempts: cfg.MaxAttempts}
	onRetry := func(attempt int, wait time.Duration, err error) {
		logger.Warn("redecode batch failed; retrying", "from", lo, "to", hi, "attempt", attempt, "error", err,
			"retry_in", wait)
	}
	derive := dec.Enrich
	if cfg.TypedOnly {
		derive = dec.DeriveTyped // the rest would be decoded only to be dropped
	}
	return retry.DoValue(ctx, policy, store.IsTransient, onRetry, func(ctx context.Context) (store.DerivedResult, error) {
		return store.ReplaceDerivedWith(ctx, db, lo, hi, store.DeriveOptions{ABIs: cfg.ABIs, Typed: cfg.Typed,
			TypedOnly: cfg.TypedOnly, Discovery: cfg.Discovery, Untyped: cfg.Untyped}, derive)
	})
}
