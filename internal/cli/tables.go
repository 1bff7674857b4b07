package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/store"
)

func newTablesCmd(g *globals) *cobra.Command {
	var db store.Config
	var abiOpts abiOptions
	cmd := &cobra.Command{
		Use:   "tables",
		Short: "Create the typed tables of a configuration file, like migrations",
		Long: `Generate one table per event (<set>_evt_<event>) and per function (<set>_call_<function>) of the contract
sets in --config, and manage them like migrations: "plan" prints the DDL of what is not applied yet, "apply"
runs it under the migration lock and records each table in typed_tables, "status" shows every table's state.

Changes are additive only: a new set, event or function adds tables. A table whose definition would change
(its ABI entry changed) is refused, never altered or dropped. "chainsink run" with the same --config refuses to
start while a table is not applied. See docs/typed-tables.md for the naming and type rules.`,
		Example: `  chainsink tables plan --config chainsink.yaml --database-url postgres://chainsink@localhost/chain
  chainsink tables apply --config chainsink.yaml --database-url postgres://chainsink@localhost/chain
  chainsink redecode --config chainsink.yaml --typed-only --from 10000835 --to 17200000 ...`,
	}
	addDatabaseFlags(cmd, &db)
	addABIFlags(cmd, &abiOpts)
	cmd.PersistentFlags().AddFlagSet(cmd.Flags())

	withPlan := func(run func(ctx context.Context, st *store.Store, want []store.TypedTable, plan []store.TablePlan) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if abiOpts.config == "" {
				return errors.New("--config is required: the typed tables are generated from its contract sets")
			}
			if err := db.Validate(); err != nil {
				return err
			}
			_, ts, err := abiOpts.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := store.CheckMigrated(ctx, db); err != nil {
				return err
			}
			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			want := ts.Records()
			plan, err := store.PlanTables(ctx, st.Pool(), want)
			if err != nil {
				return err
			}
			return run(ctx, st, want, plan)
		}
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "plan", Short: "Print the DDL of the tables that are not applied yet", Args: cobra.NoArgs,
			RunE: withPlan(func(_ context.Context, _ *store.Store, _ []store.TypedTable, plan []store.TablePlan) error {
				return printPlan(g, plan)
			}),
		},
		&cobra.Command{
			Use: "apply", Short: "Create the tables that are not applied yet and record them", Args: cobra.NoArgs,
			RunE: withPlan(func(ctx context.Context, st *store.Store, want []store.TypedTable, _ []store.TablePlan) error {
				created, err := store.ApplyTables(ctx, st.Pool(), st.Schema(), want)
				if err != nil {
					return err
				}
				if len(created) == 0 {
					_, err := fmt.Fprintln(g.stdout, "nothing to do: every table of the configuration is applied")
					return err
				}
				for _, t := range created {
					if _, err := fmt.Fprintf(g.stdout, "created %s (%s %s of %s, set %s)\n", t.Name, t.Kind, t.Signature, t.ABI, t.Set); err != nil {
						return err
					}
				}
				return nil
			}),
		},
		&cobra.Command{
			Use: "status", Short: "Show each table of the configuration and the registry, and its state", Args: cobra.NoArgs,
			RunE: withPlan(func(_ context.Context, _ *store.Store, _ []store.TypedTable, plan []store.TablePlan) error {
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TABLE\tSET\tKIND\tSIGNATURE\tSTATE\tAPPLIED")
				for _, p := range plan {
					t := p.Want
					if p.State == store.TableNotConfigured {
						t = p.Have
					}
					applied := "-"
					if !p.Have.AppliedAt.IsZero() {
						applied = p.Have.AppliedAt.UTC().Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Set, t.Kind, t.Signature, p.State, applied)
				}
				return tw.Flush()
			}),
		},
	)
	return cmd
}

func printPlan(g *globals, plan []store.TablePlan) error {
	pending, changed, applied, upgrades := 0, 0, 0, 0
	for _, p := range plan {
		switch p.State {
		case store.TableApplied:
			applied++
		case store.TableUpgradable:
			upgrades++
			for _, u := range p.Want.Upgrades {
				if u.From == p.Have.DDL {
					fmt.Fprintf(g.stdout, "-- %s: UPGRADE, created by an earlier chainsink (no internal calls), to the definition of now:\n%s\n",
						p.Want.Name, u.SQL)
				}
			}
		case store.TablePending:
			pending++
			fmt.Fprintf(g.stdout, "-- %s: %s %s of ABI %s, set %s\n%s\n%s\n", p.Want.Name, p.Want.Kind, p.Want.Signature, p.Want.ABI, p.Want.Set, p.Want.DDL,
				store.PartitionStatement(p.Want.Name))
		case store.TableChanged:
			changed++
			fmt.Fprintf(g.stdout, "-- %s: REFUSED, its definition changed since it was applied on %s. Applied:\n%s-- Wanted now:\n%s\n",
				p.Want.Name, p.Have.AppliedAt.UTC().Format("2006-01-02 15:04:05"), p.Have.DDL, p.Want.DDL)
		}
	}
	_, err := fmt.Fprintf(g.stdout, "-- %d table(s) to create, %d to upgrade, %d refused, %d already applied, %d recorded but not in the configuration\n",
		pending, upgrades, changed, applied, len(plan)-pending-upgrades-changed-applied)
	if err == nil && changed > 0 {
		err = fmt.Errorf("%w: %d table(s) changed; see above", store.ErrTablesChanged, changed)
	}
	return err
}
