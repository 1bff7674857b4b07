package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chainsink/chainsink/store/chain"
)

// fenceLockTimeout bounds the fence's wait for its partition's offset row.
const fenceLockTimeout = "5s"

// ErrFenced means another owner advanced the partition's offset since this batch began: the batch was rolled
// back and the caller must drop its state for the partition and wait for the group to assign it again.
var ErrFenced = errors.New("partition fenced: its offset was advanced by another owner")

// ErrCommitted is returned with ErrFenced when the partition's stored offset stands exactly at the batch's
// end: its range is stored. After an attempt that failed with ErrCommitUncertain it was stored by that very
// attempt, whose COMMIT reached Postgres while its reply was lost (a dropped connection, a black-holed
// path): the caller goes on as after a commit, and nothing was written twice. Otherwise another owner wrote
// the range, and the batch is fenced like any other.
var ErrCommitted = errors.New("the partition's offset already stands at the batch's end")

// ErrCommitUncertain wraps an error of COMMIT itself: the transaction may or may not have committed. A retry
// of the batch finds out (ErrCommitted, or a commit of its own).
var ErrCommitUncertain = errors.New("commit outcome unknown")

// ErrConflict means two writers stored the same natural key at once and this batch lost: Postgres refused
// its COPY with a unique violation. The height locks make chainsink's own writers take turns, so what is left
// is a writer that does not take them (an older chainsink during an upgrade, a hand-written import): a race
// that a retry, which deletes what the winner wrote, resolves. The batch was rolled back whole. Set
// Batch.RejectConflicts to store the messages that keep conflicting as dead letters instead.
var ErrConflict = errors.New("unique violation against a concurrent writer")

// DeadLetter is a message stored in dead_letters instead of the tables.
type DeadLetter struct {
	Offset int64
	Reason string
	Err    string
}

// Result says what a committed batch wrote.
type Result struct {
	Rows        chain.Counts
	DeadLetters []DeadLetter
	// TimedOut is how many of the batch's statements hit statement_timeout and were written again in halves:
	// more than none says the timeout is too tight for the batch size.
	TimedOut int
}

// ReasonRejected is the dead-letter reason of a message whose rows Postgres refused.
const ReasonRejected = "rejected_by_postgres"

// ReasonInvalidRows is the dead-letter reason of a message whose decoder produced run-time rows that the
// writer cannot store as they are (see chain.Schema.CheckTyped): a decoder bug, kept for a replay after the fix.
const ReasonInvalidRows = "invalid_rows"

// Writer writes batches into the tables of its schema. It holds no state but the schema, so one Writer
// serves every partition.
type Writer struct {
	schema     chain.Schema
	orphanSQL  []string // see queueOrphans; built once per schema
	holdingSQL string   // see holding; built once per schema
	discovery  *chain.Discovery
	gated      map[*chain.Table]chain.Gated
	// untyped leaves out of events and calls what a typed table holds (WithUntyped).
	untyped Untyped
}

// NewWriter returns a writer of schema's tables: chain.CoreTables, plus any tables described at run time.
// Every table of the schema must exist; a bundle's replacement deletes from all of them.
func NewWriter(schema chain.Schema) *Writer {
	return &Writer{schema: schema, orphanSQL: orphanStatements(schema), holdingSQL: holdingStatement(schema)}
}

// Schema is the writer's tables.
func (w *Writer) Schema() chain.Schema { return w.schema }

// WithDiscovery returns a writer of the same schema whose gated tables hold only the rows of registered
// factory children (see chain.Discovery and discovery.go). The schema must hold chain.ChildrenTable and
// every gated table.
func (w *Writer) WithDiscovery(d *chain.Discovery) *Writer {
	out := *w
	out.discovery, out.gated = d, nil
	if d != nil {
		out.gated = make(map[*chain.Table]chain.Gated, len(d.Gated))
		for _, g := range d.Gated {
			out.gated[g.Table] = g
		}
	}
	return &out
}

// WithUntyped returns a writer that stores in events and calls, as u says, only what no typed table holds:
// an event or a call that has a row in a typed table, after the factory gate, is written there alone, and
// the events and calls rows of a factory's children found later are removed when their typed rows are
// derived.
func (w *Writer) WithUntyped(u Untyped) *Writer {
	out := *w
	out.untyped = u
	return &out
}

