package store_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// secondaryIndexDefs returns pg_indexes.indexdef of every index of the data tables that is not a primary key.
// The schema qualifier of the table is removed.
func secondaryIndexDefs(t *testing.T, s *store.Store, schema string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `
		SELECT x.indexdef FROM pg_indexes x
		JOIN pg_class c ON c.relname = x.indexname AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = x.schemaname)
		JOIN pg_index i ON i.indexrelid = c.oid
		WHERE x.schemaname = current_schema() AND x.tablename = ANY($1) AND NOT i.indisprimary AND NOT c.relispartition
		ORDER BY x.indexname`, chain.CoreTables.Names())
	if err != nil {
		t.Fatal(err)
	}
	defs, err := collectStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	for i := range defs {
		// A partitioned table's own index covers only it (ON ONLY); its partitions' indexes are attached to it.
		defs[i] = strings.Replace(strings.Replace(defs[i], " ON ONLY ", " ON ", 1), " ON "+schema+".", " ON ", 1)
	}
	return defs
}

func collectStrings(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func wantIndexDefs() []string {
	var want []string
	for _, ix := range store.SecondaryIndexes {
		want = append(want, ix.Definition())
	}
	slices.Sort(want)
	return want
}

// TestSecondaryIndexesMatchMigrations keeps store.SecondaryIndexes equal to what the migrations create: a
// migration that changes an index must change the list, or deferring indexes would lose or miss one.
func TestSecondaryIndexesMatchMigrations(t *testing.T) {
	t.Parallel()
	s, cfg := pgtest.Open(t)
	got := secondaryIndexDefs(t, s, cfg.Schema)
	if want := wantIndexDefs(); !slices.Equal(got, want) {
		t.Fatalf("secondary indexes of a migrated schema:\n got %q\nwant %q", got, want)
	}
}

func TestDropAndCreateSecondaryIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	dropped, err := store.DropSecondaryIndexes(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != len(store.SecondaryIndexes) {
		t.Fatalf("dropped %d indexes, want %d", len(dropped), len(store.SecondaryIndexes))
	}
	if got := secondaryIndexDefs(t, s, cfg.Schema); len(got) != 0 {
		t.Fatalf("after drop, secondary indexes left: %q", got)
	}
	// Dropping again is a no-op; the exactly-once write still works (it needs only the primary keys).
	if again, err := store.DropSecondaryIndexes(ctx, s.Pool()); err != nil || len(again) != 0 {
		t.Fatalf("second drop: %v, %v", again, err)
	}
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(msg(0, sampleRows(5)))
	b.Add(msg(1, sampleRows(5))) // supersedes the first
	if _, err := store.WriteBatch(ctx, s.Pool(), b); err != nil {
		t.Fatal(err)
	}

	// An interrupted concurrent build leaves an invalid index behind; create must replace it.
	if _, err := s.Pool().Exec(ctx, `CREATE INDEX blocks_timestamp_idx ON blocks ("timestamp")`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid =
		(SELECT oid FROM pg_class WHERE relname = 'blocks_timestamp_idx'
		 AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))`); err != nil {
		t.Fatal(err)
	}
	built, err := store.CreateSecondaryIndexes(ctx, s.Pool(), store.IndexBuildOptions{Workers: 2, MaintenanceWorkMem: "64MB"})
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != len(store.SecondaryIndexes) {
		t.Fatalf("built %d indexes, want %d: %v", len(built), len(store.SecondaryIndexes), built)
	}
	if got, want := secondaryIndexDefs(t, s, cfg.Schema), wantIndexDefs(); !slices.Equal(got, want) {
		t.Fatalf("after create:\n got %q\nwant %q", got, want)
	}
	st, err := store.SecondaryIndexStatus(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	for _, ix := range st {
		if !ix.Present || !ix.Valid {
			t.Fatalf("index %s: present %v valid %v", ix.Name, ix.Present, ix.Valid)
		}
	}
	if again, err := store.CreateSecondaryIndexes(ctx, s.Pool(), store.IndexBuildOptions{}); err != nil || len(again) != 0 {
		t.Fatalf("second create: %v, %v", again, err)
	}

	// The CONCURRENTLY path runs in TestCreateSecondaryIndexesConcurrently, in a database of its own.
	if _, err := store.CreateSecondaryIndexes(ctx, s.Pool(), store.IndexBuildOptions{MaintenanceWorkMem: "1GB; DROP TABLE logs"}); err == nil {
		t.Fatal("an invalid maintenance_work_mem was accepted")
	}
}

// TestCreateSecondaryIndexesConcurrently runs the CONCURRENTLY build (`chainsink migrate indexes create
// --concurrently`) in a database of its own: such a build waits for every older transaction of its database,
// which the parallel tests of the shared one would keep it doing. A writer commits batches during the build,
// which is what CONCURRENTLY is for, and every index ends valid.
func TestCreateSecondaryIndexesConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("chainsink_concurrently_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	// On a connection of its own: admin is closed by the time cleanups run, and a DROP on it failed silently,
	// leaving one database behind per run.
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, pgtest.URL())
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	cfg := store.Config{DatabaseURL: u.String(), Schema: "public"}
	m, err := store.NewMigrator(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := store.DropSecondaryIndexes(ctx, s.Pool()); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		// One block per batch, until the build is done: every commit is a writer the build did not lock out.
		n := 0
		for {
			select {
			case <-stop:
				if n == 0 {
					wrote <- fmt.Errorf("no batch committed during the build")
					return
				}
				wrote <- nil
				return
			default:
			}
			b := store.NewBatch("g", "blocks", 0, int64(n), chain.ReplaceBlocks)
			b.Add(msg(int64(n), sampleRows(uint64(100+n))))
			if _, err := store.WriteBatch(ctx, s.Pool(), b); err != nil {
				wrote <- err
				return
			}
			n++
		}
	}()
	built, err := store.CreateSecondaryIndexes(ctx, s.Pool(), store.IndexBuildOptions{Concurrently: true, Workers: 2})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if len(built) != len(store.SecondaryIndexes) {
		t.Fatalf("built %d indexes, want %d", len(built), len(store.SecondaryIndexes))
	}
	st, err := store.SecondaryIndexStatus(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	for _, ix := range st {
		if !ix.Present || !ix.Valid {
			t.Fatalf("index %s: present %v valid %v", ix.Name, ix.Present, ix.Valid)
		}
	}
}
