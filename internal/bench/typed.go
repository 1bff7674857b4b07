package bench

import (
	"context"
	"fmt"
	"os"

	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// typedSetup is the typed scenario's configuration: its tables, and each bundled block's typed rows, derived
// before anything is timed.
type typedSetup struct {
	path         string
	tables       *typed.Tables
	schema       chain.Schema // core tables, then the typed ones (and factory_children)
	rows         []map[*chain.Table][][]any
	rowsPerBlock int
}

func loadTyped(path string, w *Workload) (*typedSetup, error) {
	yaml, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	ts, err := typed.CompileYAML(path, yaml, nil)
	if err != nil {
		return nil, err
	}
	schema, err := chain.CoreTables.With(ts.WriteSchema()...)
	if err != nil {
		return nil, err
	}
	t := &typedSetup{path: path, tables: ts, schema: schema, rows: make([]map[*chain.Table][][]any, w.Bundled)}
	for i := range t.rows {
		r := w.Blocks[i].Rows
		ts.Derive(&r)
		t.rows[i] = r.Typed
	}
	if len(t.rows) > 0 {
		for _, rs := range t.rows[0] {
			t.rowsPerBlock += len(rs)
		}
	}
	return t, nil
}

// apply creates the typed tables in st's schema and records them, as `chainsink tables apply` does.
func (t *typedSetup) apply(ctx context.Context, st *store.Store) error {
	if _, err := store.ApplyTables(ctx, st.Pool(), st.Schema(), t.tables.Records()); err != nil {
		return fmt.Errorf("apply the typed tables of %s: %w", t.path, err)
	}
	return nil
}

// typedRuns are the ceiling and chainsink's bundle run again, with the typed tables of the configuration:
// (a) copies each block's typed rows too, and chainsink runs with --config.
func (b *bencher) typedRuns(ctx context.Context) error {
	t := b.typed
	perBlock := b.w.RowsPerBlock() + t.rowsPerBlock
	want := int64(b.w.Bundled * perBlock)
	copyTyped := func(ctx context.Context, db store.DB, rows []chain.Rows) (chain.Counts, error) {
		return CopyTables(ctx, db, t.schema, rows)
	}
	block := func(i int) chain.Rows {
		r := b.w.Blocks[i].Rows
		r.Typed = t.rows[i]
		return r
	}
	apply := func(st *store.Store) error { return t.apply(ctx, st) }
	if err := b.directOf(ctx, "typed-ceiling", "(a) ceiling with the typed tables", copyTyped, block, want, apply); err != nil {
		return err
	}
	spec := b.bundleSpec("typed-bundle")
	spec.wantRows = want
	spec.args = append(spec.args, "--config", t.path)
	spec.extra = t.schema[len(chain.CoreTables):]
	return b.chainsinkRun(ctx, Result{Key: "typed-bundle", Name: "(c) chainsink, bundles, with the typed tables", Format: "bundle", Indexes: "live"},
		spec, apply, nil)
}
