package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Deferring the secondary indexes during a backfill (DropSecondaryIndexes, CreateSecondaryIndexes), which
// `chainsink migrate indexes` and cmd/chainsink-bench use.

// SecondaryIndex is an index of a data table other than its primary key: what an analyst's query needs and
// what a backfill may defer. Primary keys are never deferred: the replacement deletes of every batch use them.
type SecondaryIndex struct {
	Name  string
	Table string
	// Columns is the index's key list as pg_get_indexdef prints it, parentheses included.
	Columns string
}

// Create is the statement that builds the index in the current schema (search_path).
func (ix SecondaryIndex) Create(concurrently bool) string {
	c := ""
	if concurrently {
		c = "CONCURRENTLY "
	}
	return fmt.Sprintf("CREATE INDEX %sIF NOT EXISTS %s ON %s USING btree %s", c, ix.Name, ix.Table, ix.Columns)
}

// Definition is the index as pg_indexes.indexdef shows it, less the table's schema qualifier.
func (ix SecondaryIndex) Definition() string {
	return fmt.Sprintf("CREATE INDEX %s ON %s USING btree %s", ix.Name, ix.Table, ix.Columns)
}

// SecondaryIndexes are the secondary indexes of the data tables, exactly as the migrations create them. A test
// (TestSecondaryIndexesMatchMigrations) compares this list with pg_indexes of a freshly migrated schema, so a
// migration that adds, drops or changes an index must update it. Indexes that are not listed (an operator's
// own) are never dropped by DropSecondaryIndexes.
var SecondaryIndexes = []SecondaryIndex{
	{"blocks_timestamp_idx", "blocks", `("timestamp")`},
	{"transactions_hash_idx", "transactions", "(hash)"},
	{"transactions_to_address_idx", "transactions", "(to_address, block_number)"},
	{"logs_address_block_idx", "logs", "(address, block_number)"},
	{"logs_topic0_block_idx", "logs", "(topic0, block_number)"},
	{"token_transfers_token_block_idx", "token_transfers", "(token_address, block_number)"},
	{"token_transfers_from_block_idx", "token_transfers", "(from_address, block_number)"},
	{"token_transfers_to_block_idx", "token_transfers", "(to_address, block_number)"},
	{"events_address_name_block_idx", "events", "(address, event_name, block_number)"},
	{"calls_to_method_block_idx", "calls", "(to_address, method_name, block_number)"},
	{"traces_to_block_idx", "traces", "(to_address, block_number)"},
	{"traces_from_block_idx", "traces", "(from_address, block_number)"},
	{"contracts_address_idx", "contracts", "(address)"},
}

// IndexState is a secondary index and whether the current schema has it.
type IndexState struct {
	SecondaryIndex
	Present bool
	// Valid is false for an index left behind by a failed CREATE INDEX CONCURRENTLY; queries ignore it.
	Valid bool
}