var coreWriter = NewWriter(chain.CoreTables)

// WriteBatch is Write of a writer of chain.CoreTables.
func WriteBatch(ctx context.Context, db DB, b *Batch) (Result, error) {
	return coreWriter.Write(ctx, db, b)
}

// Write stores b exactly once: fence, replacement, COPY and dead letters in one transaction. See the
// package documentation for the protocol. It returns ErrFenced when the partition has another owner (with
// ErrCommitted when the stored offset is the batch's end), ErrConflict when a concurrent writer stored one of
// its keys, and any other error unchanged (IsTransient tells which are worth a retry). On error nothing was
// stored, except that an error wrapping ErrCommitUncertain may have committed what its Result says.
func (w *Writer) Write(ctx context.Context, db DB, b *Batch) (Result, error) {
	res := Result{Rows: chain.Counts{}}
	tx, err := db.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin batch transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; after a failure the error that matters is already returned

	var dead []Message
	keys := make([]chain.Key, 0, len(b.Messages))
	exclusive := false
	// Pointers: a Message is a few hundred bytes, and an item batch holds thousands.
	live := make([]*Message, 0, len(b.Messages))
	for i := range b.Messages {
		m := &b.Messages[i]
		if m.Failure == nil {
			if err := w.schema.CheckTyped(&m.Rows); err != nil {
				d := *m // the batch stays as it came: a retry checks it again
				d.Failure = &chain.Failure{Reason: ReasonInvalidRows, Err: err}
				dead = append(dead, d)
				continue
			}
		}
		if m.Failure != nil {
			dead = append(dead, *m)
		} else if !m.Rows.Empty() {
			live = append(live, m)
			keys = m.Rows.Keys(keys, b.Mode)
			exclusive = exclusive || registers(&m.Rows)
		}
	}
	lock := ""
	if w.discovery != nil {
		lock = gateLock(exclusive)
	}
	if err := fence(ctx, tx, b, heights(keys), lock); err != nil {
		return res, err
	}
	rejected, err := w.writeBisect(ctx, tx, b, live, &res)
	if err != nil {
		return Result{}, err
	}
	dead = append(dead, rejected...)
	if len(dead) > 0 {
		res.DeadLetters, err = insertDeadLetters(ctx, tx, b, dead)
		if err != nil {
			return Result{}, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		// res goes back with the error: if the COMMIT did go through, it is what the batch wrote.
		return res, fmt.Errorf("commit batch of %s/%d [%d,%d): %w: %w", b.Topic, b.Partition, b.From, b.To, ErrCommitUncertain, err)
	}
	return res, nil
}

// heights are the distinct block numbers of keys, ascending.
func heights(keys []chain.Key) []int64 {
	hs := make([]int64, 0, len(keys))
	for _, k := range keys {
		hs = append(hs, int64(k.Block))
	}
	slices.Sort(hs)
	return slices.Compact(hs)
}

// fence advances the partition's offset from b.From to b.To, or fails with ErrFenced. A partition seen for the
// first time gets its row here; if two owners race to create it, the loser conflicts, re-checks and is fenced.
//
// In the same round trip it sets lock_timeout for the transaction and takes the height locks:
//   - lock_timeout: a zombie frozen with its transaction open holds the offset row until
//     idle_in_transaction_session_timeout ends it, and the new owner should retry (55P03, with backoff, able to
//     stop) rather than sit in one statement for the whole statement timeout. The same bound applies to the
//     batch's other lock waits (the height locks, a redecode's share locks): a longer wait is transient too.
//   - height locks: two batches that replace the same height (the same ethereum-etl items on two partitions, a
//     block re-published to another partition, a replay group) must not both delete nothing and then COPY: the
//     second would fail on the primary key (and its message would be dead-lettered), or a block would end up a
//     mix of two versions. A transaction-level advisory lock per height, in ascending order, makes them one
//     after the other; the second then deletes what the first wrote. They are taken here, outside the
//     savepoints of writeBisect, so that a bisection neither releases nor re-takes them. The key is the height
//     mixed with the schema, so that two schemas of one database do not wait for each other.
//   - the discovery lock (lock, when not empty): see discovery.go.
func fence(ctx context.Context, tx pgx.Tx, b *Batch, heights []int64, lock string) error {
	var q pgx.Batch
	// Every statement of a batch's transaction finds its rows by key, by height or by contract, which an
	// index does at any size. The planner judges by statistics that autovacuum refreshes only now and then:
	// between two analyzes a table that grew by millions of rows still looks small and its block_number
	// like a few values, and with the hundreds of keys of an item batch it hash-joined scans of whole tables
	// (token_transfers, typed tables) once per batch (TestItemDeletesUseTheBlockIndex). So the transaction
	// plans without sequential scans; set_config(…, true) ends with it.
	q.Queue(`SELECT set_config('lock_timeout', $1, true), set_config('enable_seqscan', 'off', true)`, fenceLockTimeout)
	q.Queue(`
		INSERT INTO kafka_offsets AS o (consumer_group, topic, partition, next_offset, updated_at)
		VALUES ($1, $2, $3, $5, now())
		ON CONFLICT (consumer_group, topic, partition) DO UPDATE
		SET next_offset = EXCLUDED.next_offset, updated_at = now()
		WHERE o.next_offset = $4`,
		b.Group, b.Topic, b.Partition, b.From, b.To)
	if len(heights) > 0 {
		q.Queue(`SELECT count(pg_advisory_xact_lock(hashtextextended('chainsink:' || current_schema(), 0) # h))
			FROM unnest($1::bigint[]) AS h`, heights)
	}
	if lock != "" {
		q.Queue(lock)
	}
	br := tx.SendBatch(ctx, &q)
	_, err := br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if err == nil && len(heights) > 0 {
		_, err = br.Exec()
	}
	if err == nil && lock != "" {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("advance offset of %s/%d to %d: %w", b.Topic, b.Partition, b.To, err)
	}
	if tag.RowsAffected() != 1 {
		// A new statement, so a new snapshot: the offset as it stands now, after whoever moved it committed.
		var stored int64
		if err := tx.QueryRow(ctx, `SELECT next_offset FROM kafka_offsets
			WHERE consumer_group = $1 AND topic = $2 AND partition = $3`, b.Group, b.Topic, b.Partition).Scan(&stored); err != nil {
			return fmt.Errorf("read offset of fenced %s/%d: %w", b.Topic, b.Partition, err)
		}
		if stored == b.To && b.To > b.From {
			return fmt.Errorf("advance offset of %s/%d from %d to %d: %w: %w", b.Topic, b.Partition, b.From, b.To, ErrFenced, ErrCommitted)
		}
		return fmt.Errorf("advance offset of %s/%d from %d (stored: %d): %w", b.Topic, b.Partition, b.From, stored, ErrFenced)
	}
	return nil
}

// writeBisect writes msgs under a savepoint. When Postgres rejects the write for a reason that retrying cannot
// fix, it rolls back to the savepoint and bisects until each rejected message stands alone; those are returned
// as dead letters and everything else is written. A statement timeout bisects too, with no dead letters. A batch with one bad message costs about log2(n) extra writes.
func (w *Writer) writeBisect(ctx context.Context, tx pgx.Tx, b *Batch, msgs []*Message, res *Result) ([]Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create savepoint: %w", err)
	}
	local := chain.Counts{}
	werr := w.writeRows(ctx, sp, b.Mode, msgs, local)
	if werr == nil {
		if err := sp.Commit(ctx); err != nil {
			return nil, fmt.Errorf("release savepoint: %w", err)
		}
		for k, v := range local {
			res.Rows[k] += v
		}
		return nil, nil
	}
	if err := sp.Rollback(ctx); err != nil {
		return nil, errors.Join(werr, fmt.Errorf("roll back to savepoint: %w", err))
	}
	// A statement that hit statement_timeout is tried again in halves, under savepoints of the same
	// transaction (statement_timeout bounds each statement, so halves fit where the whole did not); a single
	// message that still times out is returned, for the caller to retry.
	timedOut := IsStatementTimeout(werr) && len(msgs) > 1
	if !IsRejected(werr) && !timedOut {
		return nil, werr
	}
	if !b.RejectConflicts && hasCode(werr, pgerrcode.UniqueViolation) {
		// Every natural key of a batch is deleted before its COPY and the batch holds each key once (see
		// Batch.Add), so a duplicate key is another transaction's, committed under us: see ErrConflict.
		return nil, fmt.Errorf("%w: %w", ErrConflict, werr)
	}
	if len(msgs) == 1 {
		m := *msgs[0]
		m.Failure = &chain.Failure{Reason: ReasonRejected, Err: werr}
		return []Message{m}, nil
	}
	if timedOut {
		res.TimedOut++
	}
	half := len(msgs) / 2
	left, err := w.writeBisect(ctx, tx, b, msgs[:half], res)
	if err != nil {
		return nil, err
	}
	right, err := w.writeBisect(ctx, tx, b, msgs[half:], res)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// writeRows deletes what msgs replace, then copies their rows in.
//
// Items (chain.ReplaceRows) are first copied without the deletes by key, under a savepoint, and only when
// Postgres refuses that with a unique violation written again with them. An item replaces the rows of its
// keys in every table of its scope, and finding out that nothing is stored under a key costs Postgres an
// index descent per key and table: 2–3 for each of the 800 items of a mainnet block, a quarter of Postgres's
// CPU for ethereum-etl items in make bench, almost always to find nothing. A fresh key can be copied
// straight in. A stored one cannot go unnoticed: every row of a table of an item's scope is stored with its
// item's own row (a log with its events, token transfers and typed rows, a transaction with its calls, a
// trace with its contract), so a key that holds anything holds its item's row, which the item's COPY then
// collides with (`chainsink verify` reports a row stored without its parent: events_without_log,
// token_transfers_without_log, calls_without_transaction, typed_without_parent). The savepoint is taken
// after the fence's height locks, so no other chainsink writer adds a row under these heights meanwhile. A
// redelivered or reorged item costs the part of the first COPY up to its collision, and copies are made in
// schema order, the items' own tables (blocks, transactions, logs) first.
func (w *Writer) writeRows(ctx context.Context, db DB, mode chain.Mode, msgs []*Message, counts chain.Counts) error {
	sets := make([]*chain.Rows, len(msgs))
	for i := range msgs {
		sets[i] = &msgs[i].Rows
	}
	if w.discovery != nil {
		var err error
		if sets, err = w.gate(ctx, db, sets); err != nil {
			return err
		}
	}
	if mode == chain.ReplaceRows {
		written, err := w.writeFresh(ctx, db, sets, counts)
		if written || err != nil {
			return err
		}
	}
	return w.replace(ctx, db, mode, sets, true, counts)
}

// writeFresh writes sets as replace does without deleting by key, under a savepoint. written is false, with
// nothing written, when one of their keys is stored already.
func (w *Writer) writeFresh(ctx context.Context, db DB, sets []*chain.Rows, counts chain.Counts) (written bool, err error) {
	sp, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("create savepoint: %w", err)
	}
	local := chain.Counts{}
	werr := w.replace(ctx, sp, chain.ReplaceRows, sets, false, local)
	if werr == nil {
		if err := sp.Commit(ctx); err != nil {
			return false, fmt.Errorf("release savepoint: %w", err)
		}
		for k, v := range local {
			counts[k] += v
		}
		return true, nil
	}
	if err := sp.Rollback(ctx); err != nil {
		return false, errors.Join(werr, fmt.Errorf("roll back to savepoint: %w", err))
	}
	if hasCode(werr, pgerrcode.UniqueViolation) {
		return false, nil
	}
	return false, werr
}

