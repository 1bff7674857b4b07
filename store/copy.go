package store

import (
	"context"
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// CopySource streams the rows of table t from a list of row sets, in order, as pgx's CopyFrom reads them.
// Rows go through one reused []any, so a batch never exists a second time as [][]any; numeric columns get
// their *big.Int converted for the driver (see chain.Table). The benchmark's writers use it too, so that the
// ceiling they measure encodes rows exactly as the exactly-once path does.
func CopySource(t *chain.Table, sets []*chain.Rows) pgx.CopyFromSource {
	return &rowSource{t: t, sets: sets, ri: -1, vals: make([]any, len(t.Columns))}
}

// countRows is how many rows of t the sets hold.
func countRows(t *chain.Table, sets []*chain.Rows) int {
	n := 0
	for _, r := range sets {
		n += t.Len(r)
	}
	return n
}

type rowSource struct {
	t    *chain.Table
	sets []*chain.Rows
	si   int // next set
	ri   int // current row of sets[si-1]
	n    int // rows of sets[si-1]
	vals []any
}

func (s *rowSource) Next() bool {
	for {
		if s.ri+1 < s.n {
			s.ri++
			return true
		}
		if s.si >= len(s.sets) {
			return false
		}
		s.n = s.t.Len(s.sets[s.si])
		s.si++
		s.ri = -1
	}
}

func (s *rowSource) Values() ([]any, error) {
	s.t.Values(s.sets[s.si-1], s.ri, s.vals)
	for _, i := range s.t.NumericColumns() {
		s.vals[i] = num(s.vals[i])
	}
	return s.vals, nil
}

func (s *rowSource) Err() error { return nil }

// num encodes a 256-bit integer for numeric(78,0) (see bigNumeric); a nil *big.Int, or nil, is NULL. Values
// of other types (pgtype.Numeric, or a string that a run-time table computed) pass through.
func num(v any) any {
	switch x := v.(type) {
	case *big.Int:
		if x == nil {
			return nil
		}
		return bigNumeric{x}
	case nil:
		return nil
	}
	return v
}

// copyTables copies every table's rows of sets, in schema order, and adds what it wrote to counts.
func copyTables(ctx context.Context, db DB, schema chain.Schema, sets []*chain.Rows, counts chain.Counts) error {
	for _, t := range schema {
		if countRows(t, sets) == 0 {
			continue
		}
		n, err := Copy(ctx, db, t, sets)
		if err != nil {
			return fmt.Errorf("copy into %s: %w", t.Name, err)
		}
		counts[t.Name] += n
	}
	return nil
}
