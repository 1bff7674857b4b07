package follow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Config is what a follower does.
type Config struct {
	// Job names the follower's kept hashes; default "follow:<Topic>".
	Job string
	// Topic receives the bundles.
	Topic string
	// From is the first height a follower with no kept hashes publishes.
	From uint64
	// Confirmations: only blocks this deep below the head are published. 0 publishes the head at once and
	// relies on reorg handling; K > 0 publishes K blocks later and makes reorgs shallower than K invisible.
	Confirmations uint64
	// PollInterval is how often the head is asked for when the follower is caught up. Default 1s.
	PollInterval time.Duration
	// BatchSize is how many blocks one JSON-RPC batch request fetches while catching up. Default 10.
	BatchSize int
	// KeepHashes is how many of the last published hashes are kept: the deepest reorg the follower can
	// handle. Default 128.
	KeepHashes int
	// RetryBase bounds the wait after a failed step (node or broker down); it doubles up to a minute.
	// Default 1s.
	RetryBase time.Duration
}

func (c Config) withDefaults() Config {
	if c.Job == "" {
		c.Job = "follow:" + c.Topic
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10
	}
	if c.KeepHashes <= 0 {
		c.KeepHashes = 128
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	return c
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("a topic is required"))
	}
	if c.KeepHashes < 0 || c.BatchSize < 0 {
		errs = append(errs, errors.New("--keep-hashes and --batch-size must not be negative"))
	}
	return errors.Join(errs...)
}

// Node is what the follower asks of the chain; *backfill.RPCFetcher is one.
type Node interface {
	Head(ctx context.Context) (uint64, error)
	Fetch(ctx context.Context, from, to uint64) ([]backfill.Block, error)
	BlockHashes(ctx context.Context, numbers []uint64) ([][]byte, error)
}

// HeadNotifier is a Node that can push new heads (over ws or IPC); *backfill.RPCFetcher is one. The
// follower then steps as soon as a block arrives, and polls every PollInterval only as a fallback.
// NotifyHeads blocks, making a non-blocking send on wake per new head, until ctx ends (nil) or the
// subscription fails; backfill.ErrNoNotifications means the transport cannot push at all.
type HeadNotifier interface {
	NotifyHeads(ctx context.Context, wake chan<- struct{}) error
}

// Metrics is what the follower reports.
type Metrics interface {
	Head(n uint64)
	Published(n uint64)
	Reorg(depth uint64)
}

type nopMetrics struct{}

func (nopMetrics) Head(uint64)      {}
func (nopMetrics) Published(uint64) {}
func (nopMetrics) Reorg(uint64)     {}

// Follower publishes the chain: Start and Stop it (or call Run once).
type Follower struct {
	cfg     Config
	node    Node
	pub     backfill.Publisher
	db      store.DB
	metrics Metrics
	log     *slog.Logger
	tokens  backfill.TokenSink

	kept []store.StoredBlockHash // ascending; what Postgres holds

	joined   atomic.Bool  // the node has answered once
	lastTurn atomic.Int64 // unix nanos of the last loop turn
	failing  atomic.Int64 // unix nanos when the current run of failures began, 0 when none

	// The lifecycle of Start and Stop.
	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	done                chan struct{}
	err                 error // Run's result, set before done closes
}

// New prepares a follower; nothing is read until Start (or Run).
func New(cfg Config, node Node, pub backfill.Publisher, db store.DB, m Metrics, log *slog.Logger) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = nopMetrics{}
	}
	return &Follower{cfg: cfg.withDefaults(), node: node, pub: pub, db: db, metrics: m, log: log,
		done: make(chan struct{})}
}

// WithTokens makes f show every batch's blocks to sink before it publishes them (see backfill.TokenSink).
// Call it before Start.
func (f *Follower) WithTokens(sink backfill.TokenSink) *Follower {
	f.tokens = sink
	return f
}

