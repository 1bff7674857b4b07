package store

import (
	"context"
	"fmt"
	"time"
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
