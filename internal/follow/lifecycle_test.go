package follow_test

import (
	"context"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/follow"
	"github.com/chainsink/chainsink/internal/pgtest"
)

// The lifecycle every long-running piece has: Start twice starts once, Stop ends a follower that is busy
// retrying an unreachable node (a real JSON-RPC client to a closed port) and returns nil, again and again;
// Stop before Start leaves nothing to start.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	node, err := backfill.DialRPC(ctx, "http://127.0.0.1:1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	f := follow.New(follow.Config{Topic: "blocks", RetryBase: 10 * time.Millisecond}, node, nil, s.Pool(), nil, nil)
	for range 2 {
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// It is running: it has turned its loop at least once, and failed.
	deadline := time.Now().Add(10 * time.Second)
	for f.StuckFor() == 0 && time.Now().Before(deadline) {
		select {
		case <-f.Done():
			t.Fatalf("the follower stopped by itself: %v", f.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if f.StuckFor() == 0 {
		t.Fatal("the follower never tried the node")
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for range 2 {
		if err := f.Stop(sctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}

	never := follow.New(follow.Config{Topic: "blocks"}, node, nil, s.Pool(), nil, nil)
	if err := never.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if err := never.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-never.Done():
	default:
		t.Fatal("Start after Stop started the follower")
	}
}
