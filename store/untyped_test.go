package store_test

import (
	"context"
	"maps"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// untypedSets are a factory's children (the WETH/USDT pair's Swap and Sync) and one contract by address
// (WETH, every event and function); the configurations below store them with and without
// `events_table: untyped` and `calls_table: untyped`.
const untypedSets = `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync]
  - name: weth
    abi: WETH9
    address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    calls: ["*"]
`

type logPos struct{ block, index int64 }

// positions reads the (block_number, index) of every row of the tables; index is log_index or
// transaction_index.
func positions(t *testing.T, db store.DB, index string, tables ...string) map[logPos]bool {
	t.Helper()
	out := map[logPos]bool{}
	for _, table := range tables {
		where := ""
		if index == "transaction_index" && table != "calls" {
			where = ` WHERE trace_address = '{}'` // a typed call table's own calls; internal ones are never in calls
		}
		rows, err := db.Query(context.Background(), `SELECT block_number, `+index+`::bigint FROM `+pgx.Identifier{table}.Sanitize()+where)
		if err != nil {
			t.Fatal(err)
		}
		var p logPos
		if _, err := pgx.ForEachRow(rows, []any{&p.block, &p.index}, func() error {
			out[p] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// typedTables are the names of w's typed event tables (ScopeLog) or call tables (ScopeTransaction).
func (w *typedWorld) typedTables(scope chain.Scope) []string {
	var out []string
	for _, tb := range w.schema {
		if tb.Scope == scope && tb != chain.ChildrenTable {
			out = append(out, tb.Name)
		}
	}
	return out
}

// untypedCase is one generic table and the typed tables whose rows it must not repeat.
type untypedCase struct {
	table, index string
	scope        chain.Scope
	least        int // typed rows block 17173049 gives at least
}

// The block has the pair's 2 Swaps and 2 Syncs and WETH's events; one transaction calls WETH itself.
var untypedCases = []untypedCase{{"events", "log_index", chain.ScopeLog, 5}, {"calls", "transaction_index", chain.ScopeTransaction, 1}}

// TestUntypedEventsAreStoredOnce: with `events_table: untyped` and `calls_table: untyped`, events and calls
// hold exactly what they hold without them less the logs and transactions that a typed table holds, and the
// typed tables are the same, whichever commits first of the pair's creation and its swaps (the swaps first:
// their events are removed when the pair is registered and its rows derived) or both in one batch. A redecode
// of the range keeps it so, and a redecode of the typed tables alone turns what the default stored into it.
func TestUntypedEventsAreStoredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	write := func(w *typedWorld, order string) {
		switch order {
		case "creation first":
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99))
			w.write(t, w.s.Pool(), 1, 0, swapBlock(t, 100))
		case "swaps first":
			w.write(t, w.s.Pool(), 1, 0, swapBlock(t, 100))
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99))
		case "one batch":
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99), swapBlock(t, 100))
		}
	}
	all := newTypedWorld(t, untypedSets)
	write(all, "creation first")
	want, typedRows := map[string]map[logPos]bool{}, map[string]map[logPos]bool{}
	for _, c := range untypedCases {
		everything := positions(t, all.s.Pool(), c.index, c.table)
		typedRows[c.table] = positions(t, all.s.Pool(), c.index, all.typedTables(c.scope)...)
		if len(typedRows[c.table]) < c.least {
			t.Fatalf("the typed tables hold %d of the %s; more were expected", len(typedRows[c.table]), c.table)
		}
		want[c.table] = map[logPos]bool{}
		for p := range everything {
			if !typedRows[c.table][p] {
				want[c.table][p] = true
			}
		}
		if len(want[c.table]) != len(everything)-len(typedRows[c.table]) {
			t.Fatalf("%s holds %d rows, %d of them typed: a typed row without its %s row", c.table, len(everything), len(typedRows[c.table]), c.table)
		}
	}
	check := func(w *typedWorld, what string) {
		t.Helper()
		for _, c := range untypedCases {
			if got := positions(t, w.s.Pool(), c.index, c.table); !maps.Equal(got, want[c.table]) {
				extra, missing := 0, 0
				for p := range got {
					if !want[c.table][p] {
						extra++
					}
				}
				for p := range want[c.table] {
					if !got[p] {
						missing++
					}
				}
				t.Errorf("%s: %s holds %d rows, want %d: %d typed ones kept, %d others missing", what, c.table, len(got), len(want[c.table]), extra, missing)
			}
			if got := positions(t, w.s.Pool(), c.index, w.typedTables(c.scope)...); !maps.Equal(got, typedRows[c.table]) {
				t.Errorf("%s: the typed tables hold %d of the %s, want %d", what, len(got), c.table, len(typedRows[c.table]))
			}
		}
	}
	both := store.Untyped{Events: true, Calls: true}
	for _, order := range []string{"creation first", "swaps first", "one batch"} {
		w := newTypedWorld(t, "events_table: untyped\ncalls_table: untyped\n"+untypedSets)
		write(w, order)
		check(w, order)
		if order == "swaps first" {
			if _, err := store.ReplaceDerivedWith(ctx, w.s.Pool(), 99, 100, store.DeriveOptions{Typed: w.schema,
				Discovery: w.tables.Discovery(), Untyped: both}, w.dec.Enrich); err != nil {
				t.Fatal(err)
			}
			check(w, "redecoded")
		}
	}
	if _, err := store.ReplaceDerivedWith(ctx, all.s.Pool(), 99, 100, store.DeriveOptions{Typed: all.schema,
		Discovery: all.tables.Discovery(), TypedOnly: true, Untyped: both}, all.dec.DeriveTyped); err != nil {
		t.Fatal(err)
	}
	check(all, "the default, then a redecode --typed-only with untyped")
}