// replace deletes what sets replace (by key only when byKey), then copies their rows in, upserts their
// tokens and derives the rows of factory children they register.
func (w *Writer) replace(ctx context.Context, db DB, mode chain.Mode, sets []*chain.Rows, byKey bool, counts chain.Counts) error {
	if err := w.deleteReplaced(ctx, db, mode, sets, byKey); err != nil {
		return err
	}
	// After the deletes: a replacement still removes the rows an earlier configuration stored.
	sets = w.untyped.without(sets)
	if err := copyTables(ctx, db, w.schema, sets, counts); err != nil {
		return err
	}
	var tokens []chain.Token
	for _, r := range sets {
		tokens = append(tokens, r.Tokens...)
	}
	if err := upsertTokens(ctx, db, tokens, counts); err != nil {
		return err
	}
	if w.discovery != nil {
		return w.deriveChildren(ctx, db, sets, counts)
	}
	return nil
}

// deleteReplaced removes the stored rows that the natural keys of sets replace, in one round trip: for a
// bundle every row of its blocks in every table, for single items the rows of the tables in the item's scope
// (see chain.Scope), and for a run-time row its own stored row. Tables are visited in schema order. (A
// concurrent ReplaceDerived cannot deadlock with these deletes: it locks the raw transactions, then the raw
// logs, FOR SHARE before it touches a derived table, and here transactions are deleted before logs too; with
// a factory gate it takes the discovery lock before any of them, which this batch took in its fence.)
// Without byKey only a ReplaceRows batch's deletes by height are made: a reorg's orphans and tombstones.
func (w *Writer) deleteReplaced(ctx context.Context, db DB, mode chain.Mode, sets []*chain.Rows, byKey bool) error {
	var q pgx.Batch
	if byKey {
		if err := w.queueKeyDeletes(ctx, db, &q, mode, sets); err != nil {
			return err
		}
	}
	if mode == chain.ReplaceRows {
		w.queueOrphans(&q, sets)
		// A tombstone removes its height from every table in either mode (in ReplaceBlocks its block key
		// has done so above).
		var gone []int64
		for _, r := range sets {
			for _, n := range r.Tombstones {
				gone = append(gone, int64(n))
			}
		}
		if len(gone) > 0 {
			for _, t := range w.schema {
				q.Queue(`DELETE FROM `+pgx.Identifier{t.Name}.Sanitize()+` WHERE `+
					pgx.Identifier{t.BlockColumn()}.Sanitize()+` = ANY($1)`, gone)
			}
		}
	}
	if q.Len() == 0 {
		return nil
	}
	if err := db.SendBatch(ctx, &q).Close(); err != nil {
		return fmt.Errorf("delete replaced rows: %w", err)
	}
	return nil
}

