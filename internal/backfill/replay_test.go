package backfill_test

import (
	"bytes"
	"context"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/rpcreplay"
)

// TestBackfillFromARecording: a backfill through rpcreplay's Recorder in front of the simulated node, the
// answers written and read back, the node shut down, and the same backfill against rpcreplay's Server: the
// same bundles, byte for byte; a request outside the recording fails with its name.
func TestBackfillFromARecording(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newChain(t)
	w := c.deployWETH()
	c.commit(c.send(1, &w.addr, big.NewInt(5e17), w.pack(t, "deposit"), 300_000, false), c.transfer(0, 2, 7, true))
	c.commit(c.send(1, &w.addr, big.NewInt(0), w.pack(t, "transfer", c.addrs[2], big.NewInt(2e17)), 300_000, false))
	head := c.head()

	rec := rpcreplay.NewRecorder(c.url)
	proxy := httptest.NewServer(rec)
	defer proxy.Close()
	b := newBroker(t, "live", 1) // "replayed" is created by the first publish (one partition)
	s, _ := pgtest.Open(t)
	cps := backfill.StoreCheckpoints{DB: s.Pool()}
	cfg := backfill.Config{Topic: "live", From: 0, To: backfill.Target{Number: head}, BatchSize: 2, Concurrency: 2}
	if _, err := runBackfill(t, ctx, cfg, proxy.URL, newPublisher(t, b, "live"), cps, nil); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := rec.Answers.Write(&file); err != nil {
		t.Fatal(err)
	}
	answers, err := rpcreplay.ReadAnswers(&file)
	if err != nil || answers.Len() != rec.Answers.Len() || answers.Len() < int(head+1) {
		t.Fatalf("%d answers read back of %d recorded (%v)", answers.Len(), rec.Answers.Len(), err)
	}
	_ = c.backend.Close() // from here on there is no node

	replay := &rpcreplay.Server{Answers: answers}
	srv := httptest.NewServer(replay)
	defer srv.Close()
	cfg.Topic, cfg.Job = "replayed", "replayed"
	if _, err := runBackfill(t, ctx, cfg, srv.URL, newPublisher(t, b, "replayed"), cps, nil); err != nil {
		t.Fatalf("backfill from the recording: %v (missed %v)", err, replay.Missed())
	}
	live, replayed := consume(t, b, "live"), consume(t, b, "replayed")
	if len(live) != int(head+1) || len(replayed) != len(live) {
		t.Fatalf("%d bundles live, %d replayed, want %d", len(live), len(replayed), head+1)
	}
	for k, rs := range live {
		if got := replayed[k]; len(got) != 1 || !bytes.Equal(got[0].value, rs[0].value) {
			t.Errorf("bundle %s differs when replayed", k)
		}
	}
	if replay.Served() == 0 || len(replay.Missed()) != 0 {
		t.Errorf("served %d requests, missed %v", replay.Served(), replay.Missed())
	}

	// A request that was never recorded (the traces of a block): it fails, naming itself.
	f, err := backfill.DialRPC(ctx, srv.URL, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg = backfill.Config{Topic: "replayed", Job: "traced", From: 1, To: backfill.Target{Number: 1}, MaxAttempts: 1}
	_, err = backfill.Run(ctx, cfg, backfill.Deps{Fetcher: f.WithTraces(), Publisher: newPublisher(t, b, "replayed"), Checkpoints: cps})
	if err == nil || !strings.Contains(err.Error(), "not recorded: debug_traceBlockByNumber") {
		t.Errorf("a request outside the recording: %v", err)
	}
}