// Start runs the follower in the background until Stop, ctx's end, or an error retrying cannot fix (Done
// closes, Err says which). Calls after the first do nothing.
func (f *Follower) Start(ctx context.Context) error {
	f.startOnce.Do(func() {
		var runCtx context.Context
		runCtx, f.cancel = context.WithCancel(ctx)
		go func() {
			defer close(f.done)
			f.err = f.Run(runCtx)
		}()
	})
	return nil
}

// Stop ends the follower and waits for it, at most until ctx ends. What was published and acknowledged is
// kept in Postgres as it goes, so there is nothing to flush: a step in flight is abandoned and redone by the
// next start. Safe to call more than once, and before Start.
func (f *Follower) Stop(ctx context.Context) error {
	f.startOnce.Do(func() { close(f.done) }) // never started: a later Start does nothing
	f.stopOnce.Do(func() {
		if f.cancel != nil {
			f.cancel()
		}
	})
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop the follower: %w", ctx.Err())
	}
}

// Done is closed when the follower has stopped.
func (f *Follower) Done() <-chan struct{} { return f.done }

// Err is why the follower stopped: nil after Stop or the end of Start's ctx, else the error it stopped on.
// Valid once Done is closed.
func (f *Follower) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Run follows the chain until ctx is done, then returns nil; it returns an error only for what retrying
// cannot fix (a reorg deeper than the kept hashes). Start runs it in the background.
func (f *Follower) Run(ctx context.Context) error {
	var err error
	for {
		if f.kept, err = store.LoadFollowHashes(ctx, f.db, f.cfg.Job); err == nil {
			break
		}
		if !f.wait(ctx, err) {
			return nil
		}
	}
	f.log.Info("follower starting", "job", f.cfg.Job, "topic", f.cfg.Topic, "next_block", f.next(),
		"confirmations", f.cfg.Confirmations, "kept_hashes", len(f.kept))
	wake := make(chan struct{}, 1)
	if n, ok := f.node.(HeadNotifier); ok {
		nctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() {
			defer close(done)
			f.notify(nctx, n, wake)
		}()
	}
	for {
		f.lastTurn.Store(time.Now().UnixNano())
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		caughtUp, err := f.step(sctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errTooDeep):
			return err
		case err != nil:
			if !f.wait(ctx, err) {
				return nil
			}
			continue
		}
		f.failing.Store(0)
		if caughtUp {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-time.After(f.cfg.PollInterval):
			}
		}
	}
}

