package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/follow"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/server"
	"github.com/chainsink/chainsink/internal/tokens"
	"github.com/chainsink/chainsink/store"
)

type followOptions struct {
	db          store.Config
	kafka       kafkaFlags
	cfg         follow.Config
	abi         abiOptions
	rpc         string
	traces      bool
	tokensTopic string
	metricsAddr string
	stuckAfter  time.Duration
}

func newFollowCmd(g *globals) *cobra.Command {
	o := &followOptions{}
	cmd := &cobra.Command{
		Use:   "follow",
		Short: "Publish the chain's blocks into a Kafka topic as bundles, live, through reorgs",
		Long: `Follow a JSON-RPC node's chain and publish one bundle per block to --topic, keyed by its height, with
Kafka's idempotent producer: the live source for "chainsink run". It resumes where it stopped (the hashes of
the last --keep-hashes published blocks are kept in Postgres; a first start begins at --from), catches up in
batches of --batch-size blocks, then follows the head: over ws:// or an IPC path it subscribes to new heads
(eth_subscribe "newHeads") and publishes each block as it arrives, polling every --poll-interval only as a
fallback; over http(s) it polls every --poll-interval.

Reorgs: a block whose parent is not the hash published for the height below, or a published tip the node no
longer has, makes the follower walk back to the highest height whose hash the node still has, publish a
tombstone (the height as key, no value) for every height it had published above it, on which "chainsink run"
removes every row of the height, and publish the new chain from there, which stores its heights again. A reorg deeper than --keep-hashes
stops the follower with an error. --confirmations K publishes only blocks K below the head: reorgs shallower
than K are never seen, at the cost of K blocks of latency; 0 (the default) publishes the head at once and
repairs what reorgs change, which "chainsink run" applies in the same transactions as everything else.

It runs until SIGINT or SIGTERM, retrying a node or broker that fails. With --metrics-addr it serves /metrics
(chainsink_follow_*), /healthz and /readyz (the node has answered; the follower is not failing for longer than
--stuck-after).`,
		Example: `  chainsink follow --rpc ws://localhost:8546 --brokers localhost:9092 --topic blocks \
    --database-url postgres://chainsink@localhost/chain --metrics-addr :9091`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			logger, err := g.logger()
			if err != nil {
				return err
			}
			return runFollow(cmd.Context(), o, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addABIFlags(cmd, &o.abi)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers, host:port[,host:port…]")
	f := cmd.Flags()
	f.StringVar(&o.rpc, "rpc", "", "Ethereum JSON-RPC URL (http, https, ws, wss or an IPC path)")
	f.BoolVar(&o.traces, "traces", false, "also fetch each block's call traces (debug_traceBlockByNumber with the callTracer) into its bundle: the traces table")
	f.StringVar(&o.tokensTopic, "tokens-topic", "", "also read the metadata of tokens not yet in the tokens table, at the block of their first transfer, and publish it to this topic as ethereum-etl token items")
	f.StringVar(&o.cfg.Topic, "topic", "", "topic to publish bundles to")
	f.StringVar(&o.cfg.Job, "job", "", `name of the follower's kept hashes (default "follow:<topic>")`)
	f.Uint64Var(&o.cfg.From, "from", 0, "first block of a follower that has published nothing yet")
	f.Uint64Var(&o.cfg.Confirmations, "confirmations", 0, "publish only blocks this many below the head")
	f.DurationVar(&o.cfg.PollInterval, "poll-interval", time.Second, "how often to ask for the head once caught up (over ws or IPC a new-heads subscription wakes it sooner)")
	f.IntVar(&o.cfg.BatchSize, "batch-size", 10, "blocks per JSON-RPC batch request while catching up")
	f.IntVar(&o.cfg.KeepHashes, "keep-hashes", 128, "hashes of the last published blocks kept: the deepest reorg handled")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (off when empty)")
	f.DurationVar(&o.stuckAfter, "stuck-after", 2*time.Minute, "/readyz fails once the follower has been failing this long")
	return cmd
}

func (o *followOptions) validate() error {
	var errs []error
	if o.rpc == "" {
		errs = append(errs, errors.New("--rpc is empty: give the node's JSON-RPC URL"))
	}
	if o.kafka.brokers == "" {
		errs = append(errs, errors.New("--brokers is empty"))
	}
	if o.cfg.PollInterval <= 0 || o.stuckAfter <= 0 {
		errs = append(errs, errors.New("--poll-interval and --stuck-after must be positive"))
	}
	if o.cfg.BatchSize <= 0 || o.cfg.KeepHashes <= 0 {
		errs = append(errs, errors.New("--batch-size and --keep-hashes must be positive"))
	}
	o.db.MaxConns = 2
	errs = append(errs, o.cfg.Validate(), o.db.Validate())
	return errors.Join(errs...)
}

func runFollow(ctx context.Context, o *followOptions, logger *slog.Logger) error {
	if err := store.CheckMigrated(ctx, o.db); err != nil {
		return err
	}
	cm, err := o.kafka.configMap(backfill.ProducerConfig(), backfill.FixedProducerConfig())
	if err != nil {
		return err
	}
	_ = cm.SetKey("client.id", "chainsink-follow")
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	node, err := backfill.DialRPC(ctx, o.rpc, 0, logger)
	if err != nil {
		return err
	}
	defer node.Close()
	if o.traces {
		node.WithTraces()
	}
	var source follow.Node = node
	if ff, err := o.abi.filtered(node, o.traces, nil); err != nil {
		return err
	} else if ff != nil {
		source = ff
	}
	pub, err := backfill.NewKafkaPublisher(o.cfg.Topic, cm, logger)
	if err != nil {
		return err
	}
	defer pub.Close()
	m := metrics.New()
	fm := m.NewFollow()
	fm.Confirmations.Set(float64(o.cfg.Confirmations))
	fl := follow.New(o.cfg, source, pub, st.Pool(), fm, logger)
	if o.tokensTopic != "" {
		tokenPub, err := backfill.NewKafkaPublisher(o.tokensTopic, cm, logger)
		if err != nil {
			return err
		}
		defer tokenPub.Close()
		fl.WithTokens(tokens.NewWatcher(tokens.NewReader(node.Client(), 0), tokenPub, st.Pool(), logger))
	}
	if o.metricsAddr != "" {
		srv := server.New(server.Options{Addr: o.metricsAddr, StuckAfter: o.stuckAfter}, m, st, fl, logger)
		if err := srv.Start(ctx); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Stop(sctx)
		}()
	}
	// ctx ends on SIGINT or SIGTERM; the follower runs on a context of its own, ended by Stop.
	if err := fl.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("signal received; stopping the follower")
	case <-fl.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := fl.Stop(sctx); err != nil {
		return err
	}
	logger.Info("follower stopped")
	return fl.Err()
}
