package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// binary is the chainsink executable under test, built once in TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chainsink-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "chainsink")
	build := exec.Command("go", "build", "-o", binary, "github.com/chainsink/chainsink/cmd/chainsink")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build chainsink:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `chainsink run`.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu   sync.Mutex
	logs []string
}

// runArgs are the flags every test's `chainsink run` shares.
func runArgs(cfg store.Config, brokers, group string, topics ...string) []string {
	return []string{"run", "--brokers", brokers, "--group", group, "--topics", strings.Join(topics, ","),
		"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema, "--log-format", "json", "--log-level", "info",
		"--kafka-config", "session.timeout.ms=6000", "--kafka-config", "heartbeat.interval.ms=500",
		"--kafka-config", "fetch.wait.max.ms=50", "--batch-max-age", "200ms"}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "CHAINSINK_DATABASE_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &proc{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
			if os.Getenv("CHAINSINK_TEST_LOG") != "" {
				fmt.Fprintf(os.Stderr, "[%d] %s\n", cmd.Process.Pid, sc.Text())
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// stop sends SIGTERM once the process has started consuming, and returns the exit error (nil for exit 0).
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	p.waitLog(t, "consumer started", 30*time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(60 * time.Second):
		t.Fatal("chainsink did not exit within 60s of SIGTERM")
		return nil
	}
}

// waitLog waits until a log line contains substr.
func (p *proc) waitLog(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "log line "+substr, func() (bool, error) {
		for _, l := range p.logLines() {
			if strings.Contains(l, substr) {
				return true, nil
			}
		}
		select {
		case <-p.done:
			return false, fmt.Errorf("chainsink exited (%v) before logging %q:\n%s", p.err, substr, strings.Join(p.logLines(), "\n"))
		default:
		}
		return false, nil
	})
}

func (p *proc) logLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

// waitCaughtUp waits until the stored offsets of group reach the broker's high watermarks on every topic.
func waitCaughtUp(t *testing.T, s *store.Store, b *localkafka.Broker, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	want := map[string]int64{}
	for _, topic := range topics {
		for p, hw := range b.HighWatermarks(topic) {
			if hw > 0 {
				want[fmt.Sprintf("%s/%d", topic, p)] = hw
			}
		}
	}
	waitFor(t, timeout, "stored offsets to reach the high watermarks", func() (bool, error) {
		offs, err := store.ListOffsets(context.Background(), s.Pool(), group)
		if err != nil {
			return false, err
		}
		got := map[string]int64{}
		for _, o := range offs {
			got[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.NextOffset
		}
		for k, v := range want {
			if got[k] != v {
				return false, nil
			}
		}
		return true, nil
	})
}

// waitFor polls cond until it holds; a wait on a condition, never a fixed sleep.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil && !store.IsTransient(err) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func newBroker(t *testing.T, topics map[string]int32) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(localkafka.Options{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func migratedStore(t *testing.T) (*store.Store, store.Config) {
	t.Helper()
	return pgtest.Open(t)
}

// queryStrings runs q, whose rows are one text column each, and returns them in order.
func queryStrings(t *testing.T, db store.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applyTables runs `chainsink tables apply` of the typed tables configuration file conf in cfg's schema.
func applyTables(t *testing.T, cfg store.Config, conf string) {
	t.Helper()
	if _, errOut, err := runCmd(t, "tables", "apply", "--config", conf, "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema); err != nil {
		t.Fatalf("tables apply: %v\n%s", err, errOut)
	}
}

// writeTables writes a typed tables configuration into the test's temporary directory, applies it in cfg's
// schema and returns the file's path, for `chainsink run --config`.
func writeTables(t *testing.T, cfg store.Config, yaml string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "chainsink.yaml")
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	applyTables(t, cfg, conf)
	return conf
}