// notify keeps a new-heads subscription open while ctx lasts, resubscribing after a failure, and gives up
// for good on a transport that cannot push: then the follower only polls.
func (f *Follower) notify(ctx context.Context, n HeadNotifier, wake chan<- struct{}) {
	for wait := f.cfg.RetryBase; ; wait = min(2*wait, 30*time.Second) {
		f.log.Debug("subscribing to new heads")
		began := time.Now()
		err := n.NotifyHeads(ctx, wake)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, backfill.ErrNoNotifications):
			f.log.Info("the node cannot push new heads; polling", "poll_interval", f.cfg.PollInterval.String())
			return
		}
		if time.Since(began) > time.Minute {
			wait = f.cfg.RetryBase // it worked for a while: not a node that refuses at once
		}
		f.log.Warn("new-heads subscription ended; polling meanwhile and subscribing again", "error", err,
			"retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

var errTooDeep = errors.New("reorg deeper than the kept hashes")

// stepTimeout bounds one round (node requests, Kafka's acknowledgements, the Postgres write), so that a node
// or broker that stops answering is retried instead of waited on for ever.
const stepTimeout = 2 * time.Minute

// wait logs err and sleeps before the next try, longer the longer failures go on; false when ctx ended.
func (f *Follower) wait(ctx context.Context, err error) bool {
	now := time.Now()
	f.failing.CompareAndSwap(0, now.UnixNano())
	since := now.Sub(time.Unix(0, f.failing.Load()))
	d := min(max(f.cfg.RetryBase, since/2), 30*time.Second) // /healthz wants a turn a minute
	f.log.Warn("follow step failed; retrying", "error", err, "failing_for", since.Round(time.Millisecond).String(),
		"retry_in", d.Round(time.Millisecond).String())
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// next is the height to publish next.
func (f *Follower) next() uint64 {
	if len(f.kept) == 0 {
		return f.cfg.From
	}
	return uint64(f.kept[len(f.kept)-1].Number) + 1
}

// step does one round: a reorg if the kept tip is no longer canonical, else the next batch up to the
// confirmed head. caughtUp says there was nothing to publish.
func (f *Follower) step(ctx context.Context) (caughtUp bool, err error) {
	head, err := f.node.Head(ctx)
	if err != nil {
		return false, err
	}
	f.joined.Store(true)
	f.metrics.Head(head)
	if head < f.cfg.Confirmations {
		return true, nil
	}
	target := head - f.cfg.Confirmations
	if len(f.kept) > 0 {
		// Is the kept tip still canonical? A node behind it (a restarted or lagging node behind a load
		// balancer) does not have it yet: then the highest height it has decides, and nothing is removed
		// while its chain agrees with what was published.
		tip := f.kept[len(f.kept)-1]
		check := min(uint64(tip.Number), head)
		if check < uint64(f.kept[0].Number) {
			f.log.Warn("the node is behind every kept height; waiting for it", "head", head, "kept_from", f.kept[0].Number)
			return true, nil
		}
		kept := f.kept[check-uint64(f.kept[0].Number)]
		hs, err := f.node.BlockHashes(ctx, []uint64{check})
		if err != nil {
			return false, err
		}
		if !bytes.Equal(hs[0], kept.Hash) {
			return false, f.reorg(ctx)
		}
		if uint64(tip.Number) > head {
			return true, nil // the node is behind what was published, on the same chain
		}
	}
	next := f.next()
	if next > target {
		return true, nil
	}
	last := min(target, next+uint64(f.cfg.BatchSize)-1)
	blocks, err := f.node.Fetch(ctx, next, last)
	if err != nil {
		return false, err
	}
	var prev []byte
	if len(f.kept) > 0 {
		prev = f.kept[len(f.kept)-1].Hash
	}
	msgs := make([]message, 0, len(blocks))
	hashes := make([]store.StoredBlockHash, 0, len(blocks))
	var observed []chain.Rows
	for _, b := range blocks {
		hash, parent, err := blockHashes(b.Header())
		if err != nil {
			return false, fmt.Errorf("block %d: %w", b.Number, err)
		}
		if prev != nil && !bytes.Equal(parent, prev) {
			if len(hashes) == 0 {
				return false, f.reorg(ctx) // the kept tip's child is on another chain
			}
			break // the chain moved under the batch: publish what links, and look again
		}
		value, rows, err := backfill.EncodeRows(b)
		if err != nil {
			return false, err
		}
		if f.tokens != nil {
			observed = append(observed, rows)
		}
		msgs = append(msgs, message{b.Number, value})
		hashes = append(hashes, store.StoredBlockHash{Number: int64(b.Number), Hash: hash})
		prev = hash
	}
	if f.tokens != nil && len(observed) > 0 {
		if err := f.tokens.Observe(ctx, observed); err != nil {
			return false, err
		}
	}
	if err := f.publish(ctx, msgs); err != nil {
		return false, err
	}
	if err := store.SaveFollowHashes(ctx, f.db, f.cfg.Job, nil, hashes, f.cfg.KeepHashes); err != nil {
		return false, err
	}
	f.kept = append(f.kept, hashes...)
	if over := len(f.kept) - f.cfg.KeepHashes; over > 0 {
		f.kept = append([]store.StoredBlockHash(nil), f.kept[over:]...)
	}
	f.metrics.Published(uint64(hashes[len(hashes)-1].Number))
	return false, nil
}

// reorg finds the highest kept height that is still canonical, tombstones the kept heights above it, and
// forgets them; the next steps publish the new chain from there.
func (f *Follower) reorg(ctx context.Context) error {
	tip := f.kept[len(f.kept)-1].Number
	ancestor := -1
	for i := len(f.kept) - 1; i >= 0 && ancestor < 0; i -= 32 {
		lo := max(0, i-31)
		numbers := make([]uint64, 0, i-lo+1)
		for j := i; j >= lo; j-- {
			numbers = append(numbers, uint64(f.kept[j].Number))
		}
		hs, err := f.node.BlockHashes(ctx, numbers)
		if err != nil {
			return err
		}
		for k, j := 0, i; j >= lo; k, j = k+1, j-1 {
			if bytes.Equal(hs[k], f.kept[j].Hash) {
				ancestor = j
				break
			}
		}
	}
	if ancestor < 0 {
		return fmt.Errorf("%w: none of the %d kept heights %d-%d is on the node's chain; raise --keep-hashes, or "+
			"re-publish the range with chainsink backfill and reset the follower (docs/operations.md)",
			errTooDeep, len(f.kept), f.kept[0].Number, tip)
	}
	common := f.kept[ancestor].Number
	// Every kept height above the common one gets a tombstone, not only those above the head: the head this
	// step read may be older than the hashes just compared (a chain that became shorter meanwhile), and a
	// height forgotten here without one would keep its orphaned rows for good. The heights the new chain has
	// are republished right after, which replaces the tombstone (in one batch of run, it is never applied).
	var tombstones []message
	for n := common + 1; n <= tip; n++ {
		tombstones = append(tombstones, message{uint64(n), nil})
	}
	f.log.Warn("reorg: republishing from the common ancestor", "common_ancestor", common, "old_tip", tip,
		"depth", tip-common, "tombstones", len(tombstones))
	if err := f.publish(ctx, tombstones); err != nil {
		return err
	}
	if err := store.SaveFollowHashes(ctx, f.db, f.cfg.Job, &common, nil, f.cfg.KeepHashes); err != nil {
		return err
	}
	f.kept = f.kept[:ancestor+1]
	f.metrics.Reorg(uint64(tip - common))
	return nil
}

type message struct {
	number uint64
	value  []byte // nil: a tombstone
}

// publish sends msgs and waits until Kafka has acknowledged every one of them.
func (f *Follower) publish(ctx context.Context, msgs []message) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, m := range msgs {
		wg.Add(1)
		if err := f.pub.Publish(ctx, format.BundleKey(m.number), m.value, func(err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("deliver block %d: %w", m.number, err))
				mu.Unlock()
			}
			wg.Done()
		}); err != nil {
			wg.Done()
			wg.Wait()
			return fmt.Errorf("publish block %d: %w", m.number, err)
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// blockHashes reads a raw block's hash and parent hash.
func blockHashes(raw json.RawMessage) (hash, parent []byte, err error) {
	var b struct {
		Hash       hexutil.Bytes `json:"hash"`
		ParentHash hexutil.Bytes `json:"parentHash"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, nil, fmt.Errorf("read the block's hashes: %w", err)
	}
	if len(b.Hash) != 32 || len(b.ParentHash) != 32 {
		return nil, nil, errors.New("the block has no hash or parent hash")
	}
	return b.Hash, b.ParentHash, nil
}

// Joined reports whether the node has answered (for /readyz).
func (f *Follower) Joined() bool { return f.joined.Load() }

// LastPoll is when the loop last turned (for /healthz).
func (f *Follower) LastPoll() time.Time {
	if n := f.lastTurn.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// StuckFor is how long the follower has been failing (for /readyz).
func (f *Follower) StuckFor() time.Duration {
	if n := f.failing.Load(); n > 0 {
		return time.Since(time.Unix(0, n))
	}
	return 0
}

// Anomalies is none: a follower holds no partitions.
func (f *Follower) Anomalies() []string { return nil }
