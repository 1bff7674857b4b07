package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTwoInstancesOneGroup: a second instance joins while the first is in the middle of a backlog, so the
// partitions it takes over are revoked from the first with work in hand; ownership is read from both
// instances' chainsink_assigned_partitions. Later the first is SIGKILLed in the middle of the next backlog, with
// batches open, and the second takes over the rest once the first's session times out. Every row exactly once.
func TestTwoInstancesOneGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 8000)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	// Half the input before the second instance joins (enough to be mid-backlog when it does), a fifth
	// between, the rest before the kill.
	half, more := len(recs)/2, len(recs)*7/10
	// Small batches and queues: a backlog takes seconds, so that the rebalance and the kill find work in hand.
	args := append(runArgs(cfg, b.Addr(), "pair", crashTopic+":ethereum-etl"), "--batch-max-rows", "20",
		"--queue-max-bytes", "32768", "--kafka-config", "queued.max.messages.kbytes=64", "--metrics-addr", "127.0.0.1:0")
	stored := func() int64 {
		n, err := storedTotal(s, "pair")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	owned := func(p *proc, addr string) int {
		select {
		case <-p.done:
			return 0
		default:
		}
		return int(scrape(t, "http://"+addr+"/metrics")["chainsink_assigned_partitions"])
	}

	if err := b.Produce(ctx, recs[:half]); err != nil {
		t.Fatal(err)
	}
	first := start(t, args...)
	firstAddr := first.metricsAddr(t)
	waitFor(t, 30*time.Second, "the first instance's progress", func() (bool, error) { return stored() > 0, nil })
	if owned(first, firstAddr) != 4 {
		t.Fatalf("the first instance owns %d partitions alone, want 4", owned(first, firstAddr))
	}

	second := start(t, args...)
	secondAddr := second.metricsAddr(t)
	// Cooperative-sticky: the first instance gives up some partitions, the second gets them.
	first.waitLog(t, "partitions revoked", 30*time.Second)
	if n := stored(); n >= int64(half) {
		t.Fatalf("the first instance had drained its backlog (%d) before the rebalance: nothing was in hand", n)
	} else {
		t.Logf("rebalance with %d of %d messages stored", n, half)
	}
	waitFor(t, 30*time.Second, "the partitions to be split between the two", func() (bool, error) {
		a, b := owned(first, firstAddr), owned(second, secondAddr)
		return a > 0 && b > 0 && a+b == 4, nil
	})
	if err := b.Produce(ctx, recs[half:more]); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, "pair", 120*time.Second, crashTopic)

	before := stored()
	if err := b.Produce(ctx, recs[more:]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "progress on the last backlog", func() (bool, error) { return stored() > before, nil })
	if n := stored(); n >= int64(len(recs)) {
		t.Fatalf("the last backlog was drained (%d) before the kill", n)
	}
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	<-first.done
	waitCaughtUp(t, s, b, "pair", 120*time.Second, crashTopic)
	if n := owned(second, secondAddr); n != 4 {
		t.Errorf("after the kill the second instance owns %d partitions, want 4", n)
	}
	if err := second.stop(t); err != nil {
		t.Fatalf("second instance exited with %v:\n%s", err, strings.Join(second.logLines(), "\n"))
	}
	requireSameContents(t, cfg, want)
}

// TestStaticMemberResumesAtOnce: a StatefulSet pod SIGKILLed and restarted under the same --instance-id gets
// its partitions back without waiting out the session timeout (30 s here), and stores everything exactly once.
// Measured before the flag existed: 45.3 s with the default session timeout, 0.2 s with group.instance.id.
func TestStaticMemberResumesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 1200)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	args := append(runArgs(cfg, b.Addr(), "static", crashTopic+":ethereum-etl"), "--instance-id", "pod-0",
		"--kafka-config", "session.timeout.ms=30000", "--batch-max-rows", "200")
	half := len(recs) / 2
	if err := b.Produce(ctx, recs[:half]); err != nil {
		t.Fatal(err)
	}
	first := start(t, args...)
	first.waitLog(t, "partitions assigned", 30*time.Second)
	waitCaughtUp(t, s, b, "static", 60*time.Second, crashTopic)
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	<-first.done

	restarted := time.Now()
	second := start(t, args...)
	if err := b.Produce(ctx, recs[half:]); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, "static", 60*time.Second, crashTopic)
	if took := time.Since(restarted); took > 15*time.Second {
		t.Fatalf("the restarted static member caught up after %v; a dynamic one waits out the 30s session", took)
	}
	t.Logf("restarted static member caught up in %v", time.Since(restarted).Round(10*time.Millisecond))
	if err := second.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	requireSameContents(t, cfg, want)
}
