package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LoadFollowHashes returns the block hashes that follower job has published, ascending by height.
func LoadFollowHashes(ctx context.Context, db DB, job string) ([]StoredBlockHash, error) {
	rows, err := db.Query(ctx, `SELECT number, hash FROM follow_blocks WHERE job = $1 ORDER BY number`, job)
	if err != nil {
		return nil, fmt.Errorf("load the published hashes of %s: %w", job, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[StoredBlockHash])
	if err != nil {
		return nil, fmt.Errorf("load the published hashes of %s: %w", job, err)
	}
	return out, nil
}

// SaveFollowHashes records, in one transaction, that follower job has published hashes: with above set, every
// height above *above is forgotten first (a reorg's fork point); then hashes are stored (replacing what a
// height held) and all but the newest keep heights are dropped.
func SaveFollowHashes(ctx context.Context, db DB, job string, above *int64, hashes []StoredBlockHash, keep int) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("save the published hashes of %s: %w", job, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var q pgx.Batch
	if above != nil {
		q.Queue(`DELETE FROM follow_blocks WHERE job = $1 AND number > $2`, job, *above)
	}
	if len(hashes) > 0 {
		numbers := make([]int64, len(hashes))
		values := make([][]byte, len(hashes))
		for i, h := range hashes {
			numbers[i], values[i] = h.Number, h.Hash
		}
		q.Queue(`INSERT INTO follow_blocks (job, number, hash) SELECT $1, n, h FROM unnest($2::bigint[], $3::bytea[]) AS k(n, h)
			ON CONFLICT (job, number) DO UPDATE SET hash = EXCLUDED.hash`, job, numbers, values)
	}
	q.Queue(`DELETE FROM follow_blocks WHERE job = $1 AND number <= (SELECT max(number) FROM follow_blocks WHERE job = $1) - $2`,
		job, keep)
	if err := tx.SendBatch(ctx, &q).Close(); err != nil {
		return fmt.Errorf("save the published hashes of %s: %w", job, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("save the published hashes of %s: %w", job, err)
	}
	return nil
}
