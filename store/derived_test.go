package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// writeBlocks stores blocks' sampleRows in one batch of partition 0, starting at offset 0.
func writeBlocks(t *testing.T, db store.DB, blocks ...uint64) {
	t.Helper()
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	for i, n := range blocks {
		b.Add(msg(int64(i), sampleRows(n)))
	}
	if _, err := store.WriteBatch(context.Background(), db, b); err != nil {
		t.Fatal(err)
	}
}

func derivedEvent(block uint64, logIndex int32, abiName, args string) chain.Event {
	return chain.Event{BlockNumber: block, LogIndex: logIndex, TransactionHash: b(32, 23), BlockTimestamp: ts,
		Address: b(20, 31), EventName: "E", Signature: "E()", ABIName: abiName, Args: []byte(args)}
}

func derivedCall(block uint64, txIndex int32, abiName, args string) chain.Call {
	return chain.Call{BlockNumber: block, TransactionIndex: txIndex, TransactionHash: b(32, 23), BlockTimestamp: ts,
		ToAddress: b(20, 25), MethodName: "m", Signature: "m()", ABIName: abiName, Args: []byte(args)}
}

func TestReplaceDerivedAllABIsReplacesTheRangeOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	writeBlocks(t, s.Pool(), 100, 101, 102)
	before, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}

	var sawLogs, sawTxs int
	derive := func(raw *chain.Rows) {
		sawLogs, sawTxs = len(raw.Logs), len(raw.Transactions)
		if len(raw.Blocks)+len(raw.Events)+len(raw.Calls)+len(raw.TokenTransfers) != 0 {
			t.Errorf("derive got more than logs and transactions: %d blocks %d events", len(raw.Blocks), len(raw.Events))
		}
		raw.TokenTransfers = nil
		raw.Events = []chain.Event{derivedEvent(101, 0, "New", `{"n":1}`)}
		raw.Calls = []chain.Call{derivedCall(101, 2, "New", `{"c":2}`)}
	}
	res, err := store.ReplaceDerived(ctx, s.Pool(), 101, 101, nil, derive)
	if err != nil {
		t.Fatal(err)
	}
	if sawLogs != 2 || sawTxs != 3 || res.Logs != 2 || res.Transactions != 3 {
		t.Fatalf("derive saw %d logs and %d transactions (result %+v), want 2 and 3", sawLogs, sawTxs, res)
	}
	wantDeleted := chain.Counts{"token_transfers": 3, "events": 1, "calls": 1}
	wantWritten := chain.Counts{"events": 1, "calls": 1}
	if fmt.Sprint(res.Deleted) != fmt.Sprint(wantDeleted) || fmt.Sprint(res.Written) != fmt.Sprint(wantWritten) {
		t.Fatalf("deleted %v written %v, want %v and %v", res.Deleted, res.Written, wantDeleted, wantWritten)
	}

	// Blocks 100 and 102 and every raw table are untouched; block 101's derived rows are exactly the new ones.
	want := before
	want.TokenTransfers = keepIf(before.TokenTransfers, func(x chain.TokenTransfer) bool { return x.BlockNumber != 101 })
	want.Events = append(keepIf(before.Events, func(x chain.Event) bool { return x.BlockNumber != 101 }), derivedEvent(101, 0, "New", `{"n":1}`))
	want.Calls = append(keepIf(before.Calls, func(x chain.Call) bool { return x.BlockNumber != 101 }), derivedCall(101, 2, "New", `{"c":2}`))
	sortRows(&want)
	got, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, want)

	// Again: the same rows.
	if _, err := store.ReplaceDerived(ctx, s.Pool(), 101, 101, nil, derive); err != nil {
		t.Fatal(err)
	}
	again, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, again, want)
}

