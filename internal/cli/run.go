package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/server"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
)

// defaultGOGC is chainsink run's garbage-collection target when GOGC is not set.
const defaultGOGC = 80

// kafkaMemory is what librdkafka holds outside the Go heap: its prefetch queue and a fetch response (4 MiB
// each, indexer's kafkaConfig) and its own buffers.
const kafkaMemory = 16 << 20

// runOptions are `chainsink run`'s flags.
type runOptions struct {
	db          store.Config
	ix          indexer.Config
	topics      []string
	kafkaConfig []string
	abi         abiOptions
	metricsAddr string
	stuckAfter  time.Duration
	pprof       bool
	// shutdownTimeout bounds the graceful stop on SIGINT or SIGTERM.
	shutdownTimeout time.Duration

	// Built by complete from the flags above.
	metrics *metrics.Metrics
	reg     *abi.Registry
	tables  *typed.Tables
}

func newRunCmd(g *globals) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Consume Kafka topics and store their rows in PostgreSQL, exactly once",
		Long: `Consume the given topics as one member of a consumer group, decode every message (and its logs and
calldata with the ABIs), and store the rows in PostgreSQL. Each batch is written in one transaction that also
advances the partition's offset in kafka_offsets, so a crash, restart or rebalance never loses or duplicates a row.

Run several instances with the same --group to share the partitions. Stop with SIGINT or SIGTERM: what has been
read is flushed (within --shutdown-timeout) before the process exits 0.

Formats: "bundle" (one JSON message per block: {"block": eth_getBlockByNumber(full), "receipts":
eth_getBlockReceipts}) and "ethereum-etl" (the items of ethereum-etl's stream --output kafka).`,
		Example: `  chainsink run --brokers localhost:9092 --group chainsink --topics blocks:bundle \
    --database-url postgres://chainsink@localhost/chain
  chainsink run --brokers kafka:9093 --topics blocks:ethereum-etl,transactions:ethereum-etl,logs:ethereum-etl \
    --kafka-config security.protocol=SASL_SSL --kafka-config sasl.mechanism=SCRAM-SHA-512 ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			if err := o.complete(); err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The heap is mostly queued messages and decoded batches, replaced every second or so, and the
				// memory limit's shares bound it: collecting at 80% heap growth instead of Go's 100% keeps
				// draining a backlog under 200 MiB of RSS, and instead of 40% (the default until queues of
				// small messages paused at half, indexer.pauseAt) halves the collector's CPU at the same
				// peak (make bench, docs/performance.md). GOGC in the environment still wins.
				debug.SetGCPercent(defaultGOGC)
			}
			if o.ix.MemoryLimit >= indexer.MinMemoryLimit && os.Getenv("GOMEMLIMIT") == "" {
				// The Go runtime collects harder as it nears the limit, less what librdkafka holds outside
				// the Go heap (its prefetch and fetch buffers, kafkaConfig). GOMEMLIMIT still wins.
				debug.SetMemoryLimit(o.ix.MemoryLimit - kafkaMemory)
			}
			return run(cmd.Context(), o, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	f := cmd.Flags()
	f.StringVar(&o.ix.Brokers, "brokers", "localhost:9092", "Kafka bootstrap servers, host:port[,host:port…]")
	f.StringVar(&o.ix.Group, "group", "chainsink", "Kafka consumer group (also the key of the offsets stored in Postgres)")
	f.StringVar(&o.ix.InstanceID, "instance-id", "", "static group membership (group.instance.id): unique and stable per instance, e.g. a StatefulSet pod name; a restarted instance gets its partitions back at once")
	f.StringSliceVar(&o.topics, "topics", nil, "topics to consume with their format, TOPIC:FORMAT[,TOPIC:FORMAT…]; formats: bundle, ethereum-etl, bundle-merge")
	f.StringArrayVar(&o.kafkaConfig, "kafka-config", nil, "librdkafka property key=value, repeatable (TLS, SASL, tuning); in the environment, comma-separated")
	def := indexer.Config{}.WithDefaults()
	f.IntVar(&o.ix.BatchMaxRows, "batch-max-rows", def.BatchMaxRows, "close a batch at this many rows")
	f.IntVar(&o.ix.BatchMaxBytes, "batch-max-bytes", def.BatchMaxBytes, "close a batch at this many bytes of messages")
	f.IntVar(&o.ix.BatchMaxHeights, "batch-max-heights", def.BatchMaxHeights, "close a batch at this many distinct block heights (each is a Postgres lock of its transaction)")
	f.Int64Var(&o.ix.PartitionBlocks, "partition-blocks", def.PartitionBlocks, "heights per partition of the partitioned tables, created ahead of the data (negative: never create partitions)")
	f.DurationVar(&o.ix.BatchMaxAge, "batch-max-age", def.BatchMaxAge, "close a non-empty batch this long after its first message")
	f.DurationVar(&o.ix.BatchMinAge, "batch-min-age", def.BatchMinAge, "close a batch that holds everything its partition has this long after its first message (0: at once; more trades latency for fewer commits)")
	f.IntVar(&o.ix.QueueMaxBytes, "queue-max-bytes", def.QueueMaxBytes, "a worker's queue is full at this many bytes of undecoded messages (half as many in 16 messages or more); when all are, the consumer waits (see --pause-after)")
	f.DurationVar(&o.ix.PauseAfter, "pause-after", def.PauseAfter, "how long the consumer waits for room, once the worker queues are full, before it pauses a full one (at most 10s; a pause makes librdkafka fetch again what it had fetched ahead)")
	o.ix.MemoryLimit = def.MemoryLimit
	f.Var((*sizeValue)(&o.ix.MemoryLimit), "memory-limit", "memory that the queues and batches of every owned partition share, and the Go runtime's soft limit (e.g. 256MiB, 1GiB; off: per-partition limits only)")
	f.DurationVar(&o.ix.OffsetRecheck, "offset-recheck", def.OffsetRecheck, "how often a partition held for an offset anomaly is checked again (see chainsink offsets)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for the last batches to commit")
	f.Int32Var(&o.db.MaxConns, "db-max-conns", 16, "PostgreSQL connections at most (one per owned partition is ideal)")
	addABIFlags(cmd, &o.abi)
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address, e.g. :9090 (off when empty)")
	f.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiles under /debug/pprof/ on --metrics-addr")
	f.DurationVar(&o.stuckAfter, "stuck-after", 2*time.Minute, "/readyz fails when a partition has retried its batch for longer than this")
	return cmd
}

// complete turns the flags into the indexer's configuration and loads the ABIs, so that every mistake in
// them is reported before anything connects.
func (o *runOptions) complete() error {
	var errs []error
	o.metrics = metrics.New()
	reg, tables, err := o.abi.load()
	if err != nil {
		errs = append(errs, err)
		reg, _ = abi.Default()
	}
	o.reg, o.tables = reg, tables
	dec := decode.New(reg, o.metrics).WithTables(tables)
	o.ix.ExtraTables, o.ix.Discovery = typedSchema(tables)
	o.ix.Untyped = untypedOf(tables)
	for _, spec := range o.topics {
		name, f, ok := strings.Cut(spec, ":")
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("topic %q: want TOPIC:FORMAT, e.g. blocks:bundle", spec))
			continue
		}
		fm, err := format.Parse(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", spec, err))
			continue
		}
		o.ix.Topics = append(o.ix.Topics, indexer.Topic{Name: name, Format: dec.Format(fm)})
	}
	kc, err := parseKeyValues(o.kafkaConfig)
	if err != nil {
		errs = append(errs, err)
	}
	o.ix.KafkaConfig = kc
	if o.pprof && o.metricsAddr == "" {
		errs = append(errs, errors.New("--pprof needs --metrics-addr: the profiles are served there"))
	}
	errs = append(errs, o.ix.Validate(), o.db.Validate())
	return errors.Join(errs...)
}

// parseKeyValues reads librdkafka properties. Each --kafka-config is one key=value, and its value may hold
// commas (debug=cgrp,fetch; ssl.cipher.suites=…). The environment's list syntax splits CHAINSINK_KAFKA_CONFIG
// on commas, so an item without "=" continues the value of the key before it.
func parseKeyValues(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	last := ""
	for _, kv := range kvs {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if last == "" {
				return nil, fmt.Errorf("kafka config %q: want key=value", kv)
			}
			out[last] += "," + kv
			continue
		}
		if k = strings.TrimSpace(k); k == "" {
			return nil, fmt.Errorf("kafka config %q: want key=value", kv)
		}
		out[k] = strings.TrimSpace(v)
		last = k
	}
	return out, nil
}

// loadRegistry is the built-in ABIs plus the user's directory and address bindings.
func loadRegistry(abiDir, contracts string) (*abi.Registry, error) {
	reg, err := abi.Default()
	if err != nil {
		return nil, fmt.Errorf("load built-in ABIs: %w", err)
	}
	if abiDir != "" {
		if err := reg.LoadDir(abiDir); err != nil {
			return nil, fmt.Errorf("load ABIs from %s: %w", abiDir, err)
		}
	}
	if contracts != "" {
		f, err := os.Open(contracts)
		if err != nil {
			return nil, fmt.Errorf("open contracts file: %w", err)
		}
		defer f.Close()
		if err := reg.BindContracts(f); err != nil {
			return nil, fmt.Errorf("load contracts file %s: %w", contracts, err)
		}
	}
	return reg, nil
}

func run(ctx context.Context, o *runOptions, logger *slog.Logger) error {
	st, err := openMigrated(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkTables(ctx, st.Pool(), o.tables); err != nil {
		return err
	}

	ix, err := indexer.New(o.ix, st.Pool(), logger, o.metrics)
	if err != nil {
		return err
	}
	logger.Info("starting", "database", store.Redact(o.db.DatabaseURL), "schema", st.Schema(), "abis", len(o.reg.Names()),
		"typed_tables", len(o.ix.ExtraTables))
	// ctx is cancelled by SIGINT and SIGTERM, which ask for the graceful stop below; the pieces run on a
	// context of their own, cancelled only when that stop runs out of time.
	runCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	var srv *server.Server
	if o.metricsAddr != "" {
		// Listening first: an address in use fails the command before it joins the group. /readyz says
		// "not joined" until the first assignment.
		srv = server.New(server.Options{Addr: o.metricsAddr, StuckAfter: o.stuckAfter, Profiling: o.pprof}, o.metrics, st, ix, logger)
		if err := srv.Start(runCtx); err != nil {
			return err
		}
	}
	if err := ix.Start(runCtx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("signal received; flushing and stopping", "shutdown_timeout", o.shutdownTimeout)
	case <-ix.Done():
	}
	stopCtx, cancel := context.WithTimeout(runCtx, o.shutdownTimeout)
	defer cancel()
	err = ix.Stop(stopCtx)
	if srv != nil {
		// The endpoints answer until the indexer has flushed, so a probe sees the shutdown as it happens;
		// then requests in flight get a few seconds of their own.
		sctx, cancel := context.WithTimeout(runCtx, 5*time.Second)
		defer cancel()
		if serr := srv.Stop(sctx); serr != nil {
			logger.Warn("metrics server did not stop cleanly", "error", serr)
		}
	}
	return err
}
