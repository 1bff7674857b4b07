package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// openThrough opens cfg's schema through a fault proxy.
func openThrough(t *testing.T, p *pgtest.Proxy, cfg store.Config) *store.Store {
	t.Helper()
	cfg.DatabaseURL = p.URL(t, cfg.DatabaseURL)
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestLostCommitReplyIsFoundCommitted: the COMMIT reaches Postgres and commits, the reply is lost with the
// connection. The write reports an uncertain commit (a retry is due); the retry is fenced by the batch's own
// commit and says so with ErrCommitted, so that the caller goes on instead of raising a zombie alarm; nothing
// is written twice.
func TestLostCommitReplyIsFoundCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct, cfg := pgtest.Open(t)
	proxy := pgtest.StartProxy(t)
	s := openThrough(t, proxy, cfg)

	bt := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	bt.Add(msg(0, sampleRows(10)))
	bt.Add(msg(1, sampleRows(11)))
	proxy.CutAfterCommit(1)
	res, err := store.WriteBatch(ctx, s.Pool(), bt)
	if proxy.Cuts() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", proxy.Cuts())
	}
	if !errors.Is(err, store.ErrCommitUncertain) || !store.IsTransient(err) {
		t.Fatalf("write with its COMMIT reply lost = %v, want a transient ErrCommitUncertain", err)
	}
	if res.Rows["blocks"] != 2 {
		t.Fatalf("the uncertain commit's result = %v, want what it wrote (2 blocks)", res.Rows)
	}
	_, err = store.WriteBatch(ctx, s.Pool(), bt)
	if !errors.Is(err, store.ErrCommitted) || !errors.Is(err, store.ErrFenced) {
		t.Fatalf("retry = %v, want ErrFenced with ErrCommitted", err)
	}
	counts, err := store.CountRows(ctx, direct.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != 2 || counts["transactions"] != 6 {
		t.Fatalf("counts = %v, want 2 blocks and 6 transactions", counts)
	}

	// A stale owner that is behind, rather than at the batch's end, is fenced without ErrCommitted.
	stale := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	stale.Add(msg(0, sampleRows(10)))
	if _, err := store.WriteBatch(ctx, s.Pool(), stale); !errors.Is(err, store.ErrFenced) || errors.Is(err, store.ErrCommitted) {
		t.Fatalf("stale owner = %v, want ErrFenced alone", err)
	}
}

