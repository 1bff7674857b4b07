package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// InsertRows is the benchmark's baseline, not part of chainsink's data path: it writes rows the way a generic
// JDBC sink does (Kafka Connect's JDBC sink connector in insert mode with batching, or upsert mode on a primary
// key), as multi-row `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` statements of at most perStatement rows,
// table by table, in one transaction; statements are pipelined up to 3000 rows at a time, as the JDBC driver's
// executeBatch sends them (perStatement 1 is the connector's default without reWriteBatchedInserts). Idempotence comes from ON CONFLICT, so there is no offset fence and a
// re-delivered block whose content changed (a reorg) keeps its stale rows; it is only a speed reference for
// cmd/chainsink-bench. perStatement ≤ 0 means 500.
func InsertRows(ctx context.Context, db DB, rows []Rows, perStatement int) (Counts, error) {
	if perStatement <= 0 {
		perStatement = 500
	}
	msgs := make([]Message, len(rows))
	for i := range rows {
		msgs[i].Rows = rows[i]
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin insert transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	counts := Counts{}
	for _, f := range []func() error{
		func() error { return insertTable(ctx, tx, blocksTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, withdrawalsTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, transactionsTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, logsTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, tokenTransfersTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, eventsTable, msgs, perStatement, counts) },
		func() error { return insertTable(ctx, tx, callsTable, msgs, perStatement, counts) },
	} {
		if err := f(); err != nil {
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

func insertTable[T any](ctx context.Context, db DB, t *table[T], msgs []Message, perStatement int, counts Counts) error {
	if perStatement*len(t.columns) > 65535 {
		perStatement = 65535 / len(t.columns) // the protocol's limit on parameters
	}
	src := t.source(msgs)
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
				return fmt.Errorf("insert into %s: %w", t.name, err)
			}
			counts[t.name] += tag.RowsAffected()
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("insert into %s: %w", t.name, err)
		}
		q, queued = pgx.Batch{}, 0
		return nil
	}
	args := make([]any, 0, perStatement*len(t.columns))
	n := 0
	queue := func() {
		if n > 0 {
			q.Queue(insertStatement(t.name, t.columns, n), args...)
			queued += n
			args, n = make([]any, 0, perStatement*len(t.columns)), 0
		}
	}
	for src.Next() {
		vals, _ := src.Values()
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