// queueKeyDeletes queues into q the deletes of deleteReplaced by the natural keys of sets.
func (w *Writer) queueKeyDeletes(ctx context.Context, db DB, q *pgx.Batch, mode chain.Mode, sets []*chain.Rows) error {
	keys := make([]chain.Key, 0, len(sets))
	for _, r := range sets {
		keys = r.Keys(keys, mode)
	}
	// The key values per target: a scope (core keys: every table of the scope), one run-time table, or the
	// trace-owned tables (frame keys).
	type target struct {
		scope chain.Scope
		table *chain.Table
		frame bool
	}
	blocks := map[target][]int64{}
	index := map[target][]int32{}
	frames := map[target][]string{}
	for _, k := range keys {
		tg := target{scope: k.Scope, table: k.Table, frame: k.Frame != ""}
		blocks[tg] = append(blocks[tg], int64(k.Block))
		if k.Scope != chain.ScopeBlock {
			index[tg] = append(index[tg], k.Index)
		}
		if tg.frame {
			frames[tg] = append(frames[tg], k.Frame)
		}
	}
	// queue deletes t's rows under the keys of tg; top limits a frame-keyed table to the transactions' own
	// frames (a core transaction key), and internal limits frame keys to the frames below them.
	queue := func(t *chain.Table, tg target, top, internal bool) {
		name, blockCol := pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{t.BlockColumn()}.Sanitize()
		if tg.scope == chain.ScopeBlock {
			q.Queue(`DELETE FROM `+name+` WHERE `+blockCol+` = ANY($1)`, blocks[tg])
			return
		}
		where := `t.` + blockCol + ` = k.b AND t.` + pgx.Identifier{t.IndexColumn()}.Sanitize() + ` = k.i`
		if !tg.frame {
			if top {
				where += ` AND t.` + pgx.Identifier{t.FrameColumn()}.Sanitize() + ` = '{}'`
			}
			q.Queue(`DELETE FROM `+name+` t USING unnest($1::bigint[], $2::integer[]) AS k(b, i) WHERE `+where,
				blocks[tg], index[tg])
			return
		}
		bs, is, fs := blocks[tg], index[tg], frames[tg]
		if internal {
			bs, is, fs = nil, nil, nil
			for j, f := range frames[tg] {
				if f != "{}" {
					bs, is, fs = append(bs, blocks[tg][j]), append(is, index[tg][j]), append(fs, f)
				}
			}
			if len(bs) == 0 {
				return
			}
		}
		q.Queue(`DELETE FROM `+name+` t USING unnest($1::bigint[], $2::integer[], $3::text[]) AS k(b, i, f) WHERE `+
			where+` AND t.`+pgx.Identifier{t.FrameColumn()}.Sanitize()+` = k.f::integer[]`, bs, is, fs)
	}
	for _, scope := range []chain.Scope{chain.ScopeBlock, chain.ScopeTransaction, chain.ScopeLog} {
		tg := target{scope: scope}
		if len(blocks[tg]) == 0 {
			continue
		}
		if scope == chain.ScopeBlock && mode == chain.ReplaceBlocks {
			// A bundle's block replaces every table: those that hold a row of its heights.
			holding, err := w.holding(ctx, db, blocks[tg])
			if err != nil {
				return err
			}
			for i, t := range w.schema {
				if holding[i] {
					queue(t, tg, false, false)
				}
			}
			continue
		}
		for _, t := range w.schema {
			switch {
			case t.Scope != scope || t.TraceOwned:
				// An item replaces the tables of its scope, but for the trace-owned ones, whose frames are
				// items of their own.
			default:
				queue(t, tg, t.FrameColumn() != "", false)
			}
		}
	}
	if tg := (target{scope: chain.ScopeTransaction, frame: true}); len(blocks[tg]) > 0 {
		for _, t := range w.schema {
			if t.FrameColumn() != "" {
				queue(t, tg, false, !t.TraceOwned)
			}
		}
	}
	for _, t := range w.schema {
		for _, frame := range []bool{false, true} {
			if tg := (target{scope: t.Scope, table: t, frame: frame}); len(blocks[tg]) > 0 {
				queue(t, tg, false, false)
			}
		}
	}
	return nil
}

