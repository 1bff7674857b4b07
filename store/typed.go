package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// TypedTable is a typed table as the registry (typed_tables) records it.
type TypedTable = chain.TableRecord

// TableState is where a table of the configuration stands against the registry.
type TableState string

const (
	// TableApplied: recorded with the same DDL.
	TableApplied TableState = "applied"
	// TablePending: not recorded yet; apply creates it.
	TablePending TableState = "pending"
	// TableChanged: recorded with another DDL (its ABI entry changed); apply refuses.
	TableChanged TableState = "changed"
	// TableUpgradable: recorded with the DDL of an earlier chainsink (a call table from before internal
	// calls); apply upgrades it in place, additively.
	TableUpgradable TableState = "upgradable"
	// TableNotConfigured: recorded, but not in the configuration any more; it stays as it is.
	TableNotConfigured TableState = "not in config"
)

// TablePlan is one line of a plan.
type TablePlan struct {
	Want  TypedTable // what the configuration generates (empty for TableNotConfigured)
	Have  TypedTable // what the registry holds (empty for TablePending)
	State TableState
}

// ErrTablesNotApplied is returned by CheckTables when the configuration declares tables that are not
// applied, or changed.
var ErrTablesNotApplied = errors.New("typed tables are not applied")

// ErrTablesChanged is returned by ApplyTables when a recorded table would change.
var ErrTablesChanged = errors.New("typed tables changed")

// PlanTables compares the tables a configuration generates with the registry: the configuration's tables in
// its order, then the recorded ones it does not name.
func PlanTables(ctx context.Context, db DB, want []TypedTable) ([]TablePlan, error) {
	have, err := readTypedTables(ctx, db)
	if err != nil {
		return nil, err
	}
	byName := map[string]TypedTable{}
	for _, h := range have {
		byName[h.Name] = h
	}
	var out []TablePlan
	for _, w := range want {
		h, ok := byName[w.Name]
		switch {
		case !ok:
			out = append(out, TablePlan{Want: w, State: TablePending})
		case h.DDL != w.DDL && slices.ContainsFunc(w.Upgrades, func(u chain.Upgrade) bool { return u.From == h.DDL }):
			out = append(out, TablePlan{Want: w, Have: h, State: TableUpgradable})
		case h.DDL != w.DDL:
			out = append(out, TablePlan{Want: w, Have: h, State: TableChanged})
		default:
			out = append(out, TablePlan{Want: w, Have: h, State: TableApplied})
		}
		delete(byName, w.Name)
	}
	for _, h := range have {
		if _, left := byName[h.Name]; left {
			out = append(out, TablePlan{Have: h, State: TableNotConfigured})
		}
	}
	return out, nil
}

func readTypedTables(ctx context.Context, db DB) ([]TypedTable, error) {
	rows, err := db.Query(ctx, `SELECT table_name, set_name, kind, abi_name, abi_hash, signature, ddl, applied_at
		FROM typed_tables ORDER BY applied_at, table_name`)
	if err != nil {
		return nil, fmt.Errorf("read typed_tables: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (t TypedTable, err error) {
		err = r.Scan(&t.Name, &t.Set, &t.Kind, &t.ABI, &t.ABIHash, &t.Signature, &t.DDL, &t.AppliedAt)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read typed_tables: %w", err)
	}
	return out, nil
}

// ApplyTables creates the pending tables of want and records them, and upgrades the upgradable ones, in one
// transaction under the schema's migration lock (a concurrent `chainsink migrate` or apply waits). It
// refuses, changing nothing, when a recorded table would change otherwise: tables are only ever added to.
// It returns the tables it created or upgraded.
func ApplyTables(ctx context.Context, db DB, schema string, want []TypedTable) ([]TypedTable, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin applying typed tables: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockID(schema)); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	plan, err := PlanTables(ctx, tx, want)
	if err != nil {
		return nil, err
	}
	if err := changed(plan); err != nil {
		return nil, err
	}
	var created []TypedTable
	for _, p := range plan {
		if p.State == TableUpgradable {
			w := p.Want
			for _, u := range w.Upgrades {
				if u.From != p.Have.DDL {
					continue
				}
				if _, err := tx.Exec(ctx, u.SQL); err != nil {
					return nil, fmt.Errorf("upgrade typed table %s: %w", w.Name, err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE typed_tables SET ddl = $2, applied_at = now() WHERE table_name = $1`,
				w.Name, w.DDL); err != nil {
				return nil, fmt.Errorf("record the upgrade of typed table %s: %w", w.Name, err)
			}
			created = append(created, w)
		}
		if p.State != TablePending {
			continue
		}
		w := p.Want
		if _, err := tx.Exec(ctx, w.DDL); err != nil {
			return nil, fmt.Errorf("create typed table %s: %w", w.Name, err)
		}
		if _, err := tx.Exec(ctx, PartitionStatement(w.Name)); err != nil {
			return nil, fmt.Errorf("partition typed table %s: %w", w.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO typed_tables (table_name, set_name, kind, abi_name, abi_hash, signature, ddl)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, w.Name, w.Set, w.Kind, w.ABI, w.ABIHash, w.Signature, w.DDL); err != nil {
			return nil, fmt.Errorf("record typed table %s: %w", w.Name, err)
		}
		created = append(created, w)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit typed tables: %w", err)
	}
	return created, nil
}

// PartitionStatement turns the new table name into one partitioned by block number, like the big core
// tables (migration 00012): ApplyTables runs it after a typed table's DDL. The registry records the DDL
// alone, which says what the table holds; how it is stored may change without changing the table.
func PartitionStatement(name string) string {
	return "SELECT chainsink_partition_by_block(" + quoteLiteral(name) + ");"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func changed(plan []TablePlan) error {
	var names []string
	for _, p := range plan {
		if p.State == TableChanged {
			names = append(names, p.Want.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s would get another definition (its ABI entry changed since it was applied); "+
		"a typed table is never altered or dropped: give the set a new name for the new ABI, or drop the table "+
		"and its typed_tables row by hand", ErrTablesChanged, strings.Join(names, ", "))
}

// CheckTables fails with ErrTablesNotApplied when a table of want is pending or changed: `chainsink run`
// refuses to start then, as it does for pending migrations.
func CheckTables(ctx context.Context, db DB, want []TypedTable) error {
	plan, err := PlanTables(ctx, db, want)
	if err != nil {
		return err
	}
	var pending, upgradable []string
	for _, p := range plan {
		switch p.State {
		case TablePending:
			pending = append(pending, p.Want.Name)
		case TableUpgradable:
			upgradable = append(upgradable, p.Want.Name)
		}
	}
	if err := changed(plan); err != nil {
		return fmt.Errorf("%w: %w", ErrTablesNotApplied, err)
	}
	if len(pending) > 0 {
		slices.Sort(pending)
		return fmt.Errorf("%w: %d of the configuration's tables do not exist yet (%s): run `chainsink tables apply`",
			ErrTablesNotApplied, len(pending), strings.Join(pending, ", "))
	}
	if len(upgradable) > 0 {
		slices.Sort(upgradable)
		return fmt.Errorf("%w: %d call tables were created by an earlier chainsink, without internal calls (%s): "+
			"run `chainsink tables apply` to upgrade them", ErrTablesNotApplied, len(upgradable), strings.Join(upgradable, ", "))
	}
	return nil
}
