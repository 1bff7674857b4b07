package store_test

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// TestCoreTablesMatchMigrations keeps the descriptors equal to what the migrations create, column for column
// with types and primary keys: a migration that changes a table must change its descriptor, or COPY would
// write the wrong columns and replacements match the wrong keys.
func TestCoreTablesMatchMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	sqlType := map[string]string{"timestamptz": "timestamp with time zone"}
	for _, tab := range chain.CoreTables {
		rows, err := s.Pool().Query(ctx, `
			SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
			WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, tab.Name)
		if err != nil {
			t.Fatal(err)
		}
		var got []chain.Column
		var c chain.Column
		if _, err := pgx.ForEachRow(rows, []any{&c.Name, &c.Type}, func() error {
			got = append(got, c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(tab.Columns)
		for i := range want {
			if s, ok := sqlType[want[i].Type]; ok {
				want[i].Type = s
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: columns in the catalog\n %v\ndescriptor\n %v", tab.Name, got, want)
		}
		var key []string
		if err := s.Pool().QueryRow(ctx, `
			SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i
			CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE i.indrelid = $1::regclass AND i.indisprimary`, tab.Name).Scan(&key); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(key, tab.Key) {
			t.Errorf("%s: primary key %v, descriptor %v", tab.Name, key, tab.Key)
		}
	}
}

// A table described at run time, as a typed per-event table will be: the store writes it by its descriptor
// and replaces its rows with their block (bundles) or their log (single items), like the core tables'.
var swapTable = chain.NewTable("test_evt_swap", chain.ScopeLog, []string{"block_number", "log_index"},
	[]chain.Column{{Name: "block_number", Type: "bigint"}, {Name: "log_index", Type: "integer"},
		{Name: "contract_address", Type: "bytea"}, {Name: "amount0_in", Type: "numeric(78,0)"},
		{Name: "note", Type: "text"}})

func createSwapTable(t *testing.T, db store.DB) {
	t.Helper()
	var cols []string
	for _, c := range swapTable.Columns {
		cols = append(cols, c.Name+" "+c.Type)
	}
	ddl := "CREATE TABLE " + swapTable.Name + " (" + strings.Join(cols, ", ") + ", PRIMARY KEY (" +
		strings.Join(swapTable.Key, ", ") + "))"
	if _, err := db.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
}

type swapRow struct {
	block    int64
	logIndex int32
	amount   string
	note     *string
}

func readSwaps(t *testing.T, db store.DB) []swapRow {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT block_number, log_index, amount0_in::text, note
		FROM test_evt_swap ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (s swapRow, err error) {
		err = r.Scan(&s.block, &s.logIndex, &s.amount, &s.note)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withSwaps(r chain.Rows, amounts ...int64) chain.Rows {
	r.Typed = nil
	for i, a := range amounts {
		r.AddTyped(swapTable, []any{r.Blocks[0].Number, int32(i), b(20, 7), big.NewInt(a), nil})
	}
	return r
}

func TestRunTimeTableIsWrittenAndReplacedByItsDescriptor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	createSwapTable(t, s.Pool())
	schema, err := chain.CoreTables.With(swapTable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.With(swapTable); err == nil {
		t.Fatal("a table described twice was accepted")
	}
	w := store.NewWriter(schema)

	b1 := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b1.Add(msg(0, withSwaps(sampleRows(10), 1, 2, 3)))
	b1.Add(msg(1, withSwaps(sampleRows(11), 4)))
	res, err := w.Write(ctx, s.Pool(), b1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows[swapTable.Name] != 4 {
		t.Fatalf("wrote %v", res.Rows)
	}
	if got := readSwaps(t, s.Pool()); len(got) != 4 || got[2].amount != "3" || got[2].note != nil {
		t.Fatalf("stored %+v", got)
	}

	// A newer version of block 10 with one swap: block 10's three are replaced, block 11's stays.
	b2 := store.NewBatch("g", "blocks", 0, 2, chain.ReplaceBlocks)
	b2.Add(msg(2, withSwaps(sampleRows(10), 99)))
	if _, err := w.Write(ctx, s.Pool(), b2); err != nil {
		t.Fatal(err)
	}
	got := readSwaps(t, s.Pool())
	want := []swapRow{{10, 0, "99", nil}, {11, 0, "4", nil}}
	if !slices.Equal(got, want) {
		t.Fatalf("after the replacement: %+v, want %+v", got, want)
	}

	// A single log item (ethereum-etl) replaces the typed rows of its own log only.
	item := chain.Rows{Logs: sampleRows(11).Logs[:1]}
	item.Logs[0].LogIndex = 0
	item.AddTyped(swapTable, []any{uint64(11), int32(0), b(20, 7), big.NewInt(5), nil})
	b3 := store.NewBatch("g", "logs", 0, 0, chain.ReplaceRows)
	b3.Add(msg(0, item))
	if _, err := w.Write(ctx, s.Pool(), b3); err != nil {
		t.Fatal(err)
	}
	want = []swapRow{{10, 0, "99", nil}, {11, 0, "5", nil}}
	if got := readSwaps(t, s.Pool()); !slices.Equal(got, want) {
		t.Fatalf("after the item: %+v, want %+v", got, want)
	}
}

// A typed row that travels without its log replaces its own stored row only: the log and the other tables'
// rows of that log stay.
func TestRunTimeRowAloneReplacesOnlyItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	createSwapTable(t, s.Pool())
	schema, err := chain.CoreTables.With(swapTable)
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(schema)
	b1 := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b1.Add(msg(0, withSwaps(sampleRows(10), 1, 2)))
	if _, err := w.Write(ctx, s.Pool(), b1); err != nil {
		t.Fatal(err)
	}
	before, err := pgtest.ReadRows(ctx, s.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}

	var alone chain.Rows
	alone.AddTyped(swapTable, []any{int64(10), int32(1), b(20, 7), big.NewInt(20), nil})
	b2 := store.NewBatch("g", "swaps", 0, 0, chain.ReplaceRows)
	b2.Add(msg(0, alone))
	b2.Add(msg(1, alone)) // delivered twice in one batch: one row
	if b2.Rows() != 1 {
		t.Fatalf("batch rows = %d, want 1", b2.Rows())
	}
	if _, err := w.Write(ctx, s.Pool(), b2); err != nil {
		t.Fatal(err)
	}
	want := []swapRow{{10, 0, "1", nil}, {10, 1, "20", nil}}
	if got := readSwaps(t, s.Pool()); !slices.Equal(got, want) {
		t.Fatalf("swaps %+v, want %+v", got, want)
	}
	after, err := pgtest.ReadRows(ctx, s.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, after, before)
}

// Run-time rows the writer cannot store as they are make their message a dead letter: never dropped while
// the offset moves on, never half written.
func TestInvalidRunTimeRowsAreDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	createSwapTable(t, s.Pool())
	unknown := chain.NewTable("not_written", chain.ScopeLog, []string{"block_number", "log_index"},
		[]chain.Column{{Name: "block_number", Type: "bigint"}, {Name: "log_index", Type: "integer"}})
	schema, err := chain.CoreTables.With(swapTable)
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(schema)
	var short, foreign chain.Rows
	short.AddTyped(swapTable, []any{int64(10), int32(0), b(20, 7)})
	foreign.AddTyped(unknown, []any{int64(10), int32(0)})
	good := withSwaps(sampleRows(11), 4)
	bt := store.NewBatch("g", "swaps", 0, 0, chain.ReplaceRows)
	bt.Add(msg(0, short))
	bt.Add(msg(1, foreign))
	bt.Add(msg(2, good))
	res, err := w.Write(ctx, s.Pool(), bt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 2 || res.DeadLetters[0].Reason != store.ReasonInvalidRows ||
		res.DeadLetters[1].Reason != store.ReasonInvalidRows {
		t.Fatalf("dead letters %+v", res.DeadLetters)
	}
	for _, d := range res.DeadLetters {
		if !strings.Contains(d.Err, "has 3 values for 5 columns") && !strings.Contains(d.Err, "not_written") {
			t.Errorf("dead letter error %q does not say what is wrong", d.Err)
		}
	}
	if got := readSwaps(t, s.Pool()); !slices.Equal(got, []swapRow{{11, 0, "4", nil}}) {
		t.Fatalf("swaps %+v", got)
	}
}