// holding reports, table by table of the schema, whether it holds a row of any of heights. A bundle's block
// replaces every table, and a batch of new heights has nothing to replace: one statement that probes each
// table's block number index spares Postgres a DELETE per table, which it plans (partitions pruned by the
// heights) and starts for every batch. With the 25 typed tables of the demo's configuration those DELETEs
// cost Postgres 2 ms of CPU a block in make bench, a fifth of its work. The heights are locked by the batch
// (fence), so what the probe finds is what a DELETE would have found.
func (w *Writer) holding(ctx context.Context, db DB, heights []int64) ([]bool, error) {
	out := make([]bool, 0, len(w.schema))
	if err := db.QueryRow(ctx, w.holdingSQL, heights).Scan(&out); err != nil {
		return nil, fmt.Errorf("find the tables holding the batch's heights: %w", err)
	}
	if len(out) != len(w.schema) {
		return nil, fmt.Errorf("find the tables holding the batch's heights: %d answers for %d tables", len(out), len(w.schema))
	}
	return out, nil
}

// holdingStatement is the statement of holding for schema.
func holdingStatement(schema chain.Schema) string {
	var b strings.Builder
	b.WriteString("SELECT ARRAY[")
	for i, t := range schema {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("EXISTS (SELECT FROM " + pgx.Identifier{t.Name}.Sanitize() + " WHERE " +
			pgx.Identifier{t.BlockColumn()}.Sanitize() + " = ANY($1::bigint[]))")
	}
	b.WriteString("]::boolean[]")
	return b.String()
}

