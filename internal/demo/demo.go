package demo

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Options configure the demo.
type Options struct {
	Binary   string
	AdminURL string
	Database string
	Port     int
	TestData string
	// MetricsAddr is where the mainnet run serves /metrics, which the summary quotes (default 127.0.0.1:9464).
	MetricsAddr string
}

// demoConfig is the configuration the demo runs with: typed tables of Uniswap V2 and V3, WETH and ERC-20.
//
//go:embed chainsink.yaml
var demoConfig []byte

var etlTopics = map[string]string{"block": "eth_blocks", "transaction": "eth_transactions", "log": "eth_logs",
	"token_transfer": "eth_token_transfers"}

// Run executes the demo and writes the summary to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:9464"
	}
	if o.TestData == "" {
		root, err := fixtures.Root()
		if err != nil {
			return err
		}
		o.TestData = root
	}
	dbURL, err := databaseURL(o.AdminURL, o.Database)
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }

	if err := RecreateDatabase(ctx, o.AdminURL, o.Database); err != nil {
		return fmt.Errorf("%w (is PostgreSQL running on 127.0.0.1:5432?)", err)
	}
	step("created database %s (dropped first if it was there)", o.Database)
	if err := runBinary(ctx, o.Binary, io.Discard, "migrate", "up", "--database-url", dbURL); err != nil {
		return err
	}
	step("schema migrated (chainsink migrate up)")
	list := filepath.Join(o.TestData, "tokenlists", "uniswap-default.tokenlist.json")
	var listed strings.Builder
	if err := runBinary(ctx, o.Binary, &listed, "tokens", "--list", list, "--database-url", dbURL); err != nil {
		return err
	}
	step("token symbols and decimals from %s (chainsink tokens --list): %s", filepath.Base(list), strings.TrimSpace(listed.String()))
	configPath := filepath.Join(filepath.Dir(o.Binary), "demo-chainsink.yaml")
	if err := os.WriteFile(configPath, demoConfig, 0o644); err != nil {
		return fmt.Errorf("write the demo's config: %w", err)
	}
	var applied strings.Builder
	if err := runBinary(ctx, o.Binary, &applied, "tables", "apply", "--config", configPath, "--database-url", dbURL); err != nil {
		return err
	}
	if n := strings.Count("\n"+applied.String(), "\ncreated "); n > 0 {
		step("typed tables of %s applied (chainsink tables apply): %d created", configPath, n)
	} else {
		step("typed tables of %s: already applied (chainsink tables apply)", configPath)
	}

	broker, err := localkafka.Start(localkafka.Options{Port: o.Port, Topics: map[string]int32{
		"eth_blocks": 1, "eth_transactions": 2, "eth_logs": 2, "eth_token_transfers": 1, "bundles": 2, localSchema: 2}})
	if err != nil {
		return fmt.Errorf("%w (port %d busy? use --port)", err, o.Port)
	}
	defer broker.Close()
	step("local Kafka-protocol broker on %s", broker.Addr())

	n, err := publish(ctx, broker, o.TestData)
	if err != nil {
		return err
	}
	step("published %d messages: mainnet block 17173049 as ethereum-etl items, block 483920 as a JSON-RPC bundle", n)

	group := "demo-" + time.Now().UTC().Format("20060102T150405")
	topics := "eth_blocks:ethereum-etl,eth_transactions:ethereum-etl,eth_logs:ethereum-etl,eth_token_transfers:ethereum-etl,bundles:bundle"
	metrics, err := runUntilCaughtUp(ctx, o, step, broker, run{dbURL: dbURL, schema: "public", group: group, topics: topics,
		config: configPath, log: "demo-run.log", metricsAddr: o.MetricsAddr})
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{DatabaseURL: dbURL})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(out)
	if err := summary(ctx, st, out, metrics); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFactory discovery, on a local chain\n")
	lc, err := StartLocalChain(ctx, o.TestData)
	if err != nil {
		return err
	}
	defer lc.Close()
	if err := IndexLocalChain(ctx, o, lc, broker, dbURL, localSchema, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nExplore: psql %q, then try docs/queries.md (the local chain's tables: SET search_path = %s)\n", dbURL, localSchema)
	return nil
}

// run is one `chainsink run` of the demo.
type run struct {
	dbURL, schema string
	group         string
	topics        string // --topics: NAME:FORMAT,…
	config        string // --config
	log           string // file name of its log, beside the binary
	metricsAddr   string // --metrics-addr, scraped once caught up; none when empty
}

// runUntilCaughtUp runs `chainsink run` until every partition of its topics that holds a message has its
// offset stored, scrapes /metrics, and stops it with SIGTERM as an operator would.
func runUntilCaughtUp(ctx context.Context, o Options, step func(string, ...any), broker *localkafka.Broker, r run) ([]string, error) {
	logPath := filepath.Join(filepath.Dir(o.Binary), r.log)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	defer logFile.Close()
	var topics []string
	for _, t := range strings.Split(r.topics, ",") {
		topics = append(topics, strings.SplitN(t, ":", 2)[0])
	}
	cmd := exec.CommandContext(ctx, o.Binary, "run", "--brokers", broker.Addr(), "--group", r.group, "--topics", r.topics,
		"--config", r.config, "--database-url", r.dbURL, "--schema", r.schema, "--metrics-addr", r.metricsAddr, "--log-format", "text")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	step("chainsink run --group %s --topics %s --config %s --schema %s (logs: %s)", r.group, r.topics, r.config, r.schema, logPath)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chainsink run: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	st, err := store.Open(ctx, store.Config{DatabaseURL: r.dbURL, Schema: r.schema})
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	defer st.Close()
	if err := waitCaughtUp(ctx, st, broker, r.group, topics, exited); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%w; see %s", err, logPath)
	}
	step("caught up in %s: every offset stored in kafka_offsets", time.Since(began).Round(time.Millisecond))
	var metrics []string
	if r.metricsAddr != "" {
		metrics = scrapeMetrics("http://" + r.metricsAddr + "/metrics")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		return nil, fmt.Errorf("chainsink run exited with %v; see %s", err, logPath)
	}
	step("chainsink run stopped cleanly on SIGTERM")
	return metrics, nil
}

