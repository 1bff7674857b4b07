package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/chainsink/chainsink/store/chain"
)

// withoutTypedEvents returns sets with the events whose log a typed row of the same Rows holds left out.
// Like gate, it changes copies: a batch that is retried starts again from its decoded rows.
func withoutTypedEvents(sets []*chain.Rows) []*chain.Rows {
	out := sets
	pos := map[chain.LogPosition]struct{}{}
	for i, r := range sets {
		if len(r.Events) == 0 || len(r.Typed) == 0 {
			continue
		}
		clear(pos)
		r.TypedLogPositions(pos)
		if len(pos) == 0 {
			continue
		}
		keep := make([]chain.Event, 0, len(r.Events))
		for _, e := range r.Events {
			if _, typed := pos[chain.LogPosition{Block: e.BlockNumber, Index: e.LogIndex}]; !typed {
				keep = append(keep, e)
			}
		}
		if len(keep) == len(r.Events) {
			continue
		}
		if len(out) > 0 && &out[0] == &sets[0] {
			out = slices.Clone(sets)
		}
		cp := *r
		cp.Events = keep
		out[i] = &cp
	}
	return out
}

// deleteTypedEvents removes the events rows of the logs that r's typed event tables hold: rows derived
// after those events were stored (a factory's children registered later, a redecode of the typed tables
// alone).
func deleteTypedEvents(ctx context.Context, db DB, r *chain.Rows) error {
	pos := map[chain.LogPosition]struct{}{}
	r.TypedLogPositions(pos)
	if len(pos) == 0 {
		return nil
	}
	blocks, indexes := make([]int64, 0, len(pos)), make([]int32, 0, len(pos))
	for p := range pos {
		blocks, indexes = append(blocks, int64(p.Block)), append(indexes, p.Index)
	}
	// block_number = ANY as well: an index scan of the primary key whatever the statistics say (see
	// TestItemDeletesUseTheBlockIndex for why the join alone is not enough).
	_, err := db.Exec(ctx, `DELETE FROM events e USING unnest($1::bigint[], $2::integer[]) AS k(b, i)
		WHERE e.block_number = ANY($1) AND e.block_number = k.b AND e.log_index = k.i`, blocks, indexes)
	if err != nil {
		return fmt.Errorf("delete the events that typed tables hold: %w", err)
	}
	return nil
}
