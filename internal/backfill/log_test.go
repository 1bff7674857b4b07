package backfill_test

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// testLogger sends a test's logs to t.Log when CHAINSINK_TEST_LOG is set, and nowhere otherwise.
type testLogger struct{ t *testing.T }

type tWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (l *testLogger) slog() *slog.Logger {
	if os.Getenv("CHAINSINK_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(&tWriter{t: l.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