// TestConflictWithAnUnlockedWriterIsRetriedNotDeadLettered: a writer that does not take the height locks (an
// older chainsink during an upgrade, an import by hand) inserts block 10 while a batch replaces it. The
// batch's delete sees nothing, its COPY waits on the other's uncommitted key and fails with 23505 once the
// other commits. That used to store the valid message in dead_letters as rejected_by_postgres; now the batch
// fails whole with ErrConflict, and its retry replaces the other's block. A batch of items, whose fresh
// keys are copied in before any delete (writeRows), deletes the other's block once its COPY collides, and
// replaces it in the same attempt.
func TestConflictWithAnUnlockedWriterIsRetriedNotDeadLettered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	cfg.ApplicationName = fmt.Sprintf("chainsink-conflict-%d", time.Now().UnixNano())
	writer, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	// conflict makes the other writer insert block number in an open transaction, runs write while it holds
	// it, commits once write waits on its key, and returns write's outcome.
	conflict := func(number int64, write func() (store.Result, error)) (store.Result, error) {
		other, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback(ctx) //nolint:errcheck
		if _, err := other.Exec(ctx, `INSERT INTO blocks (number, hash, parent_hash, timestamp, miner, gas_used,
			gas_limit, transaction_count) VALUES ($1, '\x01', '\x02', now(), '\x03', 0, 0, 0)`, number); err != nil {
			t.Fatal(err)
		}
		type result struct {
			res store.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			r, err := write()
			done <- result{r, err}
		}()
		pgtest.WaitForLockWait(t, s.Pool(), cfg.ApplicationName)
		if err := other.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		r := <-done
		return r.res, r.err
	}

	want := sampleRows(10)
	bt := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	bt.Add(msg(0, want))
	res, err := conflict(10, func() (store.Result, error) { return store.WriteBatch(ctx, writer.Pool(), bt) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("write against a concurrent insert = %v (dead letters %+v), want ErrConflict", err, res.DeadLetters)
	}
	offs, err := store.NextOffsets(ctx, s.Pool(), "g", "blocks", []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 0 {
		t.Fatalf("next offset after the conflict = %d, want 0 (rolled back)", offs[0])
	}
	// The retry deletes what the other writer committed and writes the batch's version whole.
	if res, err := store.WriteBatch(ctx, writer.Pool(), bt); err != nil || len(res.DeadLetters) != 0 {
		t.Fatalf("retry = %v, dead letters %+v", err, res.DeadLetters)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, want)

	items := store.NewBatch("g", "items", 0, 0, chain.ReplaceRows)
	items.Add(msg(0, chain.Rows{Blocks: sampleRows(30).Blocks}))
	res, err = conflict(30, func() (store.Result, error) { return store.WriteBatch(ctx, writer.Pool(), items) })
	if err != nil || len(res.DeadLetters) != 0 {
		t.Fatalf("items against a concurrent insert = %v, dead letters %+v; want it replaced", err, res.DeadLetters)
	}
	if got, err := pgtest.ReadRows(ctx, s.Pool(), 30, 30); err != nil {
		t.Fatal(err)
	} else {
		pgtest.RequireRowsEqual(t, got, chain.Rows{Blocks: sampleRows(30).Blocks})
	}

	// When retries have not resolved it, RejectConflicts makes the message a dead letter, as before.
	again := store.NewBatch("g", "blocks", 0, 1, chain.ReplaceBlocks)
	again.RejectConflicts = true
	again.Add(msg(1, chain.Rows{Blocks: sampleRows(20).Blocks}))
	res, err = conflict(20, func() (store.Result, error) { return store.WriteBatch(ctx, writer.Pool(), again) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 1 || res.DeadLetters[0].Reason != store.ReasonRejected {
		t.Fatalf("dead letters = %+v, want the conflicting message as %s", res.DeadLetters, store.ReasonRejected)
	}
}

// TestBlackholedPathFailsAsALostConnection: the path to Postgres stops forwarding without closing. A write
// used to wait for the kernel's retransmission timeout (about 15 minutes, or for ever behind a proxy that acks);
// now the connection gives up after its response timeout with a transient error, and once the path is back the
// retry commits.
func TestBlackholedPathFailsAsALostConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct, cfg := pgtest.Open(t)
	proxy := pgtest.StartProxy(t)
	cfg.ResponseTimeout = 2 * time.Second
	cfg.ConnectTimeout = 2 * time.Second
	s := openThrough(t, proxy, cfg)

	bt := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	bt.Add(msg(0, sampleRows(10)))
	if err := s.Ping(ctx); err != nil { // a pooled connection that the write then takes
		t.Fatal(err)
	}
	proxy.Blackhole(true)
	began := time.Now()
	_, err := store.WriteBatch(ctx, s.Pool(), bt)
	took := time.Since(began)
	proxy.Blackhole(false)
	if err == nil || !store.IsTransient(err) {
		t.Fatalf("write over a black-holed path = %v, want a transient error", err)
	}
	if took > 30*time.Second {
		t.Fatalf("the write waited %v", took)
	}
	if _, err := store.WriteBatch(ctx, s.Pool(), bt); err != nil {
		t.Fatalf("retry after the path is back: %v", err)
	}
	got, err := pgtest.ReadRows(ctx, direct.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, sampleRows(10))
}

// TestBackendTerminatedBeforeCommitMovesNothing: the backend of a batch's transaction is terminated (an
// administrator, an OOM kill, a failover) after the fence, the deletes and the COPY, before COMMIT. Neither the
// rows nor the offset may move, and what the batch replaced must still be there: a retry then writes it whole.
func TestBackendTerminatedBeforeCommitMovesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	old := sampleRows(10)
	first := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	first.Add(msg(0, old))
	if _, err := store.WriteBatch(ctx, s.Pool(), first); err != nil {
		t.Fatal(err)
	}

	cfg.ApplicationName = fmt.Sprintf("chainsink-terminated-%d", time.Now().UnixNano())
	victim, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	newer := sampleRows(10)
	newer.Blocks[0].Hash = b(32, 0xee)
	newer.Transactions = newer.Transactions[:1]
	newer.Logs, newer.TokenTransfers, newer.Events, newer.Calls = nil, nil, nil, nil
	bt := store.NewBatch("g", "blocks", 0, 1, chain.ReplaceBlocks)
	bt.Add(msg(1, newer))
	bt.Add(msg(2, sampleRows(11)))
	hold := &holdDB{DB: victim.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := store.WriteBatch(ctx, hold, bt)
		done <- err
	}()
	<-hold.entered // fenced, deleted and copied; COMMIT not sent
	var terminated int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`,
		cfg.ApplicationName).Scan(&terminated); err != nil {
		t.Fatal(err)
	}
	if terminated != 1 {
		t.Fatalf("terminated %d backends in a transaction, want 1", terminated)
	}
	close(hold.release)
	if err := <-done; err == nil || !store.IsTransient(err) {
		t.Fatalf("commit on a terminated backend = %v, want a transient error", err)
	}
	offs, err := store.NextOffsets(ctx, s.Pool(), "g", "blocks", []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 1 {
		t.Fatalf("next offset = %d, want 1 (the terminated batch's fence must not stand)", offs[0])
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 10, 11)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, old) // block 10 as before, no block 11

	if _, err := store.WriteBatch(ctx, s.Pool(), bt); err != nil {
		t.Fatalf("retry: %v", err)
	}
	got, err = pgtest.ReadRows(ctx, s.Pool(), 10, 11)
	if err != nil {
		t.Fatal(err)
	}
	want, eleven := newer, sampleRows(11)
	want.Add(&eleven)
	pgtest.RequireRowsEqual(t, got, want)
}

// TestSessionDefaultsAndTheURLWins: README.md says application_name, statement_timeout and
// idle_in_transaction_session_timeout are set unless the URL sets them.
func TestSessionDefaultsAndTheURLWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cfg := pgtest.Open(t)
	show := func(cfg store.Config) map[string]string {
		t.Helper()
		s, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := map[string]string{}
		for _, k := range []string{"application_name", "statement_timeout", "idle_in_transaction_session_timeout"} {
			var v string
			if err := s.Pool().QueryRow(ctx, "SELECT current_setting($1)", k).Scan(&v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		return out
	}
	got := show(cfg)
	if got["application_name"] != "chainsink" || got["statement_timeout"] != "5min" || got["idle_in_transaction_session_timeout"] != "1min" {
		t.Fatalf("defaults = %v", got)
	}
	mine := cfg
	mine.DatabaseURL += "&application_name=mine&statement_timeout=1500&idle_in_transaction_session_timeout=7s"
	got = show(mine)
	if got["application_name"] != "mine" || got["statement_timeout"] != "1500ms" || got["idle_in_transaction_session_timeout"] != "7s" {
		t.Fatalf("with the URL's settings = %v", got)
	}
}
