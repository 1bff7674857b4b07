package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsTransient reports whether err is worth retrying with the same batch: the connection was lost or refused,
// the server is shutting down or starting, or the transaction lost a serialization or deadlock race.
//
// An error can be a tree: errors.Join, fmt.Errorf with several %w, pgconn's ConnectError over one error per
// host. Every path from err down to a leaf is judged as if it were the only error, and err is transient when
// at least one path is transient and none forbids a retry. A path forbids one when it holds a context cancellation or deadline (the caller is stopping) or a
// Postgres error that is neither transient nor rejected (a missing table, a denied permission: the next try
// meets it again). A rejected path does not forbid one: when rolling back after a rejection loses the
// connection, the retry repeats the rejection in a healthy transaction, which then dead-letters the message.
// A path of an unknown kind (a plain error from our own code) neither makes err transient nor forbids a retry.
func IsTransient(err error) bool {
	v := judge(err)
	return v[transient] && !v[permanent]
}

// IsRejected reports whether Postgres refused the data itself (a data exception, a violated constraint, a
// value out of range), which no retry can fix: the message behind it belongs in dead_letters.
//
// In a tree of errors (see IsTransient) err is rejected when at least one path is rejected and none is
// transient or forbids a retry: with the connection lost too, the transaction that would have recorded the
// dead letter is gone and the batch must be retried, and any other refusal is not the data's fault.
func IsRejected(err error) bool {
	v := judge(err)
	return v[rejected] && !v[transient] && !v[permanent]
}

// A verdict is what one path through an error tree says about retrying.
type verdict uint8

const (
	unknown   verdict = iota // nothing recognised: not transient, but no reason to refuse a retry
	transient                // lost or refused connection, server restarting, lost race, timeout
	rejected                 // Postgres refused the data
	permanent                // cancelled, or a Postgres error a retry would meet again
	verdicts
)

// judge reports which verdicts the paths of err reach.
func judge(err error) (seen [verdicts]bool) {
	if err == nil {
		return seen
	}
	// errors.Is visits every node of the tree, so this is "some path is cancelled", already with the Is
	// methods that a per-node check would have to repeat.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		seen[permanent] = true
		return seen
	}
	walk(err, pathState{}, func(v verdict) { seen[v] = true })
	return seen
}

// pathState is what the nodes between the root and the current one say about the connection.
type pathState struct {
	lost      bool // some node says the connection was lost, refused or never used
	safeKnown bool // some node implements SafeToRetry: the first one decides, as in pgconn.SafeToRetry
}

// walk calls visit with the verdict of each path from err to a leaf. Nodes are checked by their own type, not
// with errors.As: that would look down into the other branches and let one path's net.Error vouch for
// another's.
func walk(err error, st pathState, visit func(verdict)) {
	for {
		if pgErr, ok := err.(*pgconn.PgError); ok {
			// A server error is always a leaf and decides its path alone: a PgError inside a ConnectError (a
			// refused login, too many connections) is judged by its SQLSTATE, not as a failed connection.
			visit(codeVerdict(pgErr.Code))
			return
		}
		st = st.with(err)
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			branched := false
			for _, e := range u.Unwrap() {
				if e != nil {
					branched = true
					walk(e, st, visit)
				}
			}
			if !branched {
				visit(st.verdict())
			}
			return
		case interface{ Unwrap() error }:
			if err = u.Unwrap(); err == nil {
				visit(st.verdict())
				return
			}
		default:
			visit(st.verdict())
			return
		}
	}
}

// connLost are the errors that say the connection went away under a statement. They are compared as errors,
// not looked for in the message ("conn closed", "connection reset"): a message reworded upstream would change
// the verdict without a sound.
var connLost = []error{
	io.EOF, io.ErrUnexpectedEOF, // the server closed the socket mid-message
	net.ErrClosed,        // our side closed it, e.g. the pool after an earlier failure
	pgconn.ErrConnClosed, // pgx refusing a statement on a connection it has closed ("conn closed")
	syscall.ECONNRESET,   // "connection reset by peer", whether or not a *net.OpError still wraps it
}

