// Command chainsink-localkafka runs a Kafka-protocol broker (franz-go's kfake) on a fixed local port, for trying
// chainsink with kcat or your own producer without installing Kafka. It keeps messages in memory and deletes
// those older than --retention on a ticker. It is a development tool, not a Kafka replacement.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chainsink/chainsink/internal/localkafka"
)

func main() {
	port := flag.Int("port", 9092, "port to listen on (127.0.0.1)")
	topics := flag.String("topics", "blocks:4,ethereum-etl:4", "topics to create, NAME:PARTITIONS[,NAME:PARTITIONS…]")
	retention := flag.Duration("retention", time.Hour, "delete messages older than this (checked every minute)")
	dataDir := flag.String("data-dir", "", "persist the log here so a restart keeps it (default: memory only)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ts := map[string]int32{}
	for _, spec := range strings.Split(*topics, ",") {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		name, parts, _ := strings.Cut(spec, ":")
		n, err := strconv.Atoi(parts)
		if err != nil || n < 1 {
			n = 1
		}
		ts[name] = int32(n)
	}
	b, err := localkafka.Start(localkafka.Options{Port: *port, Topics: ts, DataDir: *dataDir,
		RetentionMs: retention.Milliseconds()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chainsink-localkafka:", err)
		os.Exit(1)
	}
	defer b.Close()
	log.Info("local Kafka broker listening", "addr", b.Addr(), "topics", ts, "retention", *retention)
	fmt.Printf("try: kcat -b %s -L\n", b.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return
		case <-tick.C:
			b.ApplyRetention()
		}
	}
}
