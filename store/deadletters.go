package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetterFilter selects stored dead letters. Every set field must match; the zero value selects all.
type DeadLetterFilter struct {
	// IDs, when not empty, selects these rows only.
	IDs    []int64
	Group  string
	Topic  string
	Reason string
	// AfterID selects rows with a greater id; with UpToID it lets a caller page through a fixed set of rows.
	AfterID int64
	// UpToID, when not 0, selects rows with an id up to and including it.
	UpToID int64
	// Limit, when not 0, returns at most that many rows (ListDeadLetters only).
	Limit int
}

// whereDeadLetters is the filter as SQL over the arguments $1..$6 of DeadLetterFilter.args.
const whereDeadLetters = `
	WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY($1::bigint[]))
	  AND ($2 = '' OR consumer_group = $2) AND ($3 = '' OR topic = $3) AND ($4 = '' OR reason = $4)
	  AND id > $5 AND ($6 = 0 OR id <= $6)`

func (f DeadLetterFilter) args() []any {
	ids := f.IDs
	if ids == nil {
		ids = []int64{}
	}
	return []any{ids, f.Group, f.Topic, f.Reason, f.AfterID, f.UpToID}
}

// DeadLetterRow is a stored dead letter without its payload, which may be megabytes.
type DeadLetterRow struct {
	ID        int64
	Group     string
	Topic     string
	Partition int32
	Offset    int64
	Reason    string
	Error     string
	CreatedAt time.Time
	// KeySize and ValueSize are the payload's sizes in bytes; -1 means NULL.
	KeySize   int
	ValueSize int
}

// ListDeadLetters returns the dead letters that f selects, ordered by id (the order they were stored in, which
// within a partition is the order of their offsets).
func ListDeadLetters(ctx context.Context, db DB, f DeadLetterFilter) ([]DeadLetterRow, error) {
	var limit any // NULL is LIMIT ALL
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := db.Query(ctx, `
		SELECT id, consumer_group, topic, partition, "offset", reason, error, created_at,
		       coalesce(octet_length(key), -1), coalesce(octet_length(value), -1)
		FROM dead_letters`+whereDeadLetters+`
		ORDER BY id LIMIT $7`, append(f.args(), limit)...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (d DeadLetterRow, err error) {
		err = row.Scan(&d.ID, &d.Group, &d.Topic, &d.Partition, &d.Offset, &d.Reason, &d.Error, &d.CreatedAt,
			&d.KeySize, &d.ValueSize)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// CountDeadLetters is the number of dead letters that f selects, its Limit ignored.
func CountDeadLetters(ctx context.Context, db DB, f DeadLetterFilter) (int64, error) {
	var n int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM dead_letters`+whereDeadLetters, f.args()...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// MaxDeadLetterID is the highest id stored, 0 when there is none. A replay pages up to it, so that the dead
// letters its own messages may cause while it runs are not picked up again.
func MaxDeadLetterID(ctx context.Context, db DB) (int64, error) {
	var id int64
	if err := db.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM dead_letters`).Scan(&id); err != nil {
		return 0, fmt.Errorf("read newest dead letter id: %w", err)
	}
	return id, nil
}

// DeadLetterPayload is a dead letter's original Kafka key and value (nil is NULL).
type DeadLetterPayload struct {
	Key   []byte
	Value []byte
}

// DeadLetterPayloads returns the key and value of each of ids that still exists.
func DeadLetterPayloads(ctx context.Context, db DB, ids []int64) (map[int64]DeadLetterPayload, error) {
	rows, err := db.Query(ctx, `SELECT id, key, value FROM dead_letters WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read dead letter payloads: %w", err)
	}
	out := make(map[int64]DeadLetterPayload, len(ids))
	var id int64
	var p DeadLetterPayload
	if _, err := pgx.ForEachRow(rows, []any{&id, &p.Key, &p.Value}, func() error {
		out[id] = DeadLetterPayload{Key: p.Key, Value: p.Value}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read dead letter payloads: %w", err)
	}
	return out, nil
}

// DeleteDeadLetters removes the rows ids and returns how many existed.
func DeleteDeadLetters(ctx context.Context, db DB, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := db.Exec(ctx, `DELETE FROM dead_letters WHERE id = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("delete %d dead letters: %w", len(ids), err)
	}
	return tag.RowsAffected(), nil
}
