package backfill_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/backfill"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBackfillProgress(t *testing.T) {
	var bar syncBuffer
	p := &backfill.BarProgress{W: &bar}
	p.Start(10)
	p.Add(4)
	p.Add(6)
	p.Finish()
	if out := bar.String(); !strings.Contains(out, "10/10") || !strings.Contains(out, "blocks/s") {
		t.Fatalf("progress bar output %q", out)
	}

	var logs syncBuffer
	lp := &backfill.LogProgress{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Interval: 10 * time.Millisecond}
	lp.Start(100)
	lp.Add(30)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(logs.String(), "blocks_done=30") { // wait on the line itself, polled
		if time.Now().After(deadline) {
			t.Fatalf("no progress line in %q", logs.String())
		}
		<-tick.C
	}
	lp.Finish()
	if out := logs.String(); !strings.Contains(out, "blocks_total=100") || !strings.Contains(out, "blocks_per_second=") ||
		!strings.Contains(out, "eta=") {
		t.Fatalf("progress line %q", out)
	}
}
