package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chainsink/chainsink/internal/metrics"
)

// Pinger is what readiness asks of Postgres.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Consumer is what health and readiness ask of the indexer.
type Consumer interface {
	Joined() bool
	LastPoll() time.Time
	StuckFor() time.Duration
	// Anomalies describes the partitions held because their stored offset is outside their log.
	Anomalies() []string
}

// Server is the HTTP endpoint. Start it once; cancelling Start's ctx closes it at once, Stop shuts it down
// gracefully and may be called more than once.
type Server struct {
	addr       string
	srv        *http.Server
	ln         net.Listener
	startOnce  sync.Once
	stopOnce   sync.Once
	stopped    atomic.Bool
	stopErr    error
	db         Pinger
	consumer   Consumer
	stuckAfter time.Duration
	log        *slog.Logger
}

// Options configure a Server.
type Options struct {
	// Addr is the listen address, e.g. ":9090".
	Addr string
	// StuckAfter is how long a partition may retry one batch before /readyz fails.
	StuckAfter time.Duration
	// Profiling serves net/http/pprof's profiles under /debug/pprof/. It is off unless asked for: profiles
	// show internals and a CPU profile costs CPU. /debug/pprof/cmdline is left out on purpose, since the
	// command line may hold --database-url with its password.
	Profiling bool
}

// New prepares a server.
func New(o Options, m *metrics.Metrics, db Pinger, c Consumer, log *slog.Logger) *Server {
	s := &Server{addr: o.Addr, db: db, consumer: c, stuckAfter: o.StuckAfter, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if o.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.ReportReadiness(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		return len(s.problems(ctx)) == 0
	}, c.StuckFor)
	return s
}

// readyTimeout bounds the Postgres ping of one readiness check.
const readyTimeout = 2 * time.Second

// Start listens and serves in the background. When ctx is cancelled the server is closed at once, open
// connections included. Start fails if called twice.
func (s *Server) Start(ctx context.Context) error {
	err := errors.New("server already started")
	s.startOnce.Do(func() {
		if s.stopped.Load() {
			err = errors.New("server already stopped")
			return
		}
		err = s.start(ctx)
	})
	return err
}

func (s *Server) start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	go func() {
		defer stop()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "error", err)
		}
	}()
	s.log.Info("serving /metrics, /healthz and /readyz", "addr", ln.Addr().String())
	return nil
}

// Addr is the address actually listened on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop stops accepting requests and waits for those in flight until ctx is done, when it closes what is
// left. It is safe to call more than once and before Start; every call returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
			s.stopErr = fmt.Errorf("shut down metrics server: %w", err)
		}
	})
	return s.stopErr
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if last := s.consumer.LastPoll(); !last.IsZero() && time.Since(last) > time.Minute {
		http.Error(w, fmt.Sprintf("poll loop has not turned for %s\n", time.Since(last).Round(time.Second)), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	problems := s.problems(ctx)
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			fmt.Fprintln(w, p)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}

// problems is what keeps the instance from being ready, for /readyz and chainsink_ready.
func (s *Server) problems(ctx context.Context) []string {
	var problems []string
	if err := s.db.Ping(ctx); err != nil {
		problems = append(problems, "postgres: "+err.Error())
	}
	if !s.consumer.Joined() {
		problems = append(problems, "kafka: consumer has not joined its group yet")
	}
	for _, a := range s.consumer.Anomalies() {
		problems = append(problems, "offset anomaly: "+a)
	}
	if d := s.consumer.StuckFor(); d > s.stuckAfter {
		problems = append(problems, fmt.Sprintf("a partition has been retrying its batch for %s", d.Round(time.Second)))
	}
	return problems
}