func (st pathState) with(e error) pathState {
	if !st.safeKnown {
		if s, ok := e.(interface{ SafeToRetry() bool }); ok {
			st.safeKnown = true
			st.lost = st.lost || s.SafeToRetry()
		}
	}
	if _, ok := e.(*pgconn.ConnectError); ok {
		st.lost = true
	}
	if _, ok := e.(net.Error); ok {
		st.lost = true
	}
	for _, target := range connLost {
		if nodeIs(e, target) {
			st.lost = true
		}
	}
	return st
}

func (st pathState) verdict() verdict {
	if st.lost {
		return transient
	}
	return unknown
}

// nodeIs is errors.Is for e alone, without its wrapped errors. The targets are pointers and syscall.Errno, so
// == cannot panic on an uncomparable error type.
func nodeIs(e, target error) bool {
	if e == target {
		return true
	}
	x, ok := e.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// codeVerdict judges a Postgres error by its SQLSTATE.
func codeVerdict(code string) verdict {
	switch code {
	case pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected: // lost a race the next try may win
		return transient
	case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow: // a restart or failover
		return transient
	case pgerrcode.LockNotAvailable, pgerrcode.QueryCanceled:
		// lock_timeout and statement_timeout: a slow moment, not a bad batch. Our own cancellation also reaches
		// the server as a cancel, but pgx returns it as ctx's error, which judge stops at first.
		return transient
	case pgerrcode.ReadOnlySQLTransaction:
		// A demoted primary during a failover, or a standby. Worth a retry on a fresh connection: the pool keeps
		// this healthy one, so a caller that retries resets its pool on it (see IsReadOnly), and
		// target_session_attrs=read-write in the URL makes the new connections find the primary.
		return transient
	case pgerrcode.ProgramLimitExceeded:
		// Only 54000 of its class: it is what an oversized value gets (an index row or a jsonb too large),
		// while the rest of class 54 (statement too complex, too many columns or arguments) is about the
		// statement, which every message shares.
		return rejected
	}
	switch {
	case inClass(code, pgerrcode.IsConnectionException, pgerrcode.ConnectionException),
		inClass(code, pgerrcode.IsInsufficientResources, pgerrcode.InsufficientResources): // too many connections, disk full
		return transient
	case inClass(code, pgerrcode.IsDataException, pgerrcode.DataException),
		inClass(code, pgerrcode.IsIntegrityConstraintViolation, pgerrcode.IntegrityConstraintViolation):
		return rejected
	}
	return permanent
}

// inClass reports whether code is in the SQLSTATE class that isClass tests and anyOfClass belongs to.
// pgerrcode's helpers list the codes of one Postgres release; a code added to the class by a newer server is
// in it all the same (the SQL standard makes the first two characters the class), so a code pgerrcode does
// not know is judged by those.
func inClass(code string, isClass func(string) bool, anyOfClass string) bool {
	if pgerrcode.Name(code) != "" {
		return isClass(code)
	}
	return len(code) >= 2 && code[:2] == anyOfClass[:2]
}

// sanitizeText makes an error message storable as text: Postgres refuses NUL and invalid UTF-8.
func sanitizeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\\0")
}

// IsStatementTimeout reports whether Postgres cancelled a statement of err for statement_timeout (57014): a
// batch too large for the timeout, which the indexer writes in halves rather than retrying as it is.
func IsStatementTimeout(err error) bool { return hasCode(err, pgerrcode.QueryCanceled) }

// IsReadOnly reports whether err is a write refused by a read-only server (25006), as a demoted primary
// answers during a failover: retry on new connections (reset the pool), not on the one that got it.
func IsReadOnly(err error) bool { return hasCode(err, pgerrcode.ReadOnlySQLTransaction) }

// hasCode reports whether a *pgconn.PgError with code is anywhere in err's tree, joined errors included.
// (errors.As would stop at the first PgError of the tree, whatever its code.)
func hasCode(err error, code string) bool {
	if pgErr, ok := err.(*pgconn.PgError); ok && pgErr.Code == code {
		return true
	}
	switch x := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if hasCode(e, code) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return hasCode(x.Unwrap(), code)
	}
	return false
}

// isLockTimeout reports an error of lock_timeout (55P03).
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable
}
