package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// NextOffsets returns the stored next offset of each of partitions that has one. A partition missing from the
// map has never committed a batch and starts from the consumer's reset point.
func NextOffsets(ctx context.Context, db DB, group, topic string, partitions []int32) (map[int32]int64, error) {
	rows, err := db.Query(ctx, `
		SELECT partition, next_offset FROM kafka_offsets
		WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3)`, group, topic, partitions)
	if err != nil {
		return nil, fmt.Errorf("read next offsets of %s: %w", topic, err)
	}
	defer rows.Close()
	out := make(map[int32]int64, len(partitions))
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("scan next offset of %s: %w", topic, err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read next offsets of %s: %w", topic, err)
	}
	return out, nil
}

// PartitionOffset is a stored next offset.
type PartitionOffset struct {
	Group      string
	Topic      string
	Partition  int32
	NextOffset int64
	UpdatedAt  time.Time
}

// ListOffsets returns every stored offset, of one group or (group == "") of all.
func ListOffsets(ctx context.Context, db DB, group string) ([]PartitionOffset, error) {
	rows, err := db.Query(ctx, `
		SELECT consumer_group, topic, partition, next_offset, updated_at FROM kafka_offsets
		WHERE $1 = '' OR consumer_group = $1
		ORDER BY consumer_group, topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	defer rows.Close()
	var out []PartitionOffset
	for rows.Next() {
		var o PartitionOffset
		if err := rows.Scan(&o.Group, &o.Topic, &o.Partition, &o.NextOffset, &o.UpdatedAt); err != nil {
			return nil, fmt.Errorf("scan offset: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	return out, nil
}

// OffsetChange is an operator's change of a partition's stored next offset.
type OffsetChange struct {
	Group     string
	Topic     string
	Partition int32
	// To is the new next offset: the next message the group stores is this one.
	To int64
	// By says who made the change (an operator, a host); Reason why. Both are recorded.
	By, Reason string
}

// SetOffset moves a partition's stored next offset to c.To and records the change in offset_changes, in one
// transaction. It returns the offset it replaced (nil when the partition had none). An owner that is running
// is fenced by its next batch (its compare-and-set no longer matches) and restarts from the new offset, so the
// change is safe while `chainsink run` runs.
func SetOffset(ctx context.Context, db DB, c OffsetChange) (*int64, error) {
	if c.To < 0 {
		return nil, fmt.Errorf("set offset of %s/%d: %d is not an offset", c.Topic, c.Partition, c.To)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("set offset of %s/%d: begin: %w", c.Topic, c.Partition, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var from *int64
	err = tx.QueryRow(ctx, `SELECT next_offset FROM kafka_offsets
		WHERE consumer_group = $1 AND topic = $2 AND partition = $3 FOR UPDATE`, c.Group, c.Topic, c.Partition).Scan(&from)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("set offset of %s/%d: read the stored offset: %w", c.Topic, c.Partition, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO kafka_offsets (consumer_group, topic, partition, next_offset, updated_at)
		VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
		c.Group, c.Topic, c.Partition, c.To); err != nil {
		return nil, fmt.Errorf("set offset of %s/%d: %w", c.Topic, c.Partition, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO offset_changes (consumer_group, topic, partition, from_offset, to_offset, changed_by, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.Group, c.Topic, c.Partition, from, c.To, c.By, c.Reason); err != nil {
		return nil, fmt.Errorf("set offset of %s/%d: record the change: %w", c.Topic, c.Partition, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("set offset of %s/%d: commit: %w", c.Topic, c.Partition, err)
	}
	return from, nil
}

// OffsetChangeRow is a recorded OffsetChange.
type OffsetChangeRow struct {
	OffsetChange
	ID        int64
	From      *int64
	ChangedAt time.Time
}

// ListOffsetChanges returns the recorded changes of one group (every group when group is ""), newest first.
func ListOffsetChanges(ctx context.Context, db DB, group string, limit int) ([]OffsetChangeRow, error) {
	rows, err := db.Query(ctx, `
		SELECT id, consumer_group, topic, partition, from_offset, to_offset, changed_by, reason, changed_at
		FROM offset_changes WHERE $1 = '' OR consumer_group = $1 ORDER BY id DESC LIMIT $2`, group, limit)
	if err != nil {
		return nil, fmt.Errorf("list offset changes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (c OffsetChangeRow, err error) {
		err = r.Scan(&c.ID, &c.Group, &c.Topic, &c.Partition, &c.From, &c.To, &c.By, &c.Reason, &c.ChangedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list offset changes: %w", err)
	}
	return out, nil
}
