package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/server"
)

// pinger answers at once, or, when block is set, only once block is closed or the request's ctx ends.
type pinger struct {
	block   chan struct{}
	entered chan struct{} // closed when the first Ping starts
	once    sync.Once
	mu      sync.Mutex
	ended   error // the ctx error the first blocked Ping saw, if it ended that way
	left    chan struct{}
}

func newPinger(block bool) *pinger {
	p := &pinger{entered: make(chan struct{}), left: make(chan struct{})}
	if block {
		p.block = make(chan struct{})
	}
	return p
}

func (p *pinger) Ping(ctx context.Context) error {
	first := false
	p.once.Do(func() { first = true; close(p.entered) })
	if p.block == nil || !first {
		return nil
	}
	defer close(p.left)
	select {
	case <-p.block:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		p.ended = ctx.Err()
		p.mu.Unlock()
		return ctx.Err()
	}
}

func (p *pinger) endedWith() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

type consumer struct{}

func (consumer) Joined() bool            { return true }
func (consumer) LastPoll() time.Time     { return time.Now() }
func (consumer) StuckFor() time.Duration { return 0 }
func (consumer) Anomalies() []string     { return nil }

func newServer(t *testing.T, db server.Pinger) *server.Server {
	t.Helper()
	return server.New(server.Options{Addr: "127.0.0.1:0", StuckAfter: time.Minute}, metrics.New(), db, consumer{},
		slog.New(slog.DiscardHandler))
}

// client opens a connection per request, so that a failing request means the server no longer accepts.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func get(addr, path string) (int, string, error) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func mustGet(t *testing.T, addr, path, want string) {
	t.Helper()
	code, body, err := get(addr, path)
	if err != nil || code != http.StatusOK || strings.TrimSpace(body) != want {
		t.Fatalf("GET %s: %d %q %v; want 200 %q", path, code, body, err, want)
	}
}

// waitFor polls cond until it holds or timeout passes: a wait on a condition, not a sleep.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func refused(addr string) func() bool {
	return func() bool {
		_, _, err := get(addr, "/healthz")
		return err != nil
	}
}

type answer struct {
	code int
	body string
	err  error
}

func waitClosed(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not done after %v", what, timeout)
	}
}