func printSwaps(out io.Writer, swaps []Swap) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  BLOCK\tLOG\tPOOL\tTABLE\tAMOUNT0\tAMOUNT1\n")
	for _, s := range swaps {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\n", s.BlockNumber, s.LogIndex, s.Pool, s.Table, s.Amount0, s.Amount1)
	}
	_ = tw.Flush()
}

func databaseURL(adminURL, database string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("parse admin URL: %w", err)
	}
	u.Path = "/" + database
	return u.String(), nil
}

func runBinary(ctx context.Context, bin string, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

func publish(ctx context.Context, b *localkafka.Broker, root string) (int, error) {
	items, err := fixtures.ETLItems(root)
	if err != nil {
		return 0, err
	}
	var recs []localkafka.Record
	for kind, topic := range etlTopics {
		parts := int32(1)
		if kind == "transaction" || kind == "log" {
			parts = 2
		}
		for i, it := range items[kind] {
			recs = append(recs, localkafka.Record{Topic: topic, Partition: int32(i) % parts, Value: it})
		}
	}
	key, value, err := fixtures.Bundle483920(root)
	if err != nil {
		return 0, err
	}
	recs = append(recs, localkafka.Record{Topic: "bundles", Key: key, Value: value})
	return len(recs), b.Produce(ctx, recs)
}

func waitCaughtUp(ctx context.Context, st *store.Store, b *localkafka.Broker, group string, topics []string, exited <-chan error) error {
	want := map[string]int64{}
	for _, topic := range topics {
		for p, hw := range b.HighWatermarks(topic) {
			if hw > 0 {
				want[fmt.Sprintf("%s/%d", topic, p)] = hw
			}
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		offs, err := store.ListOffsets(ctx, st.Pool(), group)
		if err != nil {
			return err
		}
		done := 0
		for _, o := range offs {
			if want[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] == o.NextOffset {
				done++
			}
		}
		if done == len(want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("chainsink run exited early: %v", err)
		case <-deadline:
			return fmt.Errorf("not caught up after 2 minutes")
		case <-tick.C:
		}
	}
}

// scrapeMetrics returns chainsink's own samples from /metrics (not the Go runtime's), for the summary.
func scrapeMetrics(u string) []string {
	resp, err := http.Get(u)
	if err != nil {
		return []string{"(metrics unavailable: " + err.Error() + ")"}
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "chainsink_") && !strings.Contains(l, "_bucket{") {
			out = append(out, l)
		}
	}
	return out
}

func summary(ctx context.Context, st *store.Store, out io.Writer, metrics []string) error {
	db := st.Pool()
	counts, err := store.CountRows(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Rows stored")
	for _, t := range chain.CoreTables.Names() {
		note := ""
		if counts[t] == 0 && (t == "traces" || t == "contracts") {
			// The demo's data has no traces and creates no contract; `backfill --traces` fills both.
			note = "  (the demo's blocks have no traces and create no contract: backfill --traces fills them)"
		}
		fmt.Fprintf(out, "  %-16s %6d%s\n", t, counts[t], note)
	}
	section := func(title, col1, col2 string, rows []Ranked) {
		fmt.Fprintf(out, "\n%s\n", title)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\t%s\tCOUNT\n", col1, col2)
		for _, r := range rows {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", r.Label, r.Extra, r.Count)
		}
		_ = tw.Flush()
	}
	tokens, err := TopTokens(ctx, db, 8)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTop tokens by transfers: SELECT symbol, count(*), sum(amount) FROM token_transfers_scaled GROUP BY …\n")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  TOKEN\tSYMBOL\tSTANDARD\tTRANSFERS\tVOLUME\n")
	for _, k := range tokens {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", k.Token, k.Symbol, k.Standard, k.Transfers, k.Volume)
	}
	_ = tw.Flush()
	events, err := TopEvents(ctx, db, 10)
	if err != nil {
		return err
	}
	section("Decoded events", "EVENT", "ABI", events)
	methods, err := TopMethods(ctx, db, 8)
	if err != nil {
		return err
	}
	section("Decoded calls", "METHOD", "ABI", methods)
	typed, err := TypedTables(ctx, db)
	if err != nil {
		return err
	}
	section("Typed tables (one per event and function of the config's contract sets)", "TABLE", "FROM", typed)
	swaps, err := Swaps(ctx, db, 8)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nUniswap swaps from univ2_evt_swap and univ3_evt_swap (first %d; amounts into the pool, negative = out)\n", len(swaps))
	printSwaps(out, swaps)
	pairs, err := TopPairs(ctx, db, 5)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nBusiest Uniswap V2 pairs: SELECT contract_address, count(*), sum(amount0_in), sum(amount1_in) FROM univ2_evt_swap GROUP BY 1\n")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  PAIR\tSWAPS\tAMOUNT0_IN\tAMOUNT1_IN\n")
	for _, p := range pairs {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", p.Pair, p.Swaps, p.Amount0In, p.Amount1In)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nFrom /metrics at the end of the run\n")
	for _, m := range metrics {
		fmt.Fprintf(out, "  %s\n", m)
	}
	return nil
}
