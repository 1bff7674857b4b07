package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// StatusReport is what the database knows about the indexer's progress and health (`chainsink status`).
type StatusReport struct {
	// Offsets are the stored next offsets, ordered by group, topic and partition.
	Offsets []PartitionOffset
	// DeadLetters groups the stored dead letters by topic and reason, ordered by topic and reason.
	DeadLetters []DeadLetterSummary
	// Tables has one entry per data table, in Tables order.
	Tables []TableRows
	// NewestBlock is the highest stored block, OldestBlock the lowest, nil when blocks is empty.
	NewestBlock, OldestBlock *BlockHead
	// Horizon is where retention made stored history start (`chainsink retention`); nil without one.
	Horizon *Horizon
	// Partitioned are the tables partitioned by block number, by name.
	Partitioned []TablePartitions
}

// TablePartitions is what a partitioned table's partitions cover.
type TablePartitions struct {
	Table string
	// Ranges is its number of range partitions, From and To the lowest and highest height they cover
	// ([From, To); both 0 without any).
	Ranges   int
	From, To int64
	// InDefault is the rows in its default partition, counted up to defaultRowsCap: heights stored before
	// their partition was created. Nonzero is worth a look (docs/operations.md, "Partitions").
	InDefault int64
}

// defaultRowsCap bounds the count of a default partition's rows: status should not read a large one whole.
const defaultRowsCap = 10_000

// DeadLetterSummary is the number of dead letters of one topic and reason, and when the newest was stored.
type DeadLetterSummary struct {
	Topic  string
	Reason string
	Count  int64
	Newest time.Time
}

// TableRows is a table's number of rows; Exact says whether it was counted or estimated.
type TableRows struct {
	Table string
	Rows  int64
	Exact bool
}

// BlockHead is a block number and its timestamp.
type BlockHead struct {
	Number    uint64
	Timestamp time.Time
}

// Status reads the offsets and dead letters of group (all groups when group is ""), the size of every data
// table and the newest block. With exact, tables are counted with count(*), which reads every row; otherwise
// their size is estimated from the catalog (see EstimateRows), which costs nothing on tables of any size.
func Status(ctx context.Context, db DB, group string, exact bool) (StatusReport, error) {
	var r StatusReport
	var err error
	if r.Offsets, err = ListOffsets(ctx, db, group); err != nil {
		return r, err
	}
	if r.DeadLetters, err = summarizeDeadLetters(ctx, db, group); err != nil {
		return r, err
	}
	var counts chain.Counts
	if exact {
		counts, err = CountRows(ctx, db)
	} else {
		counts, err = EstimateRows(ctx, db)
	}
	if err != nil {
		return r, err
	}
	for _, t := range chain.CoreTables.Names() {
		r.Tables = append(r.Tables, TableRows{Table: t, Rows: counts[t], Exact: exact})
	}
	var head BlockHead
	err = db.QueryRow(ctx, `SELECT number, "timestamp" FROM blocks ORDER BY number DESC LIMIT 1`).Scan(&head.Number, &head.Timestamp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return r, fmt.Errorf("read newest block: %w", err)
	default:
		r.NewestBlock = &head
	}
	var oldest BlockHead
	err = db.QueryRow(ctx, `SELECT number, "timestamp" FROM blocks ORDER BY number LIMIT 1`).Scan(&oldest.Number, &oldest.Timestamp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return r, fmt.Errorf("read oldest block: %w", err)
	default:
		r.OldestBlock = &oldest
	}
	if r.Horizon, err = ReadHorizon(ctx, db); err != nil {
		return r, err
	}
	if r.Partitioned, err = partitionStatus(ctx, db); err != nil {
		return r, err
	}
	return r, nil
}

func partitionStatus(ctx context.Context, db DB) ([]TablePartitions, error) {
	parts, err := Partitions(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []TablePartitions
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		p := parts[name]
		tp := TablePartitions{Table: name, Ranges: len(p.Spans)}
		if len(p.Spans) > 0 {
			tp.From, tp.To = p.Spans[0].From, p.Spans[len(p.Spans)-1].To
		}
		if p.Default != "" {
			if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ONLY `+pgx.Identifier{p.Default}.Sanitize()+
				` LIMIT $1) x`, defaultRowsCap+1).Scan(&tp.InDefault); err != nil {
				return nil, fmt.Errorf("count the rows of %s: %w", p.Default, err)
			}
		}
		out = append(out, tp)
	}
	return out, nil
}

func summarizeDeadLetters(ctx context.Context, db DB, group string) ([]DeadLetterSummary, error) {
	rows, err := db.Query(ctx, `
		SELECT topic, reason, count(*), max(created_at) FROM dead_letters
		WHERE $1 = '' OR consumer_group = $1
		GROUP BY topic, reason ORDER BY topic, reason`, group)
	if err != nil {
		return nil, fmt.Errorf("summarize dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (s DeadLetterSummary, err error) {
		err = row.Scan(&s.Topic, &s.Reason, &s.Count, &s.Newest)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("summarize dead letters: %w", err)
	}
	return out, nil
}

// EstimateRows estimates the rows of every data table the way the query planner does: the row density that the
// last VACUUM or ANALYZE measured (pg_class.reltuples / relpages) times the table's current number of pages, so
// that growth since then is counted. A table never vacuumed nor analyzed has no measured density; for it the
// statistics system's live-tuple counter (pg_stat_user_tables.n_live_tup) is used. Both lag the truth by the
// rows of transactions still in flight and by whatever autovacuum has not seen; use CountRows for exact numbers.
// A partitioned table's estimate is the sum of its partitions'.
func EstimateRows(ctx context.Context, db DB) (chain.Counts, error) {
	rows, err := db.Query(ctx, `
		SELECT t.relname, sum(
		       CASE
		         WHEN c.reltuples >= 0 AND c.relpages > 0 THEN
		           round(c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::bigint))::bigint
		         WHEN c.reltuples >= 0 THEN c.reltuples::bigint
		         ELSE coalesce(s.n_live_tup, 0)
		       END)::bigint
		FROM pg_class t
		JOIN pg_namespace n ON n.oid = t.relnamespace
		-- a partitioned table's rows are its partitions' (a plain table has no partition tree)
		LEFT JOIN LATERAL (SELECT relid FROM pg_partition_tree(t.oid) WHERE isleaf) p ON true
		JOIN pg_class c ON c.oid = coalesce(p.relid, t.oid)
		LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE n.nspname = current_schema() AND t.relname = ANY($1) AND t.relkind IN ('r', 'p')
		GROUP BY t.relname`, chain.CoreTables.Names())
	if err != nil {
		return nil, fmt.Errorf("estimate rows: %w", err)
	}
	out := chain.Counts{}
	var name string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		out[name] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("estimate rows: %w", err)
	}
	for _, t := range chain.CoreTables.Names() {
		if _, ok := out[t]; !ok {
			return nil, fmt.Errorf("estimate rows: table %s is not in the schema: is it migrated?", t)
		}
	}
	return out, nil
}

// CountRows counts the rows of every core data table exactly, with count(*).
func CountRows(ctx context.Context, db DB) (chain.Counts, error) {
	out := chain.Counts{}
	for _, t := range chain.CoreTables {
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t.Name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t.Name, err)
		}
		out[t.Name] = n
	}
	return out, nil
}
