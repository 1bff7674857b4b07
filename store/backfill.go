package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BackfillCheckpoint is the progress of one `chainsink backfill` job (table backfill_checkpoints). NextBlock is
// the contiguous low watermark: every block in [FromBlock, NextBlock) has been delivered to Topic.
type BackfillCheckpoint struct {
	Job       string
	Topic     string
	FromBlock int64
	ToBlock   int64
	NextBlock int64
	UpdatedAt time.Time
}

// LoadCheckpoint returns the checkpoint of job; ok is false when the job has none yet.
func LoadCheckpoint(ctx context.Context, db DB, job string) (cp BackfillCheckpoint, ok bool, err error) {
	err = db.QueryRow(ctx, `
		SELECT job, topic, from_block, to_block, next_block, updated_at FROM backfill_checkpoints
		WHERE job = $1`, job).Scan(&cp.Job, &cp.Topic, &cp.FromBlock, &cp.ToBlock, &cp.NextBlock, &cp.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackfillCheckpoint{}, false, nil
	}
	if err != nil {
		return BackfillCheckpoint{}, false, fmt.Errorf("load backfill checkpoint %q: %w", job, err)
	}
	return cp, true, nil
}

// SaveCheckpoint creates or updates the checkpoint of cp.Job. The low watermark never moves backwards: a stale
// writer (an older process of the same job, a delayed save) cannot undo progress. Topic, FromBlock and ToBlock
// are overwritten (a job whose --to is "latest" extends its range on every run). UpdatedAt is ignored; the row
// gets now().
func SaveCheckpoint(ctx context.Context, db DB, cp BackfillCheckpoint) error {
	if _, err := db.Exec(ctx, `
		INSERT INTO backfill_checkpoints AS c (job, topic, from_block, to_block, next_block, updated_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (job) DO UPDATE SET
			topic = EXCLUDED.topic,
			from_block = EXCLUDED.from_block,
			to_block = EXCLUDED.to_block,
			next_block = GREATEST(c.next_block, EXCLUDED.next_block),
			updated_at = now()`,
		cp.Job, cp.Topic, cp.FromBlock, cp.ToBlock, cp.NextBlock); err != nil {
		return fmt.Errorf("save backfill checkpoint %q at block %d: %w", cp.Job, cp.NextBlock, err)
	}
	return nil
}
