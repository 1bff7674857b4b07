package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/redecode"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

type redecodeOptions struct {
	db  store.Config
	cfg redecode.Config
	abi abiOptions
}

func newRedecodeCmd(g *globals) *cobra.Command {
	o := &redecodeOptions{}
	cmd := &cobra.Command{
		Use:   "redecode --from N --to M",
		Short: "Re-derive events, calls, token transfers and typed tables of stored blocks with the current ABIs",
		Long: `Re-decode the raw logs and transactions already stored in PostgreSQL for the blocks [--from, --to] with
the current ABI set (the built-in ABIs, plus --abi-dir and --contracts as for "chainsink run"), and replace the
derived rows: token_transfers, events and calls. Kafka is not involved. Use it after adding or fixing an ABI,
to fill the history that was indexed before.

The range is processed in batches of --batch-blocks blocks. Each batch is ONE transaction that reads the
batch's logs and transactions, decodes them, deletes the derived rows it replaces and copies the new ones in;
a failure leaves the batch as it was, and the batches before it done. A batch that loses a race with a
concurrent "chainsink run" writing the same blocks is retried (--max-attempts). Running the same command twice
gives the same rows, so an interrupted run is resumed by running it again (from the last logged block).

What is replaced:
  - without --abi: every token transfer, event and call of the range. The result is what "chainsink run" with
    the same ABIs would have stored.
  - with --abi NAME…: token transfers are still recomputed from the logs (they do not depend on the ABIs).
    Only the named ABIs decode events and calls; the events and calls stored with one of those abi_names are
    deleted and the ones the named ABIs decode now are written. Events and calls of every other ABI are left
    untouched; where such a row already decodes a log or transaction that a named ABI also decodes, the
    existing row is kept (one decoding per log or call) and the new one is skipped and counted as "kept".

With --config, the typed tables of the configuration are re-derived too (factory registrations included);
--typed-only re-derives only them, to fill the tables of a set added after the history was stored
(docs/typed-tables.md).

Progress is logged after each batch (blocks done, blocks per second), and drawn as a bar when stderr is a
terminal; a summary is printed at the end.`,
		Example: `  # a new ABI: decode its events in the history already indexed
  chainsink redecode --from 17000000 --to 17200000 --abi-dir ./abis --abi Seaport
  # everything again, e.g. after upgrading chainsink's decoder
  chainsink redecode --from 0 --to 17200000 --batch-blocks 5000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			return runRedecode(cmd.Context(), g, o, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	f := cmd.Flags()
	f.Uint64Var(&o.cfg.From, "from", 0, "first block to re-decode (required)")
	f.Uint64Var(&o.cfg.To, "to", 0, "last block to re-decode, inclusive (required)")
	f.StringSliceVar(&o.cfg.ABIs, "abi", nil, "re-decode events and calls with only these ABIs (names as in --abi-dir file names or built-in), repeatable or comma-separated; others' rows are left alone")
	addABIFlags(cmd, &o.abi)
	f.BoolVar(&o.cfg.TypedOnly, "typed-only", false, "replace only the typed tables of --config (e.g. to fill a set added later), leaving token_transfers, events and calls as they are")
	f.Uint64Var(&o.cfg.BatchBlocks, "batch-blocks", 1000, "blocks per transaction; a batch's logs and transactions are held in memory while it is decoded")
	f.IntVar(&o.cfg.MaxAttempts, "max-attempts", 5, "attempts per batch when PostgreSQL reports a transient error (lost connection, serialization failure, deadlock)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *redecodeOptions) validate() error {
	var errs []error
	errs = append(errs, o.cfg.Validate())
	if o.cfg.BatchBlocks == 0 {
		errs = append(errs, errors.New("--batch-blocks must be at least 1"))
	}
	if o.cfg.MaxAttempts < 1 {
		errs = append(errs, errors.New("--max-attempts must be at least 1"))
	}
	seen := map[string]bool{}
	for _, n := range o.cfg.ABIs {
		if n == "" {
			errs = append(errs, errors.New("--abi: empty ABI name"))
		} else if seen[n] {
			errs = append(errs, fmt.Errorf("--abi %s: given twice", n))
		}
		seen[n] = true
	}
	errs = append(errs, o.db.Validate())
	return errors.Join(errs...)
}

func runRedecode(ctx context.Context, g *globals, o *redecodeOptions, logger *slog.Logger) error {
	reg, tables, err := o.abi.load()
	if err != nil {
		return err
	}
	if o.cfg.TypedOnly && tables == nil {
		return errors.New("--typed-only needs --config: it fills the configuration's typed tables")
	}
	o.cfg.Typed, o.cfg.Discovery = typedSchema(tables)
	o.cfg.Untyped = untypedOf(tables)
	if len(o.cfg.ABIs) > 0 {
		sub, err := reg.Subset(o.cfg.ABIs...)
		if err != nil {
			return fmt.Errorf("--abi: %w (known ABIs: %s)", err, strings.Join(reg.Names(), ", "))
		}
		reg = sub
	}
	st, err := openMigrated(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkTables(ctx, st.Pool(), tables); err != nil {
		return err
	}

	scope := "all ABIs"
	if len(o.cfg.ABIs) > 0 {
		scope = "ABIs " + strings.Join(o.cfg.ABIs, ",")
	}
	logger.Info("redecode starting", "from", o.cfg.From, "to", o.cfg.To, "blocks", o.cfg.To-o.cfg.From+1,
		"batch_blocks", o.cfg.BatchBlocks, "scope", scope, "abis", reg.Names())
	if o.cfg.TypedOnly {
		scope = "typed tables only"
	}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.cfg.Progress = &backfill.BarProgress{W: f, Description: "redecode"}
	}
	sum, err := redecode.Run(ctx, st.Pool(), decode.New(reg, nil).WithTables(tables), o.cfg, logger)
	if err != nil {
		return err
	}
	if o.cfg.TypedOnly {
		_, err = fmt.Fprintf(g.stdout, "redecoded blocks %d to %d, typed tables only, in %s: %d logs and %d transactions read; %s\n",
			o.cfg.From, o.cfg.To, sum.Elapsed.Round(time.Millisecond), sum.Logs, sum.Transactions, typedSummary(o.cfg.Typed, sum.DerivedResult))
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "redecoded blocks %d to %d with %s in %s: %d logs and %d transactions read; "+
		"token_transfers %d deleted, %d written; events %d deleted, %d written; calls %d deleted, %d written; "+
		"%d kept from other ABIs", o.cfg.From, o.cfg.To, scope, sum.Elapsed.Round(time.Millisecond), sum.Logs,
		sum.Transactions, sum.Deleted["token_transfers"], sum.Written["token_transfers"], sum.Deleted["events"],
		sum.Written["events"], sum.Deleted["calls"], sum.Written["calls"], sum.Kept)
	if err == nil && len(o.cfg.Typed) > 0 {
		_, err = fmt.Fprintf(g.stdout, "; %s", typedSummary(o.cfg.Typed, sum.DerivedResult))
	}
	if err == nil {
		_, err = fmt.Fprintln(g.stdout)
	}
	return err
}

// typedSummary sums what a redecode changed in the typed tables.
func typedSummary(tables chain.Schema, r store.DerivedResult) string {
	var deleted, written int64
	for _, t := range tables {
		deleted += r.Deleted[t.Name]
		written += r.Written[t.Name]
	}
	return fmt.Sprintf("%d typed tables: %d rows deleted, %d written", len(tables), deleted, written)
}
