package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPostgresRestart restarts the PostgreSQL server while chainsink writes. It needs to run alone, since the
// restart breaks every other test's connections: `make test` runs it in a separate step with
// CHAINSINK_TEST_PG_RESTART=1 after the parallel suite.
func TestPostgresRestart(t *testing.T) {
	if os.Getenv("CHAINSINK_TEST_PG_RESTART") == "" {
		t.Skip("restarts the shared PostgreSQL server: run alone with CHAINSINK_TEST_PG_RESTART=1 (make test does)")
	}
	versions, _ := filepath.Glob("/etc/postgresql/*/main")
	if len(versions) == 0 {
		t.Fatal("no local PostgreSQL cluster under /etc/postgresql to restart")
	}
	version := filepath.Base(filepath.Dir(versions[len(versions)-1]))
	ctx := context.Background()
	recs := crashWorkload(t, 3000)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	half := len(recs) / 2
	if err := b.Produce(ctx, recs[:half]); err != nil {
		t.Fatal(err)
	}
	p := start(t, append(runArgs(cfg, b.Addr(), "pgrestart", crashTopic+":ethereum-etl"), "--batch-max-rows", "100", "--metrics-addr", "127.0.0.1:0")...)
	readyz := "http://" + p.metricsAddr(t) + "/readyz"
	waitFor(t, 30*time.Second, "progress", func() (bool, error) {
		n, err := storedTotal(s, "pgrestart")
		return n > 0, err
	})
	// The restart is a stop, new messages while the server is down (so that writes fail for sure), and a start.
	pgctl := func(action string) {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action).CombinedOutput()
		if err != nil {
			t.Fatalf("pg_ctlcluster %s: %v\n%s", action, err, out)
		}
	}
	pgctl("stop")
	restarted := false
	defer func() {
		if !restarted {
			pgctl("start")
		}
	}()
	if err := b.Produce(ctx, recs[half:]); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "retrying", 30*time.Second)
	if code := httpStatus(t, readyz); code != 503 {
		t.Errorf("/readyz with Postgres down = %d, want 503", code)
	}
	pgctl("start")
	restarted = true
	waitFor(t, 30*time.Second, "/readyz to turn ready again", func() (bool, error) {
		return httpStatus(t, readyz) == 200, nil
	})
	waitCaughtUp(t, s, b, "pgrestart", 120*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireSameContents(t, cfg, want)
}
