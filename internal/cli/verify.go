package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/store"
)

type verifyOptions struct {
	db           store.Config
	from, to     int64
	rpc          string
	rpcBatchSize int
	chunk        int64
	json         bool
}

// errVerifyFailed makes `chainsink verify` exit 1 after its report is printed.
var errVerifyFailed = errors.New("verify found problems")

func newVerifyCmd(g *globals) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that the stored chain is whole and consistent; exit 1 if it is not",
		Long: `Check the stored chain with set-based SQL, over --from..--to (default: the lowest to the highest stored
block), and print one line per check with the number of problems and the first heights they are at:

  missing_blocks               heights in the range with no stored block
  broken_parent                blocks whose parent_hash is not the stored hash of the height below
  foreign_transactions         transactions whose block_hash is not their block's, or at a height with no block
  foreign_logs                 logs whose block_hash is not their block's (logs stored before migration 4 have none)
  transaction_count            blocks whose transaction_count differs from their stored transactions
  withdrawal_count             blocks whose withdrawal_count differs from their stored withdrawals
  logs_without_transaction     logs whose transaction (block, index and hash) is not stored
  token_transfers_without_log  token transfers whose log is not stored
  events_without_log           decoded events whose log is not stored
  calls_without_transaction    decoded calls whose transaction is not stored
  traces_without_transaction   traces whose transaction (block, index and hash) is not stored
  contracts_without_transaction created contracts whose transaction is not stored
  typed_without_parent         rows of the typed tables (those recorded in typed_tables) and factory
                               registrations whose log or transaction, of the same contract, is not stored

With --rpc, every stored block hash is also compared with the node's canonical chain (headers only, batched):

  not_canonical                stored blocks whose hash is not the node's block at that height (an orphan)
  unknown_to_node              stored blocks above the node's head, or that it does not have

The checks read the tables by primary-key ranges, --chunk heights at a time, each chunk in one read-only,
repeatable-read transaction; verify never writes. It expects blocks and transactions to be stored (both input
formats store them). Exit status: 0 when every check passes, 1 when any finds a problem or verify fails.

After "chainsink retention", the range starts at its horizon at the lowest: the heights below it are gone on
purpose, and the horizon block's parent with them.

--json prints one JSON document instead: {"from", "to", "horizon" (after retention), "blocks", "empty", "ok", "took_seconds",
"checks": [{"name", "description", "problems", "heights"}]}.`,
		Example: `  chainsink verify --database-url postgres://chainsink@localhost/chain
  chainsink verify --from 17000000 --to 17100000 --rpc https://node.example --json | jq '.checks[] | select(.problems > 0)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			logger, err := g.logger()
			if err != nil {
				return err
			}
			return runVerify(cmd.Context(), g.stdout, cmd, o, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	f := cmd.Flags()
	f.Int64Var(&o.from, "from", 0, "first height to check (default: the lowest stored block)")
	f.Int64Var(&o.to, "to", 0, "last height to check (default: the highest stored block)")
	f.StringVar(&o.rpc, "rpc", "", "also compare every stored block hash with this node's canonical chain (http, https, ws, wss or an IPC path)")
	f.IntVar(&o.rpcBatchSize, "rpc-batch-size", 500, "block headers per JSON-RPC batch request of --rpc")
	f.Int64Var(&o.chunk, "chunk", 100_000, "heights checked per read-only transaction")
	f.BoolVar(&o.json, "json", false, "print a JSON document instead of a table")
	return cmd
}

func (o *verifyOptions) validate(cmd *cobra.Command) error {
	errs := []error{o.db.Validate()}
	if o.chunk <= 0 {
		errs = append(errs, fmt.Errorf("--chunk %d: must be positive", o.chunk))
	}
	if o.rpcBatchSize <= 0 {
		errs = append(errs, fmt.Errorf("--rpc-batch-size %d: must be positive", o.rpcBatchSize))
	}
	if cmd.Flags().Changed("from") && cmd.Flags().Changed("to") && o.to < o.from {
		errs = append(errs, fmt.Errorf("--to %d is below --from %d", o.to, o.from))
	}
	if o.from < 0 || o.to < 0 {
		errs = append(errs, errors.New("--from and --to are block heights: not negative"))
	}
	return errors.Join(errs...)
}

// verifyJSON is the --json document; its field names are a public contract.
type verifyJSON struct {
	store.VerifyReport
	OK          bool    `json:"ok"`
	TookSeconds float64 `json:"took_seconds"`
}

func runVerify(ctx context.Context, out io.Writer, cmd *cobra.Command, o *verifyOptions, logger *slog.Logger) error {
	started := time.Now()
	st, err := openMigrated(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := store.VerifyOptions{Chunk: o.chunk, Progress: func(done, total int64) {
		logger.Debug("verify progress", "heights_done", done, "heights", total)
	}}
	if cmd.Flags().Changed("from") {
		opts.From = &o.from
	}
	if cmd.Flags().Changed("to") {
		opts.To = &o.to
	}
	rep, err := store.Verify(ctx, st.Pool(), opts)
	if err != nil {
		return err
	}
	if o.rpc != "" && !rep.Empty {
		checks, err := verifyCanonical(ctx, st, o, rep.From, rep.To, logger)
		if err != nil {
			return err
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	took := time.Since(started)
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(verifyJSON{VerifyReport: rep, OK: rep.OK(), TookSeconds: took.Seconds()}); err != nil {
			return err
		}
	} else if err := printVerify(out, rep, took); err != nil {
		return err
	}
	if !rep.OK() {
		return errVerifyFailed
	}
	return nil
}

// verifyCanonical compares the stored block hashes of [from, to] with the node's, a batch of headers at a time.
func verifyCanonical(ctx context.Context, st *store.Store, o *verifyOptions, from, to int64, logger *slog.Logger) ([]store.Check, error) {
	node, err := backfill.DialRPC(ctx, o.rpc, 0, logger)
	if err != nil {
		return nil, err
	}
	defer node.Close()
	orphan := store.Check{Name: "not_canonical", Description: "stored blocks whose hash is not the node's block at that height"}
	unknown := store.Check{Name: "unknown_to_node", Description: "stored blocks the node does not have (above its head)"}
	note := func(c *store.Check, n int64) {
		c.Problems++
		if len(c.Heights) < store.ExampleHeights {
			c.Heights = append(c.Heights, n)
		}
	}
	err = store.StoredBlockHashes(ctx, st.Pool(), from, to, o.rpcBatchSize, func(stored []store.StoredBlockHash) error {
		numbers := make([]uint64, len(stored))
		for i, b := range stored {
			numbers[i] = uint64(b.Number)
		}
		canonical, err := node.BlockHashes(ctx, numbers)
		if err != nil {
			return fmt.Errorf("verify against the node: %w", err)
		}
		for i, b := range stored {
			switch {
			case canonical[i] == nil:
				note(&unknown, b.Number)
			case !bytes.Equal(canonical[i], b.Hash):
				note(&orphan, b.Number)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return []store.Check{orphan, unknown}, nil
}

func printVerify(out io.Writer, rep store.VerifyReport, took time.Duration) error {
	if rep.Empty {
		fmt.Fprintf(out, "no block is stored in %d-%d: nothing to verify\n", rep.From, rep.To)
	} else {
		fmt.Fprintf(out, "verified heights %d-%d: %d blocks stored, in %s\n", rep.From, rep.To, rep.Blocks,
			took.Round(time.Millisecond))
		if rep.Horizon != nil {
			fmt.Fprintf(out, "history is kept from block %d (chainsink retention); nothing below it is checked\n", *rep.Horizon)
		}
		fmt.Fprintln(out)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tPROBLEMS\tFIRST HEIGHTS")
	failed, problems := 0, int64(0)
	for _, c := range rep.Checks {
		heights := make([]string, len(c.Heights))
		for i, h := range c.Heights {
			heights[i] = strconv.FormatInt(h, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, c.Problems, strings.Join(heights, " "))
		if c.Problems > 0 {
			failed++
			problems += c.Problems
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed == 0 {
		_, err := fmt.Fprintln(out, "\nOK: every check passed")
		return err
	}
	_, err := fmt.Fprintf(out, "\nFAILED: %d problems in %d checks (chainsink verify --help says what each means)\n", problems, failed)
	return err
}
