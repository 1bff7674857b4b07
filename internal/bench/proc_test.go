package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/pgtest"
)

// TestPostgresCPUCountsExitedBackends: the CPU of a backend whose client has disconnected before the second
// snapshot is still in the difference. The rpc scenario stops backfill and run, and with them their
// backends, before it reads Postgres's CPU.
func TestPostgresCPUCountsExitedBackends(t *testing.T) {
	ctx := context.Background()
	if len(postgresCPU()) == 0 {
		t.Skip("no postgres process in this machine's /proc (Postgres runs elsewhere): nothing to count")
	}
	before := postgresCPU()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Work until the backend has used at least 0.2 CPU-s, whatever the machine's speed.
	var used float64
	for used < 0.2 {
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM generate_series(1, 2000000)`); err != nil {
			t.Fatal(err)
		}
		if used, _, err = procCPU(pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The postmaster adds an exited backend's times to its own children's once it has waited for it, which
	// is when its /proc entry goes.
	gone := time.NewTicker(time.Millisecond)
	defer gone.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("backend %d still in /proc 10 s after its client disconnected", pid)
		case <-gone.C:
		}
	}
	if got := postgresCPU().since(before); got < used {
		t.Fatalf("postgresCPU counted %.2f CPU-s, the exited backend alone used %.2f", got, used)
	}
}
