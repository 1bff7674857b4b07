package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrFenced means another owner advanced the partition's offset since this batch began: the batch was rolled
// back and the caller must drop its state for the partition and wait for the group to assign it again.
var ErrFenced = errors.New("partition fenced: its offset was advanced by another owner")

// DeadLetter is a message stored in dead_letters instead of the tables.
type DeadLetter struct {
	Offset int64
	Reason string
	Err    string
}

// Result says what a committed batch wrote.
type Result struct {
	Rows        Counts
	DeadLetters []DeadLetter
}

// ReasonRejected is the dead-letter reason of a message whose rows Postgres refused.
const ReasonRejected = "rejected_by_postgres"

// WriteBatch stores b exactly once: fence, replacement, COPY and dead letters in one transaction. See the
// package documentation for the protocol. It returns ErrFenced when the partition has another owner, and any
// other error unchanged (IsTransient tells which are worth a retry); on error nothing was stored.
func WriteBatch(ctx context.Context, db DB, b *Batch) (Result, error) {
	res := Result{Rows: Counts{}}
	tx, err := db.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin batch transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; after a failure the error that matters is already returned

	if err := fence(ctx, tx, b); err != nil {
		return res, err
	}
	var dead []Message
	live := make([]Message, 0, len(b.Messages))
	for _, m := range b.Messages {
		if m.Failure != nil {
			dead = append(dead, m)
		} else if m.Rows.Len() > 0 {
			live = append(live, m)
		}
	}
	rejected, err := writeBisect(ctx, tx, b.Mode, live, res.Rows)
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
		return Result{}, fmt.Errorf("commit batch of %s/%d [%d,%d): %w", b.Topic, b.Partition, b.From, b.To, err)
	}
	return res, nil
}

// fence advances the partition's offset from b.From to b.To, or fails with ErrFenced. A partition seen for the
// first time gets its row here; if two owners race to create it, the loser conflicts, re-checks and is fenced.
func fence(ctx context.Context, tx pgx.Tx, b *Batch) error {
	tag, err := tx.Exec(ctx, `
		INSERT INTO kafka_offsets AS o (consumer_group, topic, partition, next_offset, updated_at)
		VALUES ($1, $2, $3, $5, now())
		ON CONFLICT (consumer_group, topic, partition) DO UPDATE
		SET next_offset = EXCLUDED.next_offset, updated_at = now()
		WHERE o.next_offset = $4`,
		b.Group, b.Topic, b.Partition, b.From, b.To)
	if err != nil {
		return fmt.Errorf("advance offset of %s/%d to %d: %w", b.Topic, b.Partition, b.To, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("advance offset of %s/%d from %d: %w", b.Topic, b.Partition, b.From, ErrFenced)
	}
	return nil
}

// writeBisect writes msgs under a savepoint. When Postgres rejects the write for a reason that retrying cannot
// fix, it rolls back to the savepoint and bisects until each rejected message stands alone; those are returned
// as dead letters and everything else is written. A batch with one bad message costs about log2(n) extra writes.
func writeBisect(ctx context.Context, tx pgx.Tx, mode Mode, msgs []Message, counts Counts) ([]Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create savepoint: %w", err)
	}
	local := Counts{}
	werr := writeRows(ctx, sp, mode, msgs, local)
	if werr == nil {
		if err := sp.Commit(ctx); err != nil {
			return nil, fmt.Errorf("release savepoint: %w", err)
		}
		for k, v := range local {
			counts[k] += v
		}
		return nil, nil
	}
	if err := sp.Rollback(ctx); err != nil {
		return nil, errors.Join(werr, fmt.Errorf("roll back to savepoint: %w", err))
	}
	if !IsRejected(werr) {
		return nil, werr
	}
	if len(msgs) == 1 {
		m := msgs[0]
		m.Failure = &Failure{Reason: ReasonRejected, Err: werr}
		return []Message{m}, nil
	}
	half := len(msgs) / 2
	left, err := writeBisect(ctx, tx, mode, msgs[:half], counts)
	if err != nil {
		return nil, err
	}
	right, err := writeBisect(ctx, tx, mode, msgs[half:], counts)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// writeRows deletes what msgs replace, then copies their rows in.
func writeRows(ctx context.Context, db DB, mode Mode, msgs []Message, counts Counts) error {
	if err := deleteReplaced(ctx, db, mode, msgs); err != nil {
		return err
	}
	return copyAll(ctx, db, msgs, counts)
}

func copyTable[T any](ctx context.Context, db DB, t *table[T], msgs []Message, counts Counts) error {
	if t.count(msgs) == 0 {
		return nil
	}
	n, err := db.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, t.source(msgs))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", t.name, err)
	}
	counts[t.name] += n
	return nil
}

// deleteReplaced removes the stored rows that msgs' natural keys replace, in one round trip.
func deleteReplaced(ctx context.Context, db DB, mode Mode, msgs []Message) error {
	var blocks []int64
	var txBlocks, logBlocks []int64
	var txIdx, logIdx []int32
	for i := range msgs {
		r := &msgs[i].Rows
		for j := range r.Blocks {
			blocks = append(blocks, int64(r.Blocks[j].Number))
		}
		if mode == ReplaceBlocks {
			continue
		}
		for j := range r.Transactions {
			txBlocks = append(txBlocks, int64(r.Transactions[j].BlockNumber))
			txIdx = append(txIdx, r.Transactions[j].TransactionIndex)
		}
		for j := range r.Logs {
			logBlocks = append(logBlocks, int64(r.Logs[j].BlockNumber))
			logIdx = append(logIdx, r.Logs[j].LogIndex)
		}
	}
	var q pgx.Batch
	if len(blocks) > 0 {
		q.Queue(`DELETE FROM blocks WHERE number = ANY($1)`, blocks)
		q.Queue(`DELETE FROM withdrawals WHERE block_number = ANY($1)`, blocks)
		if mode == ReplaceBlocks {
			for _, t := range []string{"transactions", "logs", "token_transfers", "events", "calls"} {
				q.Queue(`DELETE FROM `+t+` WHERE block_number = ANY($1)`, blocks)
			}
		}
	}
	if len(txBlocks) > 0 {
		for _, t := range []string{"transactions", "calls"} {
			q.Queue(`DELETE FROM `+t+` t USING unnest($1::bigint[], $2::integer[]) AS k(b, i)
				WHERE t.block_number = k.b AND t.transaction_index = k.i`, txBlocks, txIdx)
		}
	}
	if len(logBlocks) > 0 {
		for _, t := range []string{"logs", "events", "token_transfers"} {
			q.Queue(`DELETE FROM `+t+` t USING unnest($1::bigint[], $2::integer[]) AS k(b, i)
				WHERE t.block_number = k.b AND t.log_index = k.i`, logBlocks, logIdx)
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