// TestServerLifecycleStartServeStop: the server answers once started, a second Start fails, Stop closes it
// for good and every later Stop returns the same (nil) result.
func TestServerLifecycleStartServeStop(t *testing.T) {
	t.Parallel()
	s := newServer(t, newPinger(false))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	addr := s.Addr()
	if err := s.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if s.Addr() != addr {
		t.Fatalf("the second Start moved the server from %s to %s", addr, s.Addr())
	}
	mustGet(t, addr, "/healthz", "ok")
	mustGet(t, addr, "/readyz", "ready")

	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if code, body, err := get(addr, "/healthz"); err == nil {
		t.Fatalf("GET /healthz after Stop: %d %q", code, body)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

// TestServerLifecycleStopBeforeStart: Stop before Start returns nil, and a later Start fails rather than
// claim to serve on a server that was shut down.
func TestServerLifecycleStopBeforeStart(t *testing.T) {
	t.Parallel()
	s := newServer(t, newPinger(false))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestServerLifecycleStopWaitsForRequests: a graceful Stop stops accepting at once but lets the request in
// flight finish before it returns.
func TestServerLifecycleStopWaitsForRequests(t *testing.T) {
	t.Parallel()
	db := newPinger(true)
	s := newServer(t, db)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	addr := s.Addr()

	inFlight := make(chan answer, 1)
	go func() {
		code, body, err := get(addr, "/readyz")
		inFlight <- answer{code, body, err}
	}()
	waitClosed(t, db.entered, 5*time.Second, "the /readyz request to reach Ping")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	waitFor(t, 5*time.Second, "the listener to close", refused(addr))
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a request in flight", err)
	default:
	}
	close(db.block)
	a := <-inFlight
	if a.err != nil || a.code != http.StatusOK || strings.TrimSpace(a.body) != "ready" {
		t.Fatalf("request in flight during Stop: %d %q %v", a.code, a.body, a.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop has not returned after the last request finished")
	}
}

// TestServerLifecycleStopTimeout: a Stop whose ctx ends while a request hangs closes it and returns an
// error; a second Stop returns that same error.
func TestServerLifecycleStopTimeout(t *testing.T) {
	t.Parallel()
	db := newPinger(true)
	t.Cleanup(func() { close(db.block) })
	s := newServer(t, db)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	inFlight := make(chan error, 1)
	go func() {
		_, _, err := get(addr, "/readyz")
		inFlight <- err
	}()
	waitClosed(t, db.entered, 5*time.Second, "the /readyz request to reach Ping")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := s.Stop(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a hanging request: %v, want a deadline error", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Stop took %v with a 100ms ctx", took)
	}
	select {
	case err := <-inFlight:
		if err == nil {
			t.Fatal("the hanging request succeeded; its connection should have been closed")
		}
	case <-time.After(time.Second): // the handler's own 2 s timeout must not be what ends it
		t.Fatal("the hanging request's connection was not closed by the timed-out Stop")
	}
	if err2 := s.Stop(context.Background()); err2 != err {
		t.Fatalf("second Stop = %v, want the first's %v", err2, err)
	}
	if code, body, err := get(addr, "/healthz"); err == nil {
		t.Fatalf("GET /healthz after Stop: %d %q", code, body)
	}
}

// TestServerLifecycleHardStop: cancelling Start's ctx closes the server without Stop: no new requests, and
// the one in flight loses its connection and its ctx at once. Stop afterwards has nothing left to do.
func TestServerLifecycleHardStop(t *testing.T) {
	t.Parallel()
	db := newPinger(true)
	t.Cleanup(func() { close(db.block) })
	s := newServer(t, db)
	runCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	if err := s.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	mustGet(t, addr, "/healthz", "ok")
	inFlight := make(chan answer, 1)
	go func() {
		code, body, err := get(addr, "/readyz")
		inFlight <- answer{code, body, err}
	}()
	waitClosed(t, db.entered, 5*time.Second, "the /readyz request to reach Ping")

	hardStop()
	waitFor(t, time.Second, "the server to close after its ctx was cancelled", refused(addr))
	select {
	case a := <-inFlight:
		// Its handler sees the cancelled ctx and may still answer 503 before the connection is closed.
		if a.err == nil && a.code == http.StatusOK {
			t.Fatalf("the request in flight succeeded after a hard stop: %q", a.body)
		}
	case <-time.After(time.Second):
		t.Fatal("the request in flight is still open a second after a hard stop")
	}
	waitClosed(t, db.left, time.Second, "the handler of the request in flight")
	if err := db.endedWith(); !errors.Is(err, context.Canceled) {
		t.Fatalf("the handler's ctx ended with %v, want it cancelled by the hard stop", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop after a hard stop: %v", err)
	}
}

// stuckConsumer is joined and reports a stuck time the test sets.
type stuckConsumer struct {
	consumer
	mu    sync.Mutex
	stuck time.Duration
}

func (c *stuckConsumer) StuckFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stuck
}

func (c *stuckConsumer) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stuck = d
}

// TestReadinessMetrics: chainsink_ready and chainsink_stuck_seconds, which the alert rules read, say what
// /readyz says at the moment of the scrape.
func TestReadinessMetrics(t *testing.T) {
	m := metrics.New()
	c := &stuckConsumer{}
	s := server.New(server.Options{Addr: "127.0.0.1:0", StuckAfter: time.Minute}, m, newPinger(false), c,
		slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background()) //nolint:errcheck // the test checks the gauges
	for _, tc := range []struct {
		stuck time.Duration
		ready float64
	}{{0, 1}, {30 * time.Second, 1}, {2 * time.Minute, 0}, {0, 1}} {
		c.set(tc.stuck)
		code, _, err := get(s.Addr(), "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(m.Ready); got != tc.ready || (code == http.StatusOK) != (got == 1) {
			t.Errorf("stuck %v: chainsink_ready %v with /readyz %d; want %v", tc.stuck, got, code, tc.ready)
		}
		if got := testutil.ToFloat64(m.StuckSeconds); got != tc.stuck.Seconds() {
			t.Errorf("chainsink_stuck_seconds %v, want %v", got, tc.stuck.Seconds())
		}
	}
	// Postgres not answering makes the instance unready too.
	down := metrics.New()
	server.New(server.Options{Addr: "127.0.0.1:0", StuckAfter: time.Minute}, down, failingPinger{}, c,
		slog.New(slog.DiscardHandler))
	if got := testutil.ToFloat64(down.Ready); got != 0 {
		t.Errorf("chainsink_ready %v with Postgres down, want 0", got)
	}
	// Before any server reports readiness (another command's registry), the gauge says not ready.
	if got := testutil.ToFloat64(metrics.New().Ready); got != 0 {
		t.Errorf("chainsink_ready %v with nothing reporting, want 0", got)
	}
}

type failingPinger struct{}

func (failingPinger) Ping(context.Context) error { return errors.New("connection refused") }