func TestReplaceDerivedSubsetLeavesOtherABIsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	writeBlocks(t, s.Pool(), 100)
	// Stored: event (100,1) of ERC20 (sampleRows), event (100,0) of B, call (100,1) of ERC20, call (100,2) of B.
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO events SELECT block_number, 0, transaction_hash, block_timestamp, address, 'Old', 'Old()', 'B', '{"old":true}'
		FROM events WHERE block_number = 100 AND log_index = 1;
		INSERT INTO calls SELECT block_number, 2, transaction_hash, block_timestamp, to_address, status, 'old', 'old()', 'B', '{}'
		FROM calls WHERE block_number = 100 AND transaction_index = 1`); err != nil {
		t.Fatal(err)
	}
	before, err := pgtest.ReadRows(ctx, s.Pool(), 100, 100)
	if err != nil {
		t.Fatal(err)
	}

	derive := func(raw *chain.Rows) {
		raw.TokenTransfers = []chain.TokenTransfer{before.TokenTransfers[0]}
		raw.Events = []chain.Event{
			derivedEvent(100, 0, "B", `{"new":true}`),   // replaces B's row
			derivedEvent(100, 1, "B", `{"clash":true}`), // log 1 is ERC20's: kept as it is, this one dropped
			derivedEvent(100, 1, "C", `{}`),             // not of the subset: never written
		}
		raw.Calls = []chain.Call{derivedCall(100, 1, "B", `{}`)} // ERC20's call stays; B's call at index 2 is gone
	}
	res, err := store.ReplaceDerived(ctx, s.Pool(), 100, 100, []string{"B"}, derive)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 2 {
		t.Fatalf("kept = %d, want 2 (the event and the call that clash with ERC20's rows)", res.Kept)
	}
	wantDeleted := chain.Counts{"token_transfers": 3, "events": 1, "calls": 1}
	wantWritten := chain.Counts{"token_transfers": 1, "events": 1}
	if fmt.Sprint(res.Deleted) != fmt.Sprint(wantDeleted) || fmt.Sprint(res.Written) != fmt.Sprint(wantWritten) {
		t.Fatalf("deleted %v written %v, want %v and %v", res.Deleted, res.Written, wantDeleted, wantWritten)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want.TokenTransfers = before.TokenTransfers[:1]
	want.Events = []chain.Event{derivedEvent(100, 0, "B", `{"new":true}`), before.Events[1]}
	want.Calls = before.Calls[:1]
	if want.Events[1].ABIName != "ERC20" || want.Calls[0].ABIName != "ERC20" {
		t.Fatalf("fixture changed: %+v %+v", want.Events[1], want.Calls[0])
	}
	pgtest.RequireRowsEqual(t, got, want)
}

func TestReplaceDerivedRefusesRowsOutsideTheRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	writeBlocks(t, s.Pool(), 100, 101)
	before, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.ReplaceDerived(ctx, s.Pool(), 100, 100, nil, func(raw *chain.Rows) {
		raw.Events = []chain.Event{derivedEvent(101, 5, "X", `{}`)}
	})
	if err == nil || !strings.Contains(err.Error(), "outside the range") {
		t.Fatalf("err = %v, want a range error", err)
	}
	after, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, after, before)
	if _, err := store.ReplaceDerived(ctx, s.Pool(), 5, 4, nil, func(*chain.Rows) {}); err == nil {
		t.Fatal("an empty range was accepted")
	}
}

// A live batch that replaces a block while it is being re-derived must wait for the re-derivation and then
// replace its rows, instead of colliding with them and ending up in dead_letters. The share locks on the raw rows
// are what makes it wait (it deletes them before their derived rows); without them it does not block here.
func TestReplaceDerivedAndConcurrentWriterBothSucceed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, cfg := pgtest.Open(t)
	writeBlocks(t, s.Pool(), 100)

	wcfg := cfg
	wcfg.ApplicationName = "writer_" + cfg.Schema
	writer, err := store.Open(ctx, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	locked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	defer letGo() // on failure too, or the blocked transaction keeps its connection and the pool never closes
	derived := make(chan error, 1)
	go func() {
		_, err := store.ReplaceDerived(ctx, s.Pool(), 100, 100, nil, func(raw *chain.Rows) {
			close(locked)
			<-release
			r := sampleRows(100)
			raw.TokenTransfers, raw.Events, raw.Calls = r.TokenTransfers, r.Events, r.Calls
		})
		derived <- err
	}()
	<-locked

	newer := sampleRows(100)
	newer.Events[0].Args = []byte(`{"version":2}`)
	batch := store.NewBatch("g", "blocks", 0, 1, chain.ReplaceBlocks)
	batch.Add(msg(1, newer))
	written := make(chan error, 1)
	var res store.Result
	go func() {
		var err error
		res, err = store.WriteBatch(ctx, writer.Pool(), batch)
		written <- err
	}()
	// The writer must be blocked on the re-derivation's locks before it is let go.
	waitUntilTrue(t, ctx, func() (bool, error) {
		var n int
		err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, wcfg.ApplicationName).Scan(&n)
		return n == 1, err
	})
	letGo()
	if err := <-derived; err != nil {
		t.Fatalf("re-derive: %v", err)
	}
	if err := <-written; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if len(res.DeadLetters) != 0 {
		t.Fatalf("the live batch was dead-lettered: %+v", res.DeadLetters)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, newer)
}

func waitUntilTrue(t *testing.T, ctx context.Context, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

func TestReadRawReadsLogsAndTransactionsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	writeBlocks(t, s.Pool(), 100, 101)
	got, err := store.ReadRaw(ctx, s.Pool(), 101, 200)
	if err != nil {
		t.Fatal(err)
	}
	all := sampleRows(101)
	pgtest.RequireRowsEqual(t, got, chain.Rows{Transactions: all.Transactions, Logs: all.Logs})
}

func keepIf[T any](xs []T, keep func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// sortRows orders derived rows by primary key, as ReadRows returns them.
func sortRows(r *chain.Rows) {
	slices.SortFunc(r.Events, func(x, y chain.Event) int {
		return cmp.Or(cmp.Compare(x.BlockNumber, y.BlockNumber), cmp.Compare(x.LogIndex, y.LogIndex))
	})
	slices.SortFunc(r.Calls, func(x, y chain.Call) int {
		return cmp.Or(cmp.Compare(x.BlockNumber, y.BlockNumber), cmp.Compare(x.TransactionIndex, y.TransactionIndex))
	})
}
