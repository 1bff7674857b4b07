package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/chainsink/chainsink/store/chain"
)

// Untyped says which generic tables keep only what no typed table holds (a configuration's
// `events_table: untyped` and `calls_table: untyped`): an event whose log has a row in a typed event table,
// or a call whose transaction's own call has a row in a typed call table, is written there alone.
type Untyped struct {
	Events bool
	Calls  bool
}

// without returns sets with the events and calls that a typed row of the same Rows holds left out. Like
// gate, it changes copies: a batch that is retried starts again from its decoded rows.
func (u Untyped) without(sets []*chain.Rows) []*chain.Rows {
	if !u.Events && !u.Calls {
		return sets
	}
	out := sets
	logs, txs := map[chain.Position]struct{}{}, map[chain.Position]struct{}{}
	for i, r := range sets {
		if len(r.Typed) == 0 {
			continue
		}
		events, calls := r.Events, r.Calls
		if u.Events && len(events) > 0 {
			clear(logs)
			r.TypedPositions(chain.ScopeLog, logs)
			events = keepUntyped(events, logs, func(e *chain.Event) chain.Position { return chain.Position{Block: e.BlockNumber, Index: e.LogIndex} })
		}
		if u.Calls && len(calls) > 0 {
			clear(txs)
			r.TypedPositions(chain.ScopeTransaction, txs)
			calls = keepUntyped(calls, txs, func(c *chain.Call) chain.Position {
				return chain.Position{Block: c.BlockNumber, Index: c.TransactionIndex}
			})
		}
		if len(events) == len(r.Events) && len(calls) == len(r.Calls) {
			continue
		}
		if len(out) > 0 && &out[0] == &sets[0] {
			out = slices.Clone(sets)
		}
		cp := *r
		cp.Events, cp.Calls = events, calls
		out[i] = &cp
	}
	return out
}

// keepUntyped returns rows without those at a position of typed, or rows itself when none is.
func keepUntyped[T any](rows []T, typed map[chain.Position]struct{}, at func(*T) chain.Position) []T {
	if len(typed) == 0 {
		return rows
	}
	var keep []T
	for i := range rows {
		if _, ok := typed[at(&rows[i])]; ok {
			if keep == nil {
				keep = append(make([]T, 0, len(rows)), rows[:i]...)
			}
			continue
		}
		if keep != nil {
			keep = append(keep, rows[i])
		}
	}
	if keep == nil {
		return rows
	}
	return keep
}

// delete removes the events and calls rows that r's typed tables hold: rows derived after those were stored
// (a factory's children registered later, a redecode of the typed tables alone).
func (u Untyped) delete(ctx context.Context, db DB, r *chain.Rows) error {
	for _, g := range []struct {
		on    bool
		scope chain.Scope
		table string
		index string
	}{{u.Events, chain.ScopeLog, "events", "log_index"}, {u.Calls, chain.ScopeTransaction, "calls", "transaction_index"}} {
		if !g.on {
			continue
		}
		pos := map[chain.Position]struct{}{}
		r.TypedPositions(g.scope, pos)
		if len(pos) == 0 {
			continue
		}
		blocks, indexes := make([]int64, 0, len(pos)), make([]int32, 0, len(pos))
		for p := range pos {
			blocks, indexes = append(blocks, int64(p.Block)), append(indexes, p.Index)
		}
		// block_number = ANY as well: an index scan of the primary key whatever the statistics say (see
		// TestItemDeletesUseTheBlockIndex for why the join alone is not enough).
		if _, err := db.Exec(ctx, `DELETE FROM `+g.table+` x USING unnest($1::bigint[], $2::integer[]) AS k(b, i)
			WHERE x.block_number = ANY($1) AND x.block_number = k.b AND x.`+g.index+` = k.i`, blocks, indexes); err != nil {
			return fmt.Errorf("delete the %s that typed tables hold: %w", g.table, err)
		}
	}
	return nil
}