// queueOrphans queues the removal of a reorg's orphans for the block items among sets (ethereum-etl): the
// transactions, logs and traces of the block's height whose block hash is not the block's, with the rows of
// their scope in every other table (calls; events, token transfers; run-time tables; the contracts a trace
// created). Keys alone cannot do it: when the new block has fewer transactions or logs than the orphaned
// one, nothing of the new block has the keys of the extra old rows. The new block's own rows carry its hash
// and stay, whether they were stored before the block item or come after it; rows without a hash (logs
// stored before migration 4, traces before 9) are left alone.
func (w *Writer) queueOrphans(q *pgx.Batch, sets []*chain.Rows) {
	var numbers []int64
	var hashes [][]byte
	for _, r := range sets {
		for _, b := range r.Blocks {
			numbers = append(numbers, int64(b.Number))
			hashes = append(hashes, b.Hash)
		}
	}
	if len(numbers) == 0 {
		return
	}
	for _, sql := range w.orphanSQL {
		q.Queue(sql, numbers, hashes)
	}
}

// orphanStatements are queueOrphans' statements for schema, taking the heights ($1) and their block hashes
// ($2): each parent (transactions, logs, traces) and its children in one statement (a data-modifying CTE),
// parents first, transactions before logs, the lock order of the other deletes here and of ReplaceDerived.
// Every table is read by its block numbers (= ANY($1), an index scan): joined to the heights alone, the
// planner scanned whole tables once per batch with a block item whenever its block_number statistics were
// stale (TestItemDeletesUseTheBlockIndex). A transaction's children do not include the trace-owned tables,
// nor the internal calls of the typed call tables: their frames may be of the new block while the orphaned
// transaction at their index is not replaced yet, and they go with their own traces.
func orphanStatements(schema chain.Schema) []string {
	var out []string
	for _, parent := range []*chain.Table{chain.TransactionsTable, chain.LogsTable, chain.TracesTable} {
		if !slices.Contains(schema, parent) {
			continue
		}
		key := []string{parent.BlockColumn(), parent.IndexColumn()}
		if parent.TraceOwned {
			key = append(key, parent.FrameColumn())
		}
		var sql strings.Builder
		fmt.Fprintf(&sql, `WITH k(n, h) AS (SELECT * FROM unnest($1::bigint[], $2::bytea[])),
			gone AS (DELETE FROM %s p USING k WHERE p.block_number = ANY($1) AND p.block_number = k.n AND p.block_hash <> k.h
				RETURNING %s)`, pgx.Identifier{parent.Name}.Sanitize(), returning(key))
		children := 0
		for _, t := range schema {
			if t.Scope != parent.Scope || t == parent || (t.TraceOwned && !parent.TraceOwned) ||
				(parent.TraceOwned && t.FrameColumn() == "") {
				continue
			}
			frame := pgx.Identifier{t.FrameColumn()}.Sanitize()
			fmt.Fprintf(&sql, `,
			c%d AS (DELETE FROM %[2]s c USING gone WHERE c.%[3]s = ANY($1) AND c.%[3]s = gone.k0 AND c.%[4]s = gone.k1`, children,
				pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{t.BlockColumn()}.Sanitize(),
				pgx.Identifier{t.IndexColumn()}.Sanitize())
			switch {
			case parent.TraceOwned && t.TraceOwned:
				fmt.Fprintf(&sql, ` AND c.%s = gone.k2`, frame)
			case parent.TraceOwned: // a typed call table: its internal calls go with their frames
				fmt.Fprintf(&sql, ` AND c.%s = gone.k2 AND cardinality(gone.k2) > 0`, frame)
			case t.FrameColumn() != "": // and its transactions' own calls with the transactions
				fmt.Fprintf(&sql, ` AND c.%s = '{}'`, frame)
			}
			sql.WriteString(`)`)
			children++
		}
		sql.WriteString(`
			SELECT count(*) FROM gone`)
		out = append(out, sql.String())
	}
	return out
}

