package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// The benchmark's two reference writers, (a) the ceiling and (b) the baseline. The ceiling copies with
// store.Copy and the baseline takes its values from store.CopySource, the code the exactly-once path encodes
// rows with, so the comparison measures protocols, not encoders.

// CopyRows writes rows with plain binary COPY, table by table in the order of chain.CoreTables, in one
// transaction (a savepoint when db is a pgx.Tx). It is chainsink's write path without the exactly-once
// protocol: no fence, no replacement deletes, no dead letters, so a row whose key is already stored fails the
// whole call. It is the ceiling that chainsink is measured against, and preloads tables quickly.
func CopyRows(ctx context.Context, db store.DB, rows []chain.Rows) (chain.Counts, error) {
	return CopyTables(ctx, db, chain.CoreTables, rows)
}

// CopyTables is CopyRows of the given tables (the core ones and typed tables, say).
func CopyTables(ctx context.Context, db store.DB, tables chain.Schema, rows []chain.Rows) (chain.Counts, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin copy transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	counts := chain.Counts{}
	sets := rowSets(rows)
	for _, t := range tables {
		if n := countOf(t, sets); n == 0 {
			continue
		}
		n, err := store.Copy(ctx, tx, t, sets)
		if err != nil {
			return nil, fmt.Errorf("copy into %s: %w", t.Name, err)
		}
		counts[t.Name] += n
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit copy: %w", err)
	}
	return counts, nil
}

func rowSets(rows []chain.Rows) []*chain.Rows {
	sets := make([]*chain.Rows, len(rows))
	for i := range rows {
		sets[i] = &rows[i]
	}
	return sets
}

func countOf(t *chain.Table, sets []*chain.Rows) int {
	n := 0
	for _, r := range sets {
		n += t.Len(r)
	}
	return n
}

// InsertRows is the benchmark's baseline, not part of chainsink's data path: it writes rows the way a generic
// JDBC sink does (Kafka Connect's JDBC sink connector in insert mode with batching, or upsert mode on a primary
// key), as multi-row `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` statements of at most perStatement rows,
// table by table, in one transaction; statements are pipelined up to 3000 rows at a time, as the JDBC driver's
// executeBatch sends them (perStatement 1 is the connector's default without reWriteBatchedInserts). Idempotence comes from ON CONFLICT, so there is no offset fence and a
// re-delivered block whose content changed (a reorg) keeps its stale rows; it is only a speed reference for
// cmd/chainsink-bench. perStatement ≤ 0 means 500.
func InsertRows(ctx context.Context, db store.DB, rows []chain.Rows, perStatement int) (chain.Counts, error) {
	if perStatement <= 0 {
		perStatement = 500
	}
	sets := rowSets(rows)
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin insert transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	counts := chain.Counts{}
	for _, t := range chain.CoreTables {
		if err := insertTable(ctx, tx, t, sets, perStatement, counts); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit insert: %w", err)
	}
	return counts, nil
}

// insertSQL caches the statement text per table and row count.
var insertSQL sync.Map // "table/rows" → string

func insertStatement(name string, columns []string, n int) string {
	key := name + "/" + strconv.Itoa(n)
	if s, ok := insertSQL.Load(key); ok {
		return s.(string)
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + name + " (")
	for i, c := range columns {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(`"` + c + `"`)
	}
	sb.WriteString(") VALUES ")
	p := 1
	for r := range n {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for i := range columns {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("$" + strconv.Itoa(p))
			p++
		}
		sb.WriteByte(')')
	}
	sb.WriteString(" ON CONFLICT DO NOTHING")
	s := sb.String()
	insertSQL.Store(key, s)
	return s
}

// pipelineRows is how many rows of statements are sent in one pipeline, like a JDBC executeBatch of the
// connector's default batch.size (3000).
const pipelineRows = 3000

func insertTable(ctx context.Context, db store.DB, t *chain.Table, sets []*chain.Rows, perStatement int, counts chain.Counts) error {
	ncol := len(t.Columns)
	if perStatement*ncol > 65535 {
		perStatement = 65535 / ncol // the protocol's limit on parameters
	}
	src := store.CopySource(t, sets)
	var q pgx.Batch
	queued := 0
	send := func() error {
		if q.Len() == 0 {
			return nil
		}
		res := db.SendBatch(ctx, &q)
		for range q.Len() {
			tag, err := res.Exec()
			if err != nil {
				_ = res.Close()
				return fmt.Errorf("insert into %s: %w", t.Name, err)
			}
			counts[t.Name] += tag.RowsAffected()
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("insert into %s: %w", t.Name, err)
		}
		q, queued = pgx.Batch{}, 0
		return nil
	}
	args := make([]any, 0, perStatement*ncol)
	n := 0
	queue := func() {
		if n > 0 {
			q.Queue(insertStatement(t.Name, t.ColumnNames(), n), args...)
			queued += n
			args, n = make([]any, 0, perStatement*ncol), 0
		}
	}
	for src.Next() {
		vals, err := src.Values()
		if err != nil {
			return fmt.Errorf("insert into %s: %w", t.Name, err)
		}
		args = append(args, vals...)
		n++
		if n == perStatement {
			queue()
			if queued >= pipelineRows {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	queue()
	return send()
}
