// Command chainsink-bench is `make bench`: in one run it measures the real `chainsink run` binary against a
// plain COPY of the same rows (the ceiling) and batched INSERT … ON CONFLICT DO NOTHING (the baseline), with
// the tables growing, with secondary indexes deferred and with a large backlog, prints a table and writes it
// as JSON to bench/results/<timestamp>.json. See docs/performance.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chainsink/chainsink/internal/bench"
)

func main() {
	var o bench.Options
	var growth, scenarios string
	flag.StringVar(&o.Binary, "binary", "bin/chainsink", "the chainsink binary to measure (make build)")
	flag.StringVar(&o.AdminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "a PostgreSQL URL allowed to drop and create --database")
	flag.StringVar(&o.Database, "database", "chainsink_bench", "database to DROP and create afresh; every scenario gets its own schema in it")
	flag.StringVar(&o.OutDir, "out", "bench/results", "directory of the results JSON")
	flag.StringVar(&o.TestData, "testdata", "", "testdata directory (default: found from the current directory)")
	flag.IntVar(&o.Blocks, "blocks", 2000, "renumbered copies of mainnet block 17173049 (809 rows each) in the main workload")
	var partitions int
	flag.IntVar(&partitions, "partitions", 4, "partitions of every topic; also the parallel writers of the ceiling and the baseline")
	flag.IntVar(&o.BatchRows, "batch-rows", 0, "rows per batch: chainsink's --batch-max-rows, the ceiling's and baseline's transactions (0: chainsink's default)")
	flag.IntVar(&o.InsertRows, "insert-rows", 500, "rows per INSERT statement of the baseline")
	flag.StringVar(&growth, "growth", "0,1000000,5000000", "rows preloaded before each cost-growth run, comma-separated (0 is the main bundle run; empty skips)")
	flag.IntVar(&o.Backlog, "backlog", 1000000, "ethereum-etl messages in the memory-with-backlog run (0 skips it)")
	flag.IntVar(&o.FollowBlocks, "follow-blocks", 60, "blocks measured by the follow scenario")
	flag.DurationVar(&o.FollowInterval, "follow-interval", time.Second, "block interval of the follow scenario's simulated chain")
	flag.Int64Var(&o.VerifyRows, "verify-rows", 10_000_000, "rows stored before chainsink verify is timed (the verify scenario)")
	flag.StringVar(&scenarios, "scenarios", strings.Join(bench.AllScenarios, ","), "scenarios to run")
	flag.StringVar(&o.Config, "config", "", "typed tables configuration of the typed scenario (default: the demo's, internal/demo/chainsink.yaml)")
	flag.IntVar(&o.IndexWorkers, "index-workers", 2, "indexes built at once after the deferred-index run")
	flag.StringVar(&o.IndexMem, "index-maintenance-work-mem", "256MB", "maintenance_work_mem of each index build")
	flag.DurationVar(&o.RunTimeout, "run-timeout", 0, "give up on a chainsink run after this long (default 10m)")
	flag.Func("chainsink-arg", "extra flag for every `chainsink run`, repeatable, e.g. --chainsink-arg=--queue-max-bytes=8388608", func(v string) error {
		o.ChainsinkArgs = append(o.ChainsinkArgs, v)
		return nil
	})
	flag.Func("chainsink-env", "KEY=VALUE for every `chainsink run`'s environment, repeatable, e.g. --chainsink-env=GOMEMLIMIT=200MiB", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.ChainsinkEnv = append(o.ChainsinkEnv, v)
		return nil
	})
	flag.BoolVar(&o.KeepLogs, "keep-logs", false, "keep the chainsink run logs (their directory is printed at the start)")
	flag.StringVar(&o.Compression, "compression", bench.CompressionProducers, "how the broker holds the workload's messages: "+
		"producers (bundles lz4 as chainsink backfill publishes them, ethereum-etl items uncompressed as ethereum-etl does), "+
		"or one of none, gzip, snappy, lz4, zstd for every topic")
	flag.Parse()
	o.Partitions = int32(partitions)
	for _, s := range strings.Split(growth, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "chainsink-bench: --growth %q: want row counts such as 0,1000000\n", growth)
			os.Exit(2)
		}
		o.Growth = append(o.Growth, n)
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Scenarios = append(o.Scenarios, s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chainsink-bench:", err)
		os.Exit(1)
	}
}
