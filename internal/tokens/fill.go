package tokens

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/retry"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// FillConfig configures Fill.
type FillConfig struct {
	// Page is how many unread tokens are listed, read and published at a time (default 200).
	Page int
	// Attempts is how many times a failed read (transport errors, rate limits) is tried, with capped
	// exponential backoff, before Fill fails; 0 means until ctx is done.
	Attempts int
	// Progress, if not nil, is called after each page with the number of tokens published so far.
	Progress func(published int)
}

// FillResult says what a Fill did.
type FillResult struct {
	// Published is the number of token items Kafka acknowledged.
	Published int
	// Block is the block every token was read at.
	Block uint64
}

// Fill reads every token of token_transfers that no chain read describes yet, at the node's head, and
// publishes each as an ethereum-etl token item keyed by its address. It returns once Kafka has acknowledged
// every item; the tokens are stored when `chainsink run` consumes the topic. Tokens that were published but
// are not stored yet are read and published again by a Fill that runs before they are: harmless, the store
// keeps one row per address.
func Fill(ctx context.Context, db store.DB, r *Reader, pub backfill.Publisher, cfg FillConfig, logger *slog.Logger) (FillResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Page <= 0 {
		cfg.Page = 200
	}
	onRetry := func(attempt int, wait time.Duration, err error) {
		logger.Warn("token read failed, retrying", "attempt", attempt, "wait", wait, "error", err)
	}
	policy := retry.Policy{Attempts: cfg.Attempts}
	head, err := retry.DoValue(ctx, policy, nil, onRetry, r.Head)
	if err != nil {
		return FillResult{}, err
	}
	res := FillResult{Block: head}
	var acks acknowledgements
	var after []byte
	for {
		page, err := store.UnreadTokens(ctx, db, after, cfg.Page)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Address
		want := make([]Token, len(page))
		for i, u := range page {
			want[i] = Token{Address: common.BytesToAddress(u.Address), Standard: u.Standard}
		}
		got, err := retry.DoValue(ctx, policy, nil, onRetry, func(ctx context.Context) ([]chain.Token, error) {
			return r.Read(ctx, want, head)
		})
		if err != nil {
			return res, err
		}
		for _, t := range got {
			value, err := format.EncodeETLToken(t)
			if err != nil {
				return res, err
			}
			acks.add()
			if err := pub.Publish(ctx, []byte(common.BytesToAddress(t.Address).Hex()), value, acks.done); err != nil {
				acks.done(err)
				return res, acks.wait(err)
			}
		}
		if err := acks.wait(nil); err != nil {
			return res, err
		}
		res.Published += len(got)
		if cfg.Progress != nil {
			cfg.Progress(res.Published)
		}
	}
	logger.Info("tokens published", "tokens", res.Published, "block", head)
	return res, nil
}

// acknowledgements counts the deliveries still outstanding and keeps the first failure.
type acknowledgements struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (a *acknowledgements) add() { a.wg.Add(1) }

func (a *acknowledgements) done(err error) {
	if err != nil {
		a.mu.Lock()
		if a.err == nil {
			a.err = fmt.Errorf("publish token item: %w", err)
		}
		a.mu.Unlock()
	}
	a.wg.Done()
}

// wait waits for every delivery and returns cause, or else the first delivery failure.
func (a *acknowledgements) wait(cause error) error {
	a.wg.Wait()
	if cause != nil {
		return cause
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
