package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chainsink/chainsink/store"
)

func pgErr(code string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "sqlstate " + code}
}

// safeErr is a pgconn-style error that knows whether it happened before anything reached the server.
type safeErr struct {
	safe bool
	err  error
}

func (e safeErr) Error() string     { return fmt.Sprintf("safe=%v: %v", e.safe, e.err) }
func (e safeErr) SafeToRetry() bool { return e.safe }
func (e safeErr) Unwrap() error     { return e.err }

// TestClassification pins IsTransient and IsRejected: single errors by SQLSTATE and by type, and trees of
// them, where every path from the root to a leaf is judged and one refusing path outweighs any transient one.
func TestClassification(t *testing.T) {
	t.Parallel()
	reset := &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	const (
		neither   = 0
		transient = 1
		rejected  = 2
	)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, neither},

		// Transient SQLSTATEs.
		{"40001 serialization failure", pgErr("40001"), transient},
		{"40P01 deadlock", pgErr("40P01"), transient},
		{"57P01 admin shutdown", pgErr("57P01"), transient},
		{"57P02 crash shutdown", pgErr("57P02"), transient},
		{"57P03 cannot connect now", pgErr("57P03"), transient},
		{"53300 too many connections", pgErr("53300"), transient},
		{"53100 disk full", pgErr("53100"), transient},
		{"55P03 lock not available", pgErr("55P03"), transient},
		{"57014 statement timeout", pgErr("57014"), transient},
		{"08006 connection failure", pgErr("08006"), transient},
		{"08001 unable to connect", pgErr("08001"), transient},
		// A demoted primary during a failover: retried on new connections (the indexer resets its pool).
		{"25006 read-only transaction", pgErr("25006"), transient},
		{"08P01 protocol violation", pgErr("08P01"), transient},
		// A newer server's code in a transient class is in it too.
		{"08 code unknown to pgerrcode", pgErr("08P99"), transient},
		{"53 code unknown to pgerrcode", pgErr("53P99"), transient},

		// Rejected SQLSTATEs: the data, not the batch.
		{"23505 unique violation", pgErr("23505"), rejected},
		{"23503 foreign key violation", pgErr("23503"), rejected},
		{"22003 numeric out of range", pgErr("22003"), rejected},
		{"22P02 invalid text representation", pgErr("22P02"), rejected},
		{"22P05 untranslatable character", pgErr("22P05"), rejected},
		{"54000 program limit exceeded", pgErr("54000"), rejected},
		{"22 code unknown to pgerrcode", pgErr("22P99"), rejected},
		{"23 code unknown to pgerrcode", pgErr("23P99"), rejected},

		// Neither: a retry meets them again, and they are not the data's fault.
		{"42501 insufficient privilege", pgErr("42501"), neither},
		{"42P01 undefined table", pgErr("42P01"), neither},
		{"54001 statement too complex", pgErr("54001"), neither},
		{"40003 statement completion unknown", pgErr("40003"), neither},
		{"57P04 database dropped", pgErr("57P04"), neither},
		{"42 code unknown to pgerrcode", pgErr("42P99"), neither},
		{"empty SQLSTATE", pgErr(""), neither},

		// Wrapped.
		{"wrapped 40001", fmt.Errorf("commit batch: %w", pgErr("40001")), transient},
		{"wrapped twice 23505", fmt.Errorf("copy: %w", fmt.Errorf("blocks: %w", pgErr("23505"))), rejected},
		{"sentinel and 22003 in one Errorf", fmt.Errorf("%w: %w", errors.New("copy blocks"), pgErr("22003")), rejected},
		{"server error decides over a retry-safe wrapper", safeErr{true, pgErr("42P01")}, neither},

		// Lost connections, without a SQLSTATE.
		{"net.OpError", reset, transient},
		{"wrapped net.OpError", fmt.Errorf("copy: %w", reset), transient},
		{"DNS error", &net.DNSError{Err: "no such host", Name: "db"}, transient},
		{"ECONNRESET outside a net.OpError", fmt.Errorf("read: %w", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}), transient},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, transient},
		{"wrapped io.EOF", fmt.Errorf("receive message: %w", io.EOF), transient},
		{"net.ErrClosed", fmt.Errorf("write: %w", net.ErrClosed), transient},
		{"pgconn.ErrConnClosed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), transient},
		{"safe to retry", safeErr{true, errors.New("conn busy")}, transient},
		{"not safe to retry", safeErr{false, errors.New("write failed")}, neither},
		{"the outermost SafeToRetry decides", safeErr{false, safeErr{true, errors.New("x")}}, neither},
		// The message alone is no longer evidence: only the typed errors above are.
		{"text that says conn closed", errors.New("conn closed"), neither},
		{"plain error", errors.New("boom"), neither},

		// Stopping.
		{"context.Canceled", context.Canceled, neither},
		{"context.DeadlineExceeded", context.DeadlineExceeded, neither},
		{"wrapped cancellation", fmt.Errorf("write batch: %w", context.Canceled), neither},

		// Trees: a transient or rejected path counts unless another path refuses.
		{"40001 joined with a failed rollback on a dead connection",
			errors.Join(pgErr("40001"), fmt.Errorf("roll back to savepoint: %w", reset)), transient},
		{"40001 joined with an error of unknown kind", errors.Join(pgErr("40001"), errors.New("tx is closed")), transient},
		{"unknown kind first", errors.Join(errors.New("tx is closed"), io.ErrUnexpectedEOF), transient},
		{"rejection whose rollback lost the connection is retried, not dead-lettered",
			errors.Join(pgErr("23505"), fmt.Errorf("roll back to savepoint: %w", pgconn.ErrConnClosed)), transient},
		{"rejection joined with an error of unknown kind", errors.Join(pgErr("23505"), errors.New("note")), rejected},
		{"two rejections", errors.Join(pgErr("22003"), pgErr("23505")), rejected},
		{"transient and permanent SQLSTATEs", errors.Join(pgErr("40001"), pgErr("42P01")), neither},
		{"permanent first", errors.Join(pgErr("42P01"), pgErr("40001")), neither},
		{"rejection and permanent SQLSTATE", errors.Join(pgErr("22003"), pgErr("42501")), neither},
		{"lost connection while stopping", errors.Join(reset, context.Canceled), neither},
		{"rejection while stopping", errors.Join(pgErr("23505"), context.DeadlineExceeded), neither},
		{"two %w: transient and permanent", fmt.Errorf("%w; then %w", io.EOF, pgErr("42P01")), neither},
		{"nested joins under a wrapper",
			fmt.Errorf("batch: %w", errors.Join(errors.New("a"), errors.Join(errors.New("b"), pgErr("40P01")))), transient},
		{"retry-safe wrapper over a join", safeErr{true, errors.Join(errors.New("a"), errors.New("b"))}, transient},
		{"retry-safe wrapper does not vouch for a refused sibling",
			safeErr{true, errors.Join(errors.New("a"), pgErr("28P01"))}, neither},
	} {
		gotT, gotR := store.IsTransient(tc.err), store.IsRejected(tc.err)
		if wantT, wantR := tc.want == transient, tc.want == rejected; gotT != wantT || gotR != wantR {
			t.Errorf("%s: IsTransient = %v, IsRejected = %v; want %v, %v (err: %v)", tc.name, gotT, gotR, wantT, wantR, tc.err)
		}
	}
}

// TestStatementTimeoutAndReadOnlyAreFoundInJoinedErrors: the worker splits a batch on 57014 and resets its
// pool on 25006 wherever they stand in the error it got back (a rollback error is often joined to them).
func TestStatementTimeoutAndReadOnlyAreFoundInJoinedErrors(t *testing.T) {
	rollback := errors.New("roll back: conn closed")
	for _, tc := range []struct {
		err               error
		timeout, readOnly bool
	}{
		{pgErr("57014"), true, false},
		{fmt.Errorf("copy into logs: %w", pgErr("57014")), true, false},
		{errors.Join(fmt.Errorf("write: %w", pgErr("57014")), rollback), true, false},
		{errors.Join(rollback, pgErr("25006")), false, true},
		{pgErr("55P03"), false, false},
		{rollback, false, false},
	} {
		if got := store.IsStatementTimeout(tc.err); got != tc.timeout {
			t.Errorf("IsStatementTimeout(%v) = %v", tc.err, got)
		}
		if got := store.IsReadOnly(tc.err); got != tc.readOnly {
			t.Errorf("IsReadOnly(%v) = %v", tc.err, got)
		}
	}
}