// returning is the RETURNING list of an orphan statement's parent: its key columns as k0, k1, ….
func returning(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "p." + pgx.Identifier{c}.Sanitize() + " AS k" + strconv.Itoa(i)
	}
	return strings.Join(out, ", ")
}

// insertDeadLetters stores msgs as dead letters. An offset can only be committed once, so a conflict means
// the topic was recreated or its offsets reset: the newer message replaces the older one rather than being
// dropped while the metrics count it.
func insertDeadLetters(ctx context.Context, tx pgx.Tx, b *Batch, msgs []Message) ([]DeadLetter, error) {
	var q pgx.Batch
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		d := DeadLetter{Offset: m.Offset, Reason: m.Failure.Reason, Err: m.Failure.Err.Error()}
		out = append(out, d)
		q.Queue(`INSERT INTO dead_letters (consumer_group, topic, partition, "offset", key, value, reason, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (consumer_group, topic, partition, "offset") DO UPDATE
			SET key = EXCLUDED.key, value = EXCLUDED.value, reason = EXCLUDED.reason, error = EXCLUDED.error,
				created_at = now()`,
			b.Group, b.Topic, b.Partition, m.Offset, m.Key, m.Value, d.Reason, sanitizeText(d.Err))
	}
	if err := tx.SendBatch(ctx, &q).Close(); err != nil {
		return nil, fmt.Errorf("insert %d dead letters: %w", len(msgs), err)
	}
	return out, nil
}
