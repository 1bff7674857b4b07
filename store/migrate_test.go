package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgtest.EmptySchema(t)
	if err := store.CheckMigrated(ctx, cfg); !errors.Is(err, store.ErrPendingMigrations) {
		t.Fatalf("fresh schema: CheckMigrated = %v, want ErrPendingMigrations", err)
	}
	m, err := store.NewMigrator(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	applied, err := m.Up(ctx)
	if err != nil || len(applied) == 0 {
		t.Fatalf("up: %d applied, %v", len(applied), err)
	}
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != "applied" {
			t.Fatalf("after up, migration %d is %s", s.Source.Version, s.State)
		}
	}
	if err := store.CheckMigrated(ctx, cfg); err != nil {
		t.Fatalf("CheckMigrated after up: %v", err)
	}
	current, latest, err := m.Version(ctx)
	if err != nil || current != latest {
		t.Fatalf("version %d/%d, %v", current, latest, err)
	}

	if _, err := m.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if current, _, err := m.Version(ctx); err != nil || current != 0 {
		t.Fatalf("after down-to 0, version = %d (%v)", current, err)
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Gone means "undefined table", not any error (a lost connection would pass for it).
	var pgErr *pgconn.PgError
	if _, err := store.CountRows(ctx, s.Pool()); !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.UndefinedTable {
		t.Fatalf("counting rows after down-to 0 = %v, want undefined table (42P01)", err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if _, err := store.CountRows(ctx, s.Pool()); err != nil {
		t.Fatalf("tables after up again: %v", err)
	}
}

func TestConcurrentMigrateUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgtest.EmptySchema(t)
	var wg sync.WaitGroup
	applied := make([]int, 3)
	errs := make([]error, 3)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := store.NewMigrator(ctx, cfg, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			res, err := m.Up(ctx)
			applied[i], errs[i] = len(res), err
		}()
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	m, err := store.NewMigrator(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, latest, err := m.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(total) != latest {
		t.Fatalf("migrations applied %d times in all, want each of %d once", total, latest)
	}
}

func TestUnreachableDatabaseFailsFast(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := store.NewMigrator(context.Background(), store.Config{DatabaseURL: "postgres://nobody@127.0.0.1:1/x"}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}
