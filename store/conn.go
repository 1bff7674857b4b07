package store

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A black-holed path to Postgres (a firewall that drops a connection's state, a failover that moves an
// address, a frozen proxy) answers nothing and closes nothing. Postgres's own statement_timeout cannot help:
// its error never arrives. TCP keepalive does not either while the kernel still acks what is sent (a proxy or
// load balancer in between), and with unacknowledged data in flight it takes the kernel's retransmission
// timeout, about 15 minutes. So every connection the store opens waits at most responseTimeout for the next
// byte of an answer the client asked for; past it the read fails as a network timeout, pgconn closes the
// connection, and the statement's caller sees a lost connection (IsTransient) that it retries on a new one.
//
// The bound runs only while an answer is owed: it is armed by each write to the server and re-armed by every
// byte that comes back, so an idle pooled connection never times out, and a long COPY (writes only) keeps it
// armed from its last write. pgconn itself moves the deadline to interrupt a read when a context ends; those
// deadlines are kept, and the earlier of the two applies.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	owed     bool      // a write is waiting for its answer
	armed    time.Time // now+timeout as of the last write or read of the answer
	explicit time.Time // pgconn's own read deadline (zero: none)
}

// dialWithResponseTimeout wraps dial so that its connections bound each wait for the server (see deadlineConn).
func dialWithResponseTimeout(dial pgconn.DialFunc, timeout time.Duration) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, timeout: timeout}, nil
	}
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.owed = true
	c.armed = time.Now().Add(c.timeout)
	err := c.apply()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		if c.owed {
			c.armed = time.Now().Add(c.timeout)
			err2 := c.apply()
			if err == nil {
				err = err2
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.explicit = t
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.apply()
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.explicit = t
	return c.apply()
}

// apply sets the read deadline to the earlier of pgconn's and the response bound. Called with mu held.
func (c *deadlineConn) apply() error {
	d := c.explicit
	if c.owed && (d.IsZero() || c.armed.Before(d)) {
		d = c.armed
	}
	return c.Conn.SetReadDeadline(d)
}

// responseTimeout is the bound for a session whose statement_timeout runtime parameter is st: long enough
// that Postgres's own timeout fires first when the server is reachable (its 57014 lets a batch be halved),
// so st plus a tenth, at least a second. A disabled or unreadable statement_timeout disables it too.
func responseTimeout(st string) time.Duration {
	d, ok := pgDuration(st)
	if !ok || d <= 0 {
		return 0
	}
	return d + max(time.Second, d/10)
}

// pgDuration parses a Postgres time setting as the server does: an integer of milliseconds, or an integer
// with one of its units.
func pgDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, false
	}
	units := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := units[unit]
	if !ok {
		return 0, false
	}
	return time.Duration(n) * u, true
}
