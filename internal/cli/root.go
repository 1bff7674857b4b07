package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/chainsink/chainsink/internal/logging"
)

// Version is set at build time with -ldflags "-X github.com/chainsink/chainsink/internal/cli.Version=v1.2.3".
var Version = "dev"

// globals are the flags every command has.
type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
}

func (g *globals) logger() (*slog.Logger, error) {
	return logging.New(g.stderr, g.logLevel, g.logFormat)
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "chainsink: %v\n", err)
		return 1
	}
	return 0
}

// NewRoot builds chainsink's command tree. Main runs it; tests also use it to check command lines written
// elsewhere (the Kubernetes manifests of deploy/) against the real flags.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "chainsink",
		Short: "Index EVM chain data from Kafka into PostgreSQL, exactly once",
		Long: `chainsink consumes blocks, transactions and logs from Kafka, decodes events, calldata and token
transfers with ABIs, and stores them in PostgreSQL tables for plain SQL. Each partition's offset is advanced in
the same transaction as its rows, so every row is stored exactly once across crashes and rebalances.

Every flag can also be set through the environment as CHAINSINK_<FLAG>, upper-case with dashes as
underscores (e.g. --database-url is CHAINSINK_DATABASE_URL). A flag given on the command line wins.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), json or text")
	root.AddCommand(newVersionCmd(g), newMigrateCmd(g), newRunCmd(g), newStatusCmd(g), newRedecodeCmd(g), newDeadLettersCmd(g), newBackfillCmd(g), newOffsetsCmd(g), newVerifyCmd(g), newFollowCmd(g), newTablesCmd(g), newTokensCmd(g), newRetentionCmd(g))
	return root
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print chainsink's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(g.stdout, "chainsink %s\n", Version)
			return err
		},
	}
}

// EnvName is the environment variable that sets a flag.
func EnvName(flag string) string {
	return "CHAINSINK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv lists flags that only the command line may set: destructive switches must be asked for explicitly,
// never inherited from an environment that was set up for another command.
var noEnv = map[string]bool{"delete": true, "help": true}

// bindEnv fills every flag of cmd that the command line left unset from its CHAINSINK_* variable; the
// database URL also falls back to the conventional DATABASE_URL.
func bindEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || noEnv[f.Name] {
			return
		}
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok && f.Name == "database-url" {
			v, ok = os.LookupEnv("DATABASE_URL")
		}
		if !ok {
			return
		}
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			if err := sv.Replace(splitList(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvName(f.Name), err))
			}
			f.Changed = true
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvName(f.Name), err))
		}
		f.Changed = true
	})
	return errors.Join(errs...)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
