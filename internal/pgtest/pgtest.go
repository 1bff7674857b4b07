package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
)

// DefaultURL is the test server when CHAINSINK_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL is the test server's URL.
func URL() string {
	if u := os.Getenv("CHAINSINK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// EmptySchema returns a config for a fresh schema name that does not exist yet; the schema (if the test
// creates it) is dropped when the test ends.
func EmptySchema(t testing.TB) store.Config {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	schema := "t_" + name + "_" + hex.EncodeToString(rnd[:])
	cfg := store.Config{DatabaseURL: URL(), Schema: schema, MaxConns: 16}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return cfg
}

// Schema returns a config for a fresh, fully migrated schema.
func Schema(t testing.TB) store.Config {
	t.Helper()
	cfg := EmptySchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := store.NewMigrator(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("migrator: %v", err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	return cfg
}

// Open returns a store on a fresh, fully migrated schema, closed when the test ends.
func Open(t testing.TB) (*store.Store, store.Config) {
	t.Helper()
	cfg := Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s, cfg
}

// WaitForLockWait waits until a backend of application waits on a lock (pg_stat_activity wait_event_type
// 'Lock'): the proof that two transactions overlap, rather than a hope that scheduling made them. It fails the
// test after 30 s.
func WaitForLockWait(t testing.TB, db store.DB, application string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting bool
		err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, application).Scan(&waiting)
		if err != nil {
			t.Fatalf("waiting for %s to wait on a lock: %v", application, err)
		}
		if waiting {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never waited on a lock", application)
		case <-tick.C:
		}
	}
}
