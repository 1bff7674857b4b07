package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// RetentionOptions say how much history Retain keeps.
type RetentionOptions struct {
	// KeepBlocks is how many of the newest heights stay: the horizon is the highest stored block minus
	// KeepBlocks plus one, and every row below it goes.
	KeepBlocks int64
	// ChunkBlocks is the heights deleted per transaction. Default 10,000.
	ChunkBlocks int64
	// DryRun computes the horizon and counts nothing deleted.
	DryRun bool
	// Progress, when set, is called after each chunk with the heights done and the heights to do.
	Progress func(done, total int64)
}

// RetentionResult is what Retain did.
type RetentionResult struct {
	// Head is the highest stored block, Horizon the first block kept; From is the lowest block stored before
	// the run (nothing to delete when From >= Horizon).
	Head, Horizon, From int64
	// Deleted counts the rows deleted per table.
	Deleted chain.Counts
	// Tables are the tables the run deleted from.
	Tables []string
	// Dropped are the partitions dropped whole, all of whose heights were below the horizon (with DryRun:
	// those that would be), as table → partitions.
	Dropped map[string][]string
}

// ErrNothingStored is Retain's answer for a schema without blocks: no head to keep history from.
var ErrNothingStored = errors.New("no block is stored")

// Retain deletes every row below the horizon (the newest KeepBlocks heights stay) from every data table: the
// core tables and the typed tables of the registry. A partition all of whose heights are below the horizon is
// dropped whole, which costs nothing per row and gives its space back at once; what is left below the horizon
// (in the partition the horizon cuts, in unpartitioned tables, in a default partition) is deleted going up
// from the lowest stored height in chunks of ChunkBlocks, one transaction each, so an interrupted run leaves
// whole heights and is resumed by running it again. The run is recorded in retention_runs when it is done. The registries stay: factory_children
// (a child registered below the horizon still owns its later rows), tokens, dead letters, offsets.
//
// Deleting by height costs index maintenance and leaves the space to autovacuum. `chainsink run` may go on
// meanwhile: it writes the newest heights, these deletes the oldest; a drop waits for the batches in flight
// for at most partitionLockTimeout (new batches wait behind it), and is tried again a few times.
func Retain(ctx context.Context, db TxBeginner, o RetentionOptions) (RetentionResult, error) {
	res := RetentionResult{Deleted: chain.Counts{}, Dropped: map[string][]string{}}
	if o.KeepBlocks <= 0 {
		return res, errors.New("retention: keep at least one block")
	}
	if o.ChunkBlocks <= 0 {
		o.ChunkBlocks = 10_000
	}
	var lo, hi *int64
	if err := db.QueryRow(ctx, `SELECT min(number), max(number) FROM blocks`).Scan(&lo, &hi); err != nil {
		return res, fmt.Errorf("read the stored block range: %w", err)
	}
	if hi == nil {
		return res, ErrNothingStored
	}
	res.Head, res.From = *hi, *lo
	res.Horizon = max(*hi-o.KeepBlocks+1, 0)
	tables, err := retainedTables(ctx, db)
	if err != nil {
		return res, err
	}
	for _, t := range tables {
		res.Tables = append(res.Tables, t.name)
	}
	parts, err := Partitions(ctx, db)
	if err != nil {
		return res, err
	}
	for _, t := range tables {
		if p := parts[t.name]; p != nil {
			for _, s := range p.Spans {
				if s.To <= res.Horizon {
					res.Dropped[t.name] = append(res.Dropped[t.name], s.Name)
				}
			}
		}
	}
	if o.DryRun {
		return res, nil
	}
	var run int64
	if err := db.QueryRow(ctx, `INSERT INTO retention_runs (horizon, keep_blocks, head) VALUES ($1, $2, $3) RETURNING id`,
		res.Horizon, o.KeepBlocks, res.Head).Scan(&run); err != nil {
		return res, fmt.Errorf("record the retention run: %w", err)
	}
	var dropped []string
	for _, t := range tables {
		for _, name := range res.Dropped[t.name] {
			if err := dropPartition(ctx, db, name); err != nil {
				return res, err
			}
			dropped = append(dropped, name)
			if _, err := db.Exec(ctx, `UPDATE retention_runs SET dropped_partitions = $2 WHERE id = $1`, run, dropped); err != nil {
				return res, fmt.Errorf("record the dropped partition %s: %w", name, err)
			}
		}
	}
	// Other tables may hold rows below the lowest block (a block item not stored yet, items out of order):
	// start from the lowest height of any of them.
	from := res.From
	for _, t := range tables {
		var low *int64
		if err := db.QueryRow(ctx, `SELECT min(`+pgx.Identifier{t.block}.Sanitize()+`) FROM `+pgx.Identifier{t.name}.Sanitize()).
			Scan(&low); err != nil {
			return res, fmt.Errorf("read the lowest height of %s: %w", t.name, err)
		}
		if low != nil && *low < from {
			from = *low
		}
	}
	total := max(res.Horizon-from, 0)
	for lo := from; lo < res.Horizon; lo += o.ChunkBlocks {
		hi := min(lo+o.ChunkBlocks, res.Horizon)
		if err := deleteHeights(ctx, db, tables, lo, hi, res.Deleted); err != nil {
			return res, err
		}
		if o.Progress != nil {
			o.Progress(hi-from, total)
		}
	}
	var deleted int64
	for _, n := range res.Deleted {
		deleted += n
	}
	if _, err := db.Exec(ctx, `UPDATE retention_runs SET deleted = $2, finished_at = now() WHERE id = $1`, run, deleted); err != nil {
		return res, fmt.Errorf("record the end of the retention run: %w", err)
	}
	return res, nil
}

