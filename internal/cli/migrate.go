package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/store"
)

// openMigrated opens the store of cfg after checking that its schema is migrated, so that a command that
// reads or writes the tables says "run chainsink migrate up" rather than failing on a missing table.
func openMigrated(ctx context.Context, cfg store.Config) (*store.Store, error) {
	if err := store.CheckMigrated(ctx, cfg); err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg)
}

func addDatabaseFlags(cmd *cobra.Command, cfg *store.Config) {
	f := cmd.Flags()
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://user:pass@host:5432/db (also DATABASE_URL)")
	f.StringVar(&cfg.Schema, "schema", "public", "PostgreSQL schema that holds chainsink's tables")
	f.DurationVar(&cfg.ResponseTimeout, "db-response-timeout", 0, "give up a connection whose server sends nothing for this long while an answer is due (a black-holed network path); 0: statement_timeout plus a tenth, at least 1s; negative: never")
}

func newMigrateCmd(g *globals) *cobra.Command {
	var cfg store.Config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or change the database schema",
		Long: `Apply or roll back chainsink's schema migrations, which are built into the binary.

Several instances may run "migrate up" at once: a Postgres advisory lock lets one apply the migrations while
the others wait, then find nothing to do. "chainsink run" refuses to start while a migration is pending.`,
	}
	addDatabaseFlags(cmd, &cfg)
	cmd.PersistentFlags().AddFlagSet(cmd.Flags())

	withMigrator := func(run func(ctx context.Context, m *store.Migrator) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			logger, err := g.logger()
			if err != nil {
				return err
			}
			m, err := store.NewMigrator(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer m.Close()
			return run(cmd.Context(), m)
		}
	}
	printResults := func(res []*goose.MigrationResult) error {
		if len(res) == 0 {
			_, err := fmt.Fprintln(g.stdout, "nothing to do: the schema is already at the requested version")
			return err
		}
		for _, r := range res {
			if _, err := fmt.Fprintf(g.stdout, "%-4s %05d %s (%s)\n", r.Direction, r.Source.Version,
				shortPath(r.Source.Path), r.Duration.Round(time.Millisecond)); err != nil {
				return err
			}
		}
		return nil
	}
	versionArg := func(args []string) (int64, error) {
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("version %q: want a migration number such as 1", args[0])
		}
		return v, nil
	}

	cmd.AddCommand(
		newIndexesCmd(g, &cfg),
		&cobra.Command{
			Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
			RunE: withMigrator(func(ctx context.Context, m *store.Migrator) error {
				res, err := m.Up(ctx)
				if err != nil {
					return err
				}
				return printResults(res)
			}),
		},
		&cobra.Command{
			Use: "up-to N", Short: "Apply pending migrations up to and including version N", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := versionArg(args)
				if err != nil {
					return err
				}
				return withMigrator(func(ctx context.Context, m *store.Migrator) error {
					res, err := m.UpTo(ctx, v)
					if err != nil {
						return err
					}
					return printResults(res)
				})(cmd, args)
			},
		},
		&cobra.Command{
			Use: "down", Short: "Roll back the newest applied migration", Args: cobra.NoArgs,
			RunE: withMigrator(func(ctx context.Context, m *store.Migrator) error {
				res, err := m.Down(ctx)
				if err != nil {
					return err
				}
				return printResults(res)
			}),
		},
		&cobra.Command{
			Use: "down-to N", Short: "Roll back every migration newer than version N (0: all, dropping every table)",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := versionArg(args)
				if err != nil {
					return err
				}
				return withMigrator(func(ctx context.Context, m *store.Migrator) error {
					res, err := m.DownTo(ctx, v)
					if err != nil {
						return err
					}
					return printResults(res)
				})(cmd, args)
			},
		},
		&cobra.Command{
			Use: "status", Short: "List every migration and whether it is applied", Args: cobra.NoArgs,
			RunE: withMigrator(func(ctx context.Context, m *store.Migrator) error {
				st, err := m.Status(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION\n")
				for _, s := range st {
					at := "-"
					if !s.AppliedAt.IsZero() {
						at = s.AppliedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, shortPath(s.Source.Path))
				}
				return tw.Flush()
			}),
		},
		&cobra.Command{
			Use: "version", Short: "Print the applied and the newest known migration version", Args: cobra.NoArgs,
			RunE: withMigrator(func(ctx context.Context, m *store.Migrator) error {
				cur, latest, err := m.Version(ctx)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(g.stdout, "schema %s: version %d (newest known %d)\n", m.Schema(), cur, latest)
				return err
			}),
		},
	)
	return cmd
}

func shortPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
