package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/store"
)

type retentionOptions struct {
	db   store.Config
	opts store.RetentionOptions
}

func newRetentionCmd(g *globals) *cobra.Command {
	o := &retentionOptions{}
	cmd := &cobra.Command{
		Use:   "retention --keep-blocks N",
		Short: "Delete the stored history below the newest N blocks, from every data table",
		Long: `Keep only the newest --keep-blocks heights: the horizon is the highest stored block minus N plus one, and
every row of a lower height is deleted from every data table (blocks, withdrawals, transactions, logs,
token_transfers, events, calls, traces, contracts, and every typed table recorded in typed_tables). The
registries stay: factory_children (a child registered below the horizon still owns its later rows),
tokens, dead letters and offsets.

Heights are deleted from the lowest up, --chunk-blocks at a time, each chunk in one transaction, so an
interrupted run leaves whole heights and is resumed by running it again. "chainsink run" may go on meanwhile:
it writes the newest heights, retention deletes the oldest. When it is done the run is recorded in
retention_runs, and "chainsink status" shows where history starts; "chainsink verify" checks from there.

The deleted space is reused by the tables after autovacuum; VACUUM FULL or pg_repack gives it back to the
operating system. --dry-run prints the horizon and deletes nothing.`,
		Example: `  # keep about a week of mainnet (12 s blocks)
  chainsink retention --keep-blocks 50400 --database-url postgres://chainsink@localhost/chain
  chainsink retention --keep-blocks 1000000 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.opts.KeepBlocks <= 0 {
				return errors.New("--keep-blocks: want a positive number of blocks to keep")
			}
			if o.opts.ChunkBlocks <= 0 {
				return errors.New("--chunk-blocks: want a positive number")
			}
			logger, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openMigrated(ctx, o.db)
			if err != nil {
				return err
			}
			defer st.Close()
			var bar *backfill.BarProgress
			if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !o.opts.DryRun {
				bar = &backfill.BarProgress{W: f, Description: "retention"}
			}
			var done int64
			o.opts.Progress = func(d, total int64) {
				if bar != nil {
					if done == 0 {
						bar.Start(total)
					}
					bar.Add(int(d - done))
				}
				done = d
				logger.Debug("retention progress", "heights_done", d, "heights", total)
			}
			started := time.Now()
			res, err := store.Retain(ctx, st.Pool(), o.opts)
			if bar != nil {
				bar.Finish()
			}
			if errors.Is(err, store.ErrNothingStored) {
				_, err = fmt.Fprintln(g.stdout, "no block is stored: nothing to keep or delete")
				return err
			}
			if err != nil {
				return err
			}
			switch {
			case o.opts.DryRun && res.From >= res.Horizon:
				_, err = fmt.Fprintf(g.stdout, "dry run: head %d, horizon %d; stored history starts at %d: nothing to delete\n",
					res.Head, res.Horizon, res.From)
			case o.opts.DryRun:
				_, err = fmt.Fprintf(g.stdout, "dry run: head %d, horizon %d; heights %d to %d would be deleted from %d tables%s\n",
					res.Head, res.Horizon, res.From, res.Horizon-1, len(res.Tables), droppedText(res, "would be dropped"))
			default:
				var parts []string
				var total int64
				for _, t := range res.Tables {
					if n := res.Deleted[t]; n > 0 {
						parts = append(parts, fmt.Sprintf("%s %d", t, n))
						total += n
					}
				}
				slices.Sort(parts)
				what := "nothing was below it"
				if len(parts) > 0 {
					what = strings.Join(parts, ", ")
				}
				_, err = fmt.Fprintf(g.stdout, "history kept from block %d (head %d, %d blocks); %d rows deleted in %s: %s%s\n",
					res.Horizon, res.Head, o.opts.KeepBlocks, total, time.Since(started).Round(time.Millisecond), what,
					droppedText(res, "dropped"))
			}
			return err
		},
	}
	addDatabaseFlags(cmd, &o.db)
	f := cmd.Flags()
	f.Int64Var(&o.opts.KeepBlocks, "keep-blocks", 0, "heights to keep, the newest: every row below the head minus this plus one is deleted")
	f.Int64Var(&o.opts.ChunkBlocks, "chunk-blocks", 10_000, "heights deleted per transaction")
	f.BoolVar(&o.opts.DryRun, "dry-run", false, "print the horizon and delete nothing")
	return cmd
}

// droppedText lists the partitions a run dropped whole (or would drop), "" when none.
func droppedText(res store.RetentionResult, verb string) string {
	var names []string
	for _, ps := range res.Dropped {
		names = append(names, ps...)
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return fmt.Sprintf("; %d partitions %s whole: %s", len(names), verb, strings.Join(names, ", "))
}
