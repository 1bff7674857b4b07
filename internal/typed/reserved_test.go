package typed

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/pgtest"
)

// The reserved words that column names avoid are exactly those the server refuses as unquoted column names.
func TestReservedWordsMatchPostgres(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T') ORDER BY word`)
	if err != nil {
		t.Fatal(err)
	}
	words, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for w := range reserved {
		ours = append(ours, w)
	}
	slices.Sort(ours)
	if strings.Join(ours, " ") != strings.Join(words, " ") {
		t.Fatalf("reserved words differ from the server's:\n ours %v\n pg   %v", ours, words)
	}
	// And each one really is refused unquoted, and taken with the rule's trailing _.
	for _, w := range []string{"from", "to", "order", "user", "left"} {
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE kw (`+w+` int)`); err == nil {
			t.Fatalf("%s was accepted as a column name", w)
		}
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE kw (`+w+`_ int); DROP TABLE kw`); err != nil {
			t.Fatalf("%s_: %v", w, err)
		}
	}
}
