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
// (WETH, every event); the configurations below store them with and without `events_table: untyped`.
const untypedSets = `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync]
  - name: weth
    abi: WETH9
    address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
`

type logPos struct{ block, index int64 }

// positions reads the (block_number, log_index) of every row of the tables.
func positions(t *testing.T, db store.DB, tables ...string) map[logPos]bool {
	t.Helper()
	out := map[logPos]bool{}
	for _, table := range tables {
		rows, err := db.Query(context.Background(), `SELECT block_number, log_index::bigint FROM `+pgx.Identifier{table}.Sanitize())
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

// typedEventTables are the names of w's typed event tables.
func (w *typedWorld) typedEventTables() []string {
	var out []string
	for _, tb := range w.schema {
		if tb.Scope == chain.ScopeLog && tb != chain.ChildrenTable {
			out = append(out, tb.Name)
		}
	}
	return out
}

// TestUntypedEventsAreStoredOnce: with `events_table: untyped`, events holds exactly what it holds without
// it less the logs that a typed table holds, and the typed tables are the same, whichever commits first of
// the pair's creation and its swaps (the swaps first: their events are removed when the pair is registered
// and its rows derived) or both in one batch. A redecode of the range keeps it so, and a redecode of the
// typed tables alone turns what the default stored into it.
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
	everything := positions(t, all.s.Pool(), "events")
	typedRows := positions(t, all.s.Pool(), all.typedEventTables()...)
	if len(typedRows) < 5 {
		t.Fatalf("the typed tables hold %d logs; the pair's 4 and WETH's were expected", len(typedRows))
	}
	want := map[logPos]bool{}
	for p := range everything {
		if !typedRows[p] {
			want[p] = true
		}
	}
	if len(want) != len(everything)-len(typedRows) {
		t.Fatalf("events holds %d rows, %d of them typed: a typed row without its event", len(everything), len(typedRows))
	}
	check := func(w *typedWorld, what string) {
		t.Helper()
		if got := positions(t, w.s.Pool(), "events"); !maps.Equal(got, want) {
			extra, missing := 0, 0
			for p := range got {
				if !want[p] {
					extra++
				}
			}
			for p := range want {
				if !got[p] {
					missing++
				}
			}
			t.Errorf("%s: events holds %d rows, want %d: %d typed ones kept, %d others missing", what, len(got), len(want), extra, missing)
		}
		if got := positions(t, w.s.Pool(), w.typedEventTables()...); !maps.Equal(got, typedRows) {
			t.Errorf("%s: the typed tables hold %d logs, want %d", what, len(got), len(typedRows))
		}
	}
	for _, order := range []string{"creation first", "swaps first", "one batch"} {
		w := newTypedWorld(t, "events_table: untyped\n"+untypedSets)
		write(w, order)
		check(w, order)
		if order == "swaps first" {
			if _, err := store.ReplaceDerivedWith(ctx, w.s.Pool(), 99, 100, store.DeriveOptions{Typed: w.schema,
				Discovery: w.tables.Discovery(), UntypedEvents: true}, w.dec.Enrich); err != nil {
				t.Fatal(err)
			}
			check(w, "redecoded")
		}
	}
	if _, err := store.ReplaceDerivedWith(ctx, all.s.Pool(), 99, 100, store.DeriveOptions{Typed: all.schema,
		Discovery: all.tables.Discovery(), TypedOnly: true, UntypedEvents: true}, all.dec.DeriveTyped); err != nil {
		t.Fatal(err)
	}
	check(all, "events_table: all, then a redecode --typed-only with untyped")
}
