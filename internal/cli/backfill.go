package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/tokens"
	"github.com/chainsink/chainsink/store"
)

// backfillOptions are `chainsink backfill`'s flags.
type backfillOptions struct {
	db          store.Config
	kafka       kafkaFlags
	cfg         backfill.Config
	abi         abiOptions
	sets        []string
	rpc         string
	to          string
	traces      bool
	tokensTopic string
}

func newBackfillCmd(g *globals) *cobra.Command {
	o := &backfillOptions{}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Publish a range of blocks from a JSON-RPC node into a Kafka topic as bundles",
		Long: `Fetch blocks --from N --to M (with full transactions and receipts) from an Ethereum JSON-RPC node and
publish each as one bundle message keyed by its number, the format "chainsink run --topics TOPIC:bundle" reads.

Requests are JSON-RPC batches of --batch-size blocks, --concurrency of them in flight, retried with capped
exponential backoff (errors, timeouts, HTTP 429). Every bundle is decoded before it is published, so a node's
inconsistent answer stops the backfill instead of reaching the topic. Nodes without eth_getBlockReceipts are
asked eth_getTransactionReceipt per transaction.

Progress is checkpointed in PostgreSQL (table backfill_checkpoints, run "chainsink migrate up" first) under
--job, by default "<topic>:<from>-<to>": running the same command again after a crash or Ctrl-C continues
where it stopped, without gaps. Blocks it had already delivered above the checkpoint are published again,
which is harmless: a bundle replaces its whole block. --to latest-K stops K blocks below the head at start.`,
		Example: `  chainsink backfill --rpc http://localhost:8545 --from 17000000 --to latest-64 \
    --brokers localhost:9092 --topic blocks --database-url postgres://chainsink@localhost/chain
  chainsink backfill --rpc https://node.example/KEY --from 0 --to 99999 --concurrency 8 --batch-size 20 \
    --brokers kafka:9093 --kafka-config security.protocol=SASL_SSL ... --topic blocks --database-url ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			if err := o.complete(); err != nil {
				return err
			}
			return runBackfill(cmd.Context(), o, g, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers, host:port[,host:port…]")
	addABIFlags(cmd, &o.abi)
	f := cmd.Flags()
	f.StringVar(&o.rpc, "rpc", "", "Ethereum JSON-RPC URL (http, https, ws, wss or an IPC path)")
	f.BoolVar(&o.traces, "traces", false, "also fetch each block's call traces (debug_traceBlockByNumber with the callTracer) into its bundle: the traces table")
	f.StringVar(&o.tokensTopic, "tokens-topic", "", "also read the metadata of tokens not yet in the tokens table, at the block of their first transfer, and publish it to this topic as ethereum-etl token items")
	f.Uint64Var(&o.cfg.From, "from", 0, "first block")
	f.StringVar(&o.to, "to", "", "last block (inclusive): N, latest, or latest-K (K confirmations below the head at start)")
	f.StringVar(&o.cfg.Topic, "topic", "", "topic to publish bundles to")
	f.StringSliceVar(&o.sets, "sets", nil, "with --config: only these contract sets (e.g. one added to the configuration later), for a topic of format bundle-merge")
	f.StringVar(&o.cfg.Job, "job", "", `name of the checkpoint (default "<topic>:<from>-<to>")`)
	f.IntVar(&o.cfg.Concurrency, "concurrency", 4, "batch requests in flight")
	f.IntVar(&o.cfg.BatchSize, "batch-size", 10, "blocks per JSON-RPC batch request")
	f.IntVar(&o.cfg.MaxAttempts, "max-attempts", 8, "tries of one batch request before the backfill fails")
	f.DurationVar(&o.cfg.RequestTimeout, "request-timeout", 0, "timeout of one batch request (default 30s)")
	return cmd
}

func (o *backfillOptions) complete() error {
	var errs []error
	if o.rpc == "" {
		errs = append(errs, errors.New("--rpc is empty: give the node's JSON-RPC URL"))
	}
	if o.kafka.brokers == "" {
		errs = append(errs, errors.New("--brokers is empty"))
	}
	if o.to == "" {
		errs = append(errs, errors.New("--to is empty: give N, latest or latest-K"))
		o.cfg.To = backfill.Target{Latest: true}
	} else if t, err := backfill.ParseTarget(o.to); err != nil {
		errs = append(errs, err)
		o.cfg.To = backfill.Target{Latest: true} // not to report the range as well
	} else {
		o.cfg.To = t
	}
	o.db.MaxConns = 2
	errs = append(errs, o.cfg.Validate(), o.db.Validate())
	return errors.Join(errs...)
}

func runBackfill(ctx context.Context, o *backfillOptions, g *globals, logger *slog.Logger) error {
	if err := store.CheckMigrated(ctx, o.db); err != nil {
		return err
	}
	cm, err := o.kafka.configMap(backfill.ProducerConfig(), backfill.FixedProducerConfig())
	if err != nil {
		return err
	}
	s, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer s.Close()
	fetcher, err := backfill.DialRPC(ctx, o.rpc, 0, logger)
	if err != nil {
		return err
	}
	defer fetcher.Close()
	if o.traces {
		fetcher.WithTraces()
	}
	var source backfill.Fetcher = fetcher
	if ff, err := o.abi.filtered(fetcher, o.traces, o.sets); err != nil {
		return err
	} else if ff != nil {
		source, o.cfg.Filtered = ff, true
		o.cfg.Sets = o.sets
	}
	pub, err := backfill.NewKafkaPublisher(o.cfg.Topic, cm, logger)
	if err != nil {
		return err
	}
	defer pub.Close()

	var sink backfill.TokenSink
	if o.tokensTopic != "" {
		tokenPub, err := backfill.NewKafkaPublisher(o.tokensTopic, cm, logger)
		if err != nil {
			return err
		}
		defer tokenPub.Close()
		sink = tokens.NewWatcher(tokens.NewReader(fetcher.Client(), 0), tokenPub, s.Pool(), logger)
	}

	var progress backfill.Progress = &backfill.LogProgress{Logger: logger}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = &backfill.BarProgress{W: f}
	}
	res, err := backfill.Run(ctx, o.cfg, backfill.Deps{
		Fetcher: source, Publisher: pub, Checkpoints: backfill.StoreCheckpoints{DB: s.Pool()}, Tokens: sink,
		Progress: progress, Logger: logger,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "backfilled blocks %d-%d of job %q: %d published in %.1fs (%.0f blocks/s)\n",
		res.Start, res.To, res.Job, res.Delivered, res.Elapsed.Seconds(), res.BlocksPerSecond())
	return err
}
