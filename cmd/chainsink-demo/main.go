// Command chainsink-demo is what `make demo` runs: real mainnet data through a local Kafka-protocol broker and
// the real `chainsink run` into the local PostgreSQL, then a summary of what an analyst would see; then
// factory discovery on a local go-ethereum chain with Uniswap V2 and V3 deployed (`chainsink backfill`,
// `run`, `verify`) into the schema local_chain of the same database.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chainsink/chainsink/internal/demo"
)

func main() {
	var o demo.Options
	flag.StringVar(&o.Binary, "binary", "bin/chainsink", "the chainsink binary to run")
	flag.StringVar(&o.AdminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "a PostgreSQL URL allowed to create the demo database")
	flag.StringVar(&o.Database, "database", "chainsink_demo", "database to create (dropped first if it exists), migrate and fill")
	flag.IntVar(&o.Port, "port", 9092, "port of the local Kafka-protocol broker")
	flag.StringVar(&o.MetricsAddr, "metrics-addr", "127.0.0.1:9464", "where the mainnet run serves /metrics, which the summary quotes")
	flag.StringVar(&o.TestData, "testdata", "", "testdata directory (default: found from the current directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