// SecondaryIndexStatus says which of SecondaryIndexes the current schema (search_path) has.
func SecondaryIndexStatus(ctx context.Context, db DB) ([]IndexState, error) {
	rows, err := db.Query(ctx, `
		SELECT c.relname, i.indisvalid FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	valid := map[string]bool{}
	for rows.Next() {
		var name string
		var ok bool
		if err := rows.Scan(&name, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan index: %w", err)
		}
		valid[name] = ok
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	out := make([]IndexState, len(SecondaryIndexes))
	for i, ix := range SecondaryIndexes {
		v, ok := valid[ix.Name]
		out[i] = IndexState{SecondaryIndex: ix, Present: ok, Valid: v}
	}
	return out, nil
}

// DropSecondaryIndexes drops every index of SecondaryIndexes that the current schema has, in one transaction,
// and returns the names it dropped. Primary keys stay. Writes become cheaper (each row updates only its primary
// key), and analysts' queries by address, topic or hash become full scans until CreateSecondaryIndexes runs.
// DROP INDEX waits for the tables' running queries and blocks new ones until it commits.
func DropSecondaryIndexes(ctx context.Context, db DB) ([]string, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	st, err := SecondaryIndexStatus(ctx, tx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, s := range st {
		if !s.Present {
			continue
		}
		if _, err := tx.Exec(ctx, "DROP INDEX "+s.Name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", s.Name, err)
		}
		dropped = append(dropped, s.Name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit index drop: %w", err)
	}
	return dropped, nil
}

var memSetting = regexp.MustCompile(`^[0-9]+ ?(kB|MB|GB|TB)?$`)

// IndexBuildOptions tune CreateSecondaryIndexes.
type IndexBuildOptions struct {
	// Workers builds this many indexes at once, each on its own connection. Default 1. Postgres also
	// parallelises one build over max_parallel_maintenance_workers, so 2 is plenty on a small server.
	Workers int
	// MaintenanceWorkMem is the sort memory of each build, e.g. "512MB"; empty keeps the server's setting.
	// Workers × MaintenanceWorkMem must fit in RAM.
	MaintenanceWorkMem string
	// Concurrently uses CREATE INDEX CONCURRENTLY: writers (chainsink run) go on during the build, which
	// then takes about twice as long. Without it each table is write-locked while its indexes build.
	Concurrently bool
}

// CreateSecondaryIndexes builds every index of SecondaryIndexes that the current schema lacks and returns the
// names it built. It is idempotent: after an interruption, run it again. An invalid index left by an
// interrupted concurrent build is dropped and rebuilt. Builds have no statement timeout.
func CreateSecondaryIndexes(ctx context.Context, pool *pgxpool.Pool, o IndexBuildOptions) ([]string, error) {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaintenanceWorkMem != "" && !memSetting.MatchString(o.MaintenanceWorkMem) {
		return nil, fmt.Errorf("maintenance_work_mem %q: want a size such as 512MB", o.MaintenanceWorkMem)
	}
	st, err := SecondaryIndexStatus(ctx, pool)
	if err != nil {
		return nil, err
	}
	// Work is handed out by table when building concurrently: two CREATE INDEX CONCURRENTLY on one table
	// deadlock (each waits for the other's transaction). Plain builds of one table may run side by side.
	var todo [][]IndexState
	byTable := map[string]int{}
	for _, s := range st {
		if s.Present && s.Valid {
			continue
		}
		if i, ok := byTable[s.Table]; ok && o.Concurrently {
			todo[i] = append(todo[i], s)
			continue
		}
		byTable[s.Table] = len(todo)
		todo = append(todo, []IndexState{s})
	}
	// One goroutine per unit, at most Workers at a time; the first error cancels the builds still running.
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	var (
		mu    sync.Mutex
		built []string
	)
	for _, unit := range todo {
		g.Go(func() error {
			for _, s := range unit {
				if err := buildIndex(ctx, pool, s, o); err != nil {
					return err
				}
				mu.Lock()
				built = append(built, s.Name)
				mu.Unlock()
			}
			return nil
		})
	}
	return built, g.Wait()
}

func buildIndex(ctx context.Context, pool *pgxpool.Pool, s IndexState, o IndexBuildOptions) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("build index %s: %w", s.Name, err)
	}
	defer conn.Release()
	settings := []string{"SET statement_timeout = 0"}
	if o.MaintenanceWorkMem != "" {
		settings = append(settings, "SET maintenance_work_mem = '"+o.MaintenanceWorkMem+"'")
	}
	if o.Concurrently {
		// CONCURRENTLY cannot run in a transaction block: session settings, reset afterwards.
		for _, q := range settings {
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("build index %s: %s: %w", s.Name, q, err)
			}
		}
		defer func() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "RESET statement_timeout; RESET maintenance_work_mem")
		}()
		var partitioned bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass($1))`,
			s.Table).Scan(&partitioned); err != nil {
			return fmt.Errorf("build index %s: %w", s.Name, err)
		}
		if partitioned {
			return buildPartitionedIndex(ctx, conn, s)
		}
		if s.Present && !s.Valid {
			if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+s.Name); err != nil {
				return fmt.Errorf("drop invalid index %s: %w", s.Name, err)
			}
		}
		if _, err := conn.Exec(ctx, s.Create(true)); err != nil {
			return fmt.Errorf("create index %s: %w", s.Name, err)
		}
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("build index %s: %w", s.Name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	for _, q := range settings {
		if _, err := tx.Exec(ctx, strings.Replace(q, "SET ", "SET LOCAL ", 1)); err != nil {
			return fmt.Errorf("build index %s: %s: %w", s.Name, q, err)
		}
	}
	if s.Present && !s.Valid {
		if _, err := tx.Exec(ctx, "DROP INDEX IF EXISTS "+s.Name); err != nil {
			return fmt.Errorf("drop invalid index %s: %w", s.Name, err)
		}
	}
	if _, err := tx.Exec(ctx, s.Create(false)); err != nil {
		return fmt.Errorf("create index %s: %w", s.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit index %s: %w", s.Name, err)
	}
	return nil
}

// buildPartitionedIndex builds s on a partitioned table without blocking its writers, which CREATE INDEX
// CONCURRENTLY cannot do on a partitioned table itself: the partitioned index is created on the table alone
// (ON ONLY, invalid and empty), then each partition's index concurrently and attached to it; the last attach
// makes it valid. Run again after an interruption, it goes on where it stopped.
func buildPartitionedIndex(ctx context.Context, conn *pgxpool.Conn, s IndexState) error {
	only := strings.Replace(s.Create(false), " ON ", " ON ONLY ", 1)
	if _, err := conn.Exec(ctx, only); err != nil {
		return fmt.Errorf("create index %s: %w", s.Name, err)
	}
	// Each partition without an index attached to this one: its name, and what to call its index.
	rows, err := conn.Query(ctx, `
		SELECT p.relid::regclass::text, chainsink_partition_name($2, substr(p.relid::regclass::text, length($1::text) + 1))
		FROM pg_partition_tree($1::regclass) p
		WHERE p.isleaf AND NOT EXISTS (
			SELECT 1 FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
			WHERE i.inhparent = $2::regclass AND x.indrelid = p.relid)`, s.Table, s.Name)
	if err != nil {
		return fmt.Errorf("list the partitions of %s: %w", s.Table, err)
	}
	type part struct{ table, index string }
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (p part, err error) {
		return p, r.Scan(&p.table, &p.index)
	})
	if err != nil {
		return fmt.Errorf("list the partitions of %s: %w", s.Table, err)
	}
	for _, p := range parts {
		ix := pgx.Identifier{p.index}.Sanitize()
		stmts := []string{
			// Left invalid by an interrupted build: built again.
			`DROP INDEX CONCURRENTLY IF EXISTS ` + ix,
			fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s USING btree %s", ix, pgx.Identifier{p.table}.Sanitize(), s.Columns),
			fmt.Sprintf("ALTER INDEX %s ATTACH PARTITION %s", pgx.Identifier{s.Name}.Sanitize(), ix),
		}
		for _, q := range stmts {
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("build index %s on partition %s: %w", s.Name, p.table, err)
			}
		}
	}
	return nil
}