type retainedTable struct{ name, block string }

// retainedTables are the data tables: the core ones, then every typed table recorded in the registry
// (whether the configuration of now names it or not).
func retainedTables(ctx context.Context, db DB) ([]retainedTable, error) {
	var out []retainedTable
	for _, t := range chain.CoreTables {
		out = append(out, retainedTable{t.Name, t.BlockColumn()})
	}
	rows, err := db.Query(ctx, `SELECT table_name FROM typed_tables ORDER BY table_name`)
	if err != nil {
		return nil, fmt.Errorf("read typed_tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read typed_tables: %w", err)
	}
	for _, n := range names {
		out = append(out, retainedTable{n, "block_number"})
	}
	return out, nil
}

// deleteHeights deletes the rows of heights [lo, hi) from every table in one transaction.
func deleteHeights(ctx context.Context, db TxBeginner, tables []retainedTable, lo, hi int64, counts chain.Counts) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin deleting heights [%d,%d): %w", lo, hi, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var q pgx.Batch
	for _, t := range tables {
		col := pgx.Identifier{t.block}.Sanitize()
		q.Queue(`DELETE FROM `+pgx.Identifier{t.name}.Sanitize()+` WHERE `+col+` >= $1 AND `+col+` < $2`, lo, hi)
	}
	br := tx.SendBatch(ctx, &q)
	got := make([]int64, len(tables))
	for i, t := range tables {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("delete heights [%d,%d) of %s: %w", lo, hi, t.name, err)
		}
		got[i] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("delete heights [%d,%d): %w", lo, hi, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the deletion of heights [%d,%d): %w", lo, hi, err)
	}
	for i, t := range tables {
		counts[t.name] += got[i]
	}
	return nil
}

// dropPartition drops a partition: a moment's exclusive lock on its table, which waits for the batches in
// flight, so it is bounded by partitionLockTimeout and tried again.
func dropPartition(ctx context.Context, db TxBeginner, name string) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		if err = dropPartitionOnce(ctx, db, name); !isLockTimeout(err) {
			return err
		}
	}
	return fmt.Errorf("drop partition %s: the table stayed locked by other transactions: %w", name, err)
}

func dropPartitionOnce(ctx context.Context, db TxBeginner, name string) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin dropping partition %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(partitionLockTimeout.Milliseconds(), 10)); err != nil {
		return fmt.Errorf("drop partition %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop partition %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the drop of partition %s: %w", name, err)
	}
	return nil
}

// Horizon is where stored history starts by retention: the horizon of the newest finished retention run,
// and when it finished; nil when no run has finished.
type Horizon struct {
	Block      int64
	KeepBlocks int64
	At         time.Time
}

// ReadHorizon reads the horizon of the newest finished retention run; nil when there is none.
func ReadHorizon(ctx context.Context, db DB) (*Horizon, error) {
	var h Horizon
	err := db.QueryRow(ctx, `SELECT horizon, keep_blocks, finished_at FROM retention_runs WHERE finished_at IS NOT NULL
		ORDER BY finished_at DESC, id DESC LIMIT 1`).Scan(&h.Block, &h.KeepBlocks, &h.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the retention horizon: %w", err)
	}
	return &h, nil
}
