package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/store"
)

// newIndexesCmd is `chainsink migrate indexes drop|create|status`: deferring the secondary indexes during a
// backfill. cfg is the migrate command's database configuration (its persistent flags).
func newIndexesCmd(g *globals, cfg *store.Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "indexes",
		Short: "Defer the secondary indexes during a backfill (drop, then create)",
		Long: `Drop the data tables' secondary indexes (by address, topic, hash, time) before a large backfill and build
them again afterwards: without them every row updates only its primary key, and one sorted build is much
cheaper than millions of scattered index inserts. Primary keys always stay: the exactly-once replacement needs
them. Until "create" completes, analysts' queries by address, topic or hash scan whole tables.

Procedure: "chainsink migrate indexes drop", run "chainsink run" until the backlog is drained, stop it (or
keep it running and use --concurrently), then "chainsink migrate indexes create". "create" is idempotent:
after an interruption, run it again. See docs/performance.md.`,
	}
	withStore := func(run func(ctx context.Context, s *store.Store) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := store.CheckMigrated(cmd.Context(), *cfg); err != nil {
				return err
			}
			c := *cfg
			c.MaxConns = 8
			s, err := store.Open(cmd.Context(), c)
			if err != nil {
				return err
			}
			defer s.Close()
			return run(cmd.Context(), s)
		}
	}
	var o store.IndexBuildOptions
	create := &cobra.Command{
		Use: "create", Short: "Build every secondary index the schema lacks", Args: cobra.NoArgs,
		RunE: withStore(func(ctx context.Context, s *store.Store) error {
			began := time.Now()
			built, err := store.CreateSecondaryIndexes(ctx, s.Pool(), o)
			for _, n := range built {
				fmt.Fprintf(g.stdout, "created %s\n", n)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "%d indexes created in %s\n", len(built), time.Since(began).Round(time.Millisecond))
			return err
		}),
	}
	f := create.Flags()
	f.IntVar(&o.Workers, "workers", 2, "indexes built at once, each on its own connection")
	f.StringVar(&o.MaintenanceWorkMem, "maintenance-work-mem", "512MB", "sort memory of each build (× --workers must fit in RAM)")
	f.BoolVar(&o.Concurrently, "concurrently", false, "CREATE INDEX CONCURRENTLY: chainsink run may keep writing; slower")
	cmd.AddCommand(
		&cobra.Command{
			Use: "drop", Short: "Drop the secondary indexes of the data tables (primary keys stay)", Args: cobra.NoArgs,
			RunE: withStore(func(ctx context.Context, s *store.Store) error {
				dropped, err := store.DropSecondaryIndexes(ctx, s.Pool())
				if err != nil {
					return err
				}
				for _, n := range dropped {
					fmt.Fprintf(g.stdout, "dropped %s\n", n)
				}
				_, err = fmt.Fprintf(g.stdout, "%d indexes dropped; run \"chainsink migrate indexes create\" after the backfill\n", len(dropped))
				return err
			}),
		},
		create,
		&cobra.Command{
			Use: "status", Short: "List the secondary indexes and whether they exist", Args: cobra.NoArgs,
			RunE: withStore(func(ctx context.Context, s *store.Store) error {
				st, err := store.SecondaryIndexStatus(ctx, s.Pool())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "INDEX\tTABLE\tCOLUMNS\tSTATE\n")
				for _, ix := range st {
					state := "present"
					switch {
					case !ix.Present:
						state = "missing"
					case !ix.Valid:
						state = "invalid (interrupted concurrent build: run create)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ix.Name, ix.Table, ix.Columns, state)
				}
				return tw.Flush()
			}),
		},
	)
	return cmd
}
