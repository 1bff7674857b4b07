package store

import (
	"context"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// The rows of a factory set's tables depend on which contracts are the factory's children, and the batch
// that registers a child (its creation event) may commit before or after the batches holding the child's
// logs, on any partition. Three rules make the result independent of that order:
//
//  1. a batch keeps a candidate row only if its contract is registered for the set in factory_children
//     when the batch writes, at the row's block or below (gate): a contract has no logs before it exists;
//  2. a batch that registers children derives, from the raw logs and transactions already stored (its own
//     included), every row of those children from their creation block on, and replaces theirs with them
//     (deriveChildren);
//  3. both run under one advisory lock per schema, taken with the fence: shared by a batch that only reads
//     the registry, exclusive by one that writes it. So a registration and a batch of candidate rows never
//     overlap: whichever commits second sees what the first did, under READ COMMITTED, because its
//     statements after the lock take new snapshots.
//
// Registrations are rare (a factory creates a few contracts a day), so the exclusive lock costs little.

// gateLock is the fence's statement for the discovery lock; exclusive when the batch registers children.
func gateLock(exclusive bool) string {
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	return `SELECT ` + fn + `(hashtextextended('chainsink:children:' || current_schema(), 0))`
}

func registers(r *chain.Rows) bool { return len(r.Typed[chain.ChildrenTable]) > 0 }

type childKey struct {
	set  string
	addr string
}

// gate returns sets with the candidate rows of unregistered contracts left out. The Rows it changes are
// copies: a batch that is retried must keep its candidates, since a child may be registered by then.
func (w *Writer) gate(ctx context.Context, db DB, sets []*chain.Rows) ([]*chain.Rows, error) {
	var names []string
	var addrs [][]byte
	seen := map[childKey]bool{}
	for _, r := range sets {
		for t, rows := range r.Typed {
			g, ok := w.gated[t]
			if !ok {
				continue
			}
			for _, row := range rows {
				a, _ := row[g.AddressColumn].([]byte)
				if k := (childKey{g.Set, string(a)}); !seen[k] {
					seen[k] = true
					names, addrs = append(names, g.Set), append(addrs, a)
				}
			}
		}
	}
	if len(names) == 0 {
		return sets, nil
	}
	rows, err := db.Query(ctx, `SELECT c.set_name, c.address, min(c.block_number) FROM factory_children c
		JOIN unnest($1::text[], $2::bytea[]) AS k(s, a) ON c.set_name = k.s AND c.address = k.a
		GROUP BY 1, 2`, names, addrs)
	if err != nil {
		return nil, fmt.Errorf("read registered factory children: %w", err)
	}
	known := map[childKey]int64{} // child → the block it was created at
	var k childKey
	var addr []byte
	var since int64
	if _, err := pgx.ForEachRow(rows, []any{&k.set, &addr, &since}, func() error {
		known[childKey{k.set, string(addr)}] = since
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read registered factory children: %w", err)
	}
	out := make([]*chain.Rows, len(sets))
	for i, r := range sets {
		out[i] = r
		var typed map[*chain.Table][][]any // a copy of r.Typed, made at the first row dropped
		for t, rows := range r.Typed {
			g, ok := w.gated[t]
			if !ok {
				continue
			}
			keep := rows[:0:0]
			for _, row := range rows {
				a, _ := row[g.AddressColumn].([]byte)
				n, _ := row[0].(int64)
				if b, ok := known[childKey{g.Set, string(a)}]; ok && n >= b {
					keep = append(keep, row)
				}
			}
			if len(keep) == len(rows) {
				continue
			}
			if typed == nil {
				typed = maps.Clone(r.Typed)
			}
			if len(keep) > 0 {
				typed[t] = keep
			} else {
				delete(typed, t)
			}
		}
		if typed != nil {
			cp := *r
			cp.Typed = typed
			out[i] = &cp
		}
	}
	return out, nil
}

// deriveChildren writes the rows of the children that sets register, derived from the raw logs and
// transactions stored from each child's creation block on, in place of the rows those children had.
func (w *Writer) deriveChildren(ctx context.Context, db DB, sets []*chain.Rows, counts chain.Counts) error {
	since := map[childKey]uint64{} // child → lowest block it was registered at
	for _, r := range sets {
		for _, row := range r.Typed[chain.ChildrenTable] {
			set, _ := row[chain.ChildSetColumn].(string)
			a, _ := row[chain.ChildAddressColumn].([]byte)
			n, _ := row[0].(int64)
			k := childKey{set, string(a)}
			if b, ok := since[k]; !ok || uint64(n) < b {
				since[k] = uint64(n)
			}
		}
	}
	return w.deriveSince(ctx, db, since, counts)
}

// deriveSince replaces the rows of each child of since from its block on with what the stored raw logs and
// transactions of those blocks give.
func (w *Writer) deriveSince(ctx context.Context, db DB, since map[childKey]uint64, counts chain.Counts) error {
	if len(since) == 0 {
		return nil
	}
	var addrs [][]byte
	seenAddr := map[string]bool{}
	var from uint64
	first := true
	for k, b := range since {
		if !seenAddr[k.addr] {
			seenAddr[k.addr] = true
			addrs = append(addrs, []byte(k.addr))
		}
		if first || b < from {
			from, first = b, false
		}
	}
	raw, err := readContractsRaw(ctx, db, addrs, from, hasCallTables(w.schema))
	if err != nil {
		return err
	}
	w.discovery.Derive(&raw)
	derived := chain.Rows{Typed: map[*chain.Table][][]any{}}
	var schema chain.Schema
	for _, g := range w.discovery.Gated {
		var keep [][]any
		for _, row := range raw.Typed[g.Table] {
			a, _ := row[g.AddressColumn].([]byte)
			n, _ := row[0].(int64)
			if b, ok := since[childKey{g.Set, string(a)}]; ok && uint64(n) >= b {
				keep = append(keep, row)
			}
		}
		var gone [][]byte
		var low []int64
		for k, b := range since {
			if k.set == g.Set {
				gone, low = append(gone, []byte(k.addr)), append(low, int64(b))
			}
		}
		if len(gone) == 0 {
			continue
		}
		t := g.Table
		if _, err := db.Exec(ctx, `DELETE FROM `+pgx.Identifier{t.Name}.Sanitize()+` t
			USING unnest($1::bytea[], $2::bigint[]) AS k(a, b)
			WHERE t.`+pgx.Identifier{t.Columns[g.AddressColumn].Name}.Sanitize()+` = k.a AND t.`+
			pgx.Identifier{t.BlockColumn()}.Sanitize()+` >= k.b`, gone, low); err != nil {
			return fmt.Errorf("replace rows of new children in %s: %w", t.Name, err)
		}
		if len(keep) > 0 {
			derived.Typed[t] = keep
			schema = append(schema, t)
		}
	}
	if err := copyTables(ctx, db, schema, []*chain.Rows{&derived}, counts); err != nil {
		return fmt.Errorf("write rows of new children: %w", err)
	}
	// The children's events and calls were stored there while they were not known as children.
	return w.untyped.delete(ctx, db, &derived)
}

// DeriveChildrenAbove completes a redecode of [from, to] with a factory gate (d, over the tables of schema):
// the children registered at those heights get their rows above to derived from what is stored there, in
// one transaction under the exclusive discovery lock (and their events and calls rows removed as u says, as
// WithUntyped). Without it, what `chainsink run` stored above to
// before the redecode registered them would keep none of their rows (its gate dropped them). It reads the
// stored logs above to once, however many children there are.
func DeriveChildrenAbove(ctx context.Context, db DB, schema chain.Schema, d *chain.Discovery, u Untyped, from, to uint64) (chain.Counts, error) {
	counts := chain.Counts{}
	tx, err := db.Begin(ctx)
	if err != nil {
		return counts, fmt.Errorf("begin deriving new children: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, gateLock(true)); err != nil {
		return counts, fmt.Errorf("take the factory children lock: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT set_name, address FROM factory_children WHERE block_number BETWEEN $1 AND $2`,
		int64(from), int64(to))
	if err != nil {
		return counts, fmt.Errorf("read the children registered in [%d,%d]: %w", from, to, err)
	}
	since := map[childKey]uint64{}
	var set string
	var addr []byte
	if _, err := pgx.ForEachRow(rows, []any{&set, &addr}, func() error {
		since[childKey{set, string(addr)}] = to + 1
		return nil
	}); err != nil {
		return counts, fmt.Errorf("read the children registered in [%d,%d]: %w", from, to, err)
	}
	if err := NewWriter(schema).WithDiscovery(d).WithUntyped(u).deriveSince(ctx, tx, since, counts); err != nil {
		return counts, err
	}
	if err := tx.Commit(ctx); err != nil {
		return counts, fmt.Errorf("commit the rows of new children: %w", err)
	}
	return counts, nil
}

// readContractsRaw loads the logs emitted by addrs, and the transactions sent to them, from block from on;
// with traces, the internal calls made to them too.
func readContractsRaw(ctx context.Context, db DB, addrs [][]byte, from uint64, traces bool) (chain.Rows, error) {
	var r chain.Rows
	var err error
	if r.Transactions, err = readRows(ctx, db, `SELECT `+transactionColumns+` FROM transactions
		WHERE block_number >= $1 AND to_address = ANY($2) ORDER BY block_number, transaction_index`,
		scanTransaction, int64(from), addrs); err != nil {
		return r, fmt.Errorf("read transactions of new children: %w", err)
	}
	if r.Logs, err = readRows(ctx, db, `SELECT `+logColumns+` FROM logs
		WHERE block_number >= $1 AND address = ANY($2) ORDER BY block_number, log_index`,
		scanLog, int64(from), addrs); err != nil {
		return r, fmt.Errorf("read logs of new children: %w", err)
	}
	if traces {
		if r.Traces, err = readRows(ctx, db, `SELECT `+traceColumns+` FROM traces
			WHERE block_number >= $1 AND to_address = ANY($2) AND `+internalCalls+`
			ORDER BY block_number, transaction_index, trace_address`,
			scanTrace, int64(from), addrs); err != nil {
			return r, fmt.Errorf("read internal calls of new children: %w", err)
		}
	}
	return r, nil
}
