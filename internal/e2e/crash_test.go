package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

const crashTopic = "items"

// crashWorkload is copies of block 17173049's ethereum-etl items (388 a block: 1 block, 116 transactions, 271
// logs), renumbered, spread round-robin over 4 partitions; every copy's rows are distinct. Last comes one more
// log item: the Uniswap V2 factory's PairCreated of the WETH/USDT pair, whose swaps every copy holds, in the
// last copy's block: its registration finds most of the pair's logs stored already.
func crashWorkload(t *testing.T, messages int) []localkafka.Record {
	t.Helper()
	recs := itemsWorkload(t, messages, 20_000_000)
	var last map[string]any
	for i := len(recs) - 1; last == nil; i-- {
		var m map[string]any
		if err := json.Unmarshal(recs[i].Value, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "log" {
			last = m
		}
	}
	last["log_index"] = 1000
	last["address"] = "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f"
	last["topics"] = []string{"0x0d3648bd0f6ba80134a33ba9275ac585d9d315f0ad8355cddefde31afa28d0e9",
		"0x000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
		"0x000000000000000000000000dac17f958d2ee523a2206206994597c13d831ec7"}
	last["data"] = "0x0000000000000000000000000d4a11d5eeaac28ec3f61d100daf4d40471f1852" +
		"0000000000000000000000000000000000000000000000000000000000000001"
	v, err := json.Marshal(last)
	if err != nil {
		t.Fatal(err)
	}
	return append(recs, localkafka.Record{Topic: crashTopic, Partition: 0, Value: v})
}

// crashConfig gives the crash tests typed tables of every kind: a factory's children (the pair), any
// address (ERC-20 Transfer), one address with every event and function (WETH).
const crashConfig = `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync, Mint, Burn]
  - {name: erc20, abi: ERC20, events: [Transfer]}
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", calls: ["*"]}
`

// typedSetup is a configuration's typed tables: the file, and what a writer and decoder of them need.
type typedSetup struct {
	path      string
	tables    *typed.Tables
	schema    chain.Schema // the typed tables and factory_children
	discovery *chain.Discovery
}

func newTypedSetup(t *testing.T, yaml string) *typedSetup {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chainsink.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := typed.CompileYAML(path, []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &typedSetup{path: path, tables: ts, schema: ts.WriteSchema(), discovery: ts.Discovery()}
}

// blockItems are block 17173049's ethereum-etl items: the block, its transactions, its logs.
func blockItems(t *testing.T) [][]byte {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	items, err := fixtures.ETLItems(root)
	if err != nil {
		t.Fatal(err)
	}
	var one [][]byte
	for _, k := range []string{"block", "transaction", "log"} {
		one = append(one, items[k]...)
	}
	return one
}

// itemsWorkload is crashWorkload with its copies numbered from block base.
func itemsWorkload(t *testing.T, messages int, base uint64) []localkafka.Record {
	t.Helper()
	one := blockItems(t)
	var recs []localkafka.Record
	for copyN := uint64(0); len(recs) < messages; copyN++ {
		for _, it := range one {
			v, err := fixtures.Renumber(it, base+copyN)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, localkafka.Record{Topic: crashTopic, Partition: int32(len(recs) % 4), Value: v})
		}
	}
	return recs
}

// reference writes recs through the same decoder and store, without Kafka and without crashes, into a schema
// of its own: the contents chainsink must end up with.
func reference(t *testing.T, recs []localkafka.Record) store.Config {
	t.Helper()
	return referenceOf(t, recs, format.EthereumETL, nil)
}

// referenceOf is reference for messages of format f, with the typed tables of ty (nil: none).
func referenceOf(t *testing.T, recs []localkafka.Record, f format.Format, ty *typedSetup) store.Config {
	t.Helper()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.New(reg, nil)
	writer := store.NewWriter(chain.CoreTables)
	if ty != nil {
		dec = dec.WithTables(ty.tables)
		all, err := chain.CoreTables.With(ty.schema...)
		if err != nil {
			t.Fatal(err)
		}
		writer = store.NewWriter(all).WithDiscovery(ty.discovery)
		for _, tb := range ty.tables.All {
			if _, err := s.Pool().Exec(ctx, tb.DDL()); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := map[int32]int64{}
	batches := map[int32]*store.Batch{}
	for _, r := range recs {
		b := batches[r.Partition]
		if b == nil {
			b = store.NewBatch("reference", r.Topic, r.Partition, next[r.Partition], f.Mode())
			batches[r.Partition] = b
		}
		rows, failure := dec.Decode(f, r.Key, r.Value)
		b.Add(store.Message{Offset: next[r.Partition], Key: r.Key, Value: r.Value, Rows: rows, Failure: failure})
		next[r.Partition]++
	}
	for _, b := range batches {
		if _, err := writer.Write(ctx, s.Pool(), b); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// checksums returns, per data table (the core ones and extra), its row count and an md5 of its whole contents
// in primary-key order.
func checksums(t *testing.T, cfg store.Config, extra chain.Schema) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables, err := chain.CoreTables.With(extra...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgtest.ChecksumsOf(ctx, conn, cfg.Schema, tables)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func requireSameContents(t *testing.T, got, want store.Config) {
	t.Helper()
	requireSameContentsOf(t, got, want, nil)
}

// requireSameContentsOf is requireSameContents of the core tables and extra.
func requireSameContentsOf(t *testing.T, got, want store.Config, extra chain.Schema) {
	t.Helper()
	g, w := checksums(t, got, extra), checksums(t, want, extra)
	tables := make([]string, 0, len(w))
	for k := range w {
		tables = append(tables, k)
	}
	sort.Strings(tables)
	for _, table := range tables {
		if g[table] != w[table] {
			t.Errorf("%s: got %s, want %s", table, g[table], w[table])
		} else {
			t.Logf("%s: %s", table, g[table])
		}
	}
}

// TestCrash kills the real binary with SIGKILL at random moments while it writes, restarts it each time, and
// requires the final contents to equal an uninterrupted reference, row for row. `make test` runs a short
// version; `make test-crash` (CHAINSINK_CRASH_FULL=1) runs ≥ 20k messages and ≥ 10 kills.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test: skipped by -short (make test-short)")
	}
	t.Parallel()
	messages, kills := 4000, 3
	if os.Getenv("CHAINSINK_CRASH_FULL") != "" {
		messages, kills = 20000, 12
	}
	crash(t, crashWorkload(t, messages), crashTopic+":ethereum-etl", format.EthereumETL, kills)
}

// TestCrashBundles is TestCrash for bundles, keyed by height, with what a live producer adds: duplicates (a
// producer that re-sends after a timeout) and reorgs (a second version of a height, with another hash and
// fewer transactions, published later on the height's partition). The last version of each height must be
// the one stored, whole.
func TestCrashBundles(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test: skipped by -short (make test-short)")
	}
	t.Parallel()
	heights, kills := 48, 3
	if os.Getenv("CHAINSINK_CRASH_FULL") != "" {
		heights, kills = 160, 10
	}
	crash(t, bundleWorkload(t, heights), "bundles:bundle", format.Bundle, kills)
}

// bundleWorkload is heights renumbered copies of block 17173049 as bundles keyed by height on 4 partitions,
// then a re-sent copy of every fourth and a shorter second version (a reorg) of every third.
func bundleWorkload(t *testing.T, heights int) []localkafka.Record {
	t.Helper()
	one := blockItems(t)
	record := func(n uint64, value []byte) localkafka.Record {
		return localkafka.Record{Topic: "bundles", Partition: int32(n % 4), Key: format.BundleKey(n), Value: value}
	}
	var recs, later []localkafka.Record
	for i := range heights {
		n := uint64(21_000_000 + i)
		renumbered := make([][]byte, len(one))
		for j, it := range one {
			v, err := fixtures.Renumber(it, n)
			if err != nil {
				t.Fatal(err)
			}
			renumbered[j] = v
		}
		bundle, err := format.BundleFromETLItems(renumbered)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, record(n, bundle))
		if i%4 == 1 {
			later = append(later, record(n, bundle))
		}
		if i%3 == 2 {
			later = append(later, record(n, shorterVersion(t, bundle, fmt.Sprintf("0x%064x", n))))
		}
	}
	return append(recs, later...)
}

// shorterVersion is another version of a bundle's block: hash and only its first ten transactions.
func shorterVersion(t *testing.T, bundle []byte, hash string) []byte {
	t.Helper()
	return mutateBundle(t, bundle, func(m map[string]any) {
		blk := m["block"].(map[string]any)
		blk["hash"] = hash
		blk["transactions"] = blk["transactions"].([]any)[:10]
		m["receipts"] = m["receipts"].([]any)[:10]
		for _, tx := range blk["transactions"].([]any) {
			tx.(map[string]any)["blockHash"] = hash
		}
		for _, r := range m["receipts"].([]any) {
			r.(map[string]any)["blockHash"] = hash
			for _, l := range r.(map[string]any)["logs"].([]any) {
				l.(map[string]any)["blockHash"] = hash
			}
		}
	})
}

// crash is the crash test of recs, consumed as topicArg (TOPIC:FORMAT) and decoded by f: at least kills
// SIGKILLs of the real binary with work in hand, then an uninterrupted run, then the contents compared with
// an uninterrupted reference.
func crash(t *testing.T, recs []localkafka.Record, topicArg string, f format.Format, kills int) {
	t.Helper()
	ctx := context.Background()
	topic := strings.SplitN(topicArg, ":", 2)[0]
	ty := newTypedSetup(t, crashConfig)
	want := referenceOf(t, recs, f, ty)
	s, cfg := migratedStore(t)
	applyTables(t, cfg, ty.path)
	b := newBroker(t, map[string]int32{topic: 4})
	// The input arrives in waves, one before each run, so that every run has something to write when it is
	// killed. There are three waves a kill: a run that drains its wave before the kill lands does not count,
	// and the waves left over go to the final, uninterrupted run.
	waves := 3*kills + 1
	produced := 0
	produceWave := func() {
		end := min(len(recs), produced+(len(recs)+waves-1)/waves)
		if err := b.Produce(ctx, recs[produced:end]); err != nil {
			t.Fatal(err)
		}
		produced = end
	}
	// Static membership: a restarted instance takes its partitions back at once instead of waiting for the
	// killed member's session to time out.
	args := append(runArgs(cfg, b.Addr(), "crash", topicArg),
		"--kafka-config", "group.instance.id=crash-1", "--batch-max-rows", "100", "--config", ty.path)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	began := time.Now()
	stored := func() int64 {
		n, err := storedTotal(s, "crash")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	killed, runs := 0, 0
	for killed < kills && runs < 4*kills {
		runs++
		if produced < len(recs) {
			produceWave()
		}
		before := stored()
		if before >= int64(len(recs)) {
			break
		}
		// Kill at a random point of the backlog, polled every 2 ms, so that kills land in the middle of
		// decoding, COPY and commit alike.
		threshold := before + int64(float64(int64(produced)-before)*(0.1+0.7*rng.Float64()))
		p := start(t, args...)
		deadline := time.Now().Add(60 * time.Second)
		for stored() < threshold && time.Now().Before(deadline) {
			<-time.After(2 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d stored nothing near its kill point (%d of %d) within 60s:\n%s", runs, stored(), threshold,
				strings.Join(p.logLines(), "\n"))
		}
		// A kill that finds the process gone proves nothing: it must have been running with work in hand.
		select {
		case <-p.done:
			t.Fatalf("run %d exited (%v) before its SIGKILL:\n%s", runs, p.err, strings.Join(p.logLines(), "\n"))
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d ended with %v, not by the SIGKILL", runs, p.err)
		}
		after := stored()
		if after < int64(produced) {
			killed++ // it died with work in hand
		}
		t.Logf("run %d: SIGKILL at %d of %d produced offsets stored (%d before the run)", runs, after, produced, before)
	}
	for produced < len(recs) {
		produceWave()
	}
	p := start(t, args...)
	waitCaughtUp(t, s, b, "crash", 120*time.Second, topic)
	if err := p.stop(t); err != nil {
		t.Fatalf("final run exited with %v:\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	t.Logf("crash test: %d messages, %d SIGKILLs, %v", len(recs), killed, time.Since(began).Round(time.Millisecond))
	if killed < kills {
		t.Errorf("only %d kills happened before the input was consumed; want %d", killed, kills)
	}
	requireSameContentsOf(t, cfg, want, ty.schema)
	var dead int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("dead letters = %d (%v)", dead, err)
	}
}

func storedTotal(s *store.Store, group string) (int64, error) {
	offs, err := store.ListOffsets(context.Background(), s.Pool(), group)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range offs {
		n += o.NextOffset
	}
	return n, nil
}

// TestETLItemsThroughAReorg: the ethereum-etl items of a height, then those of its reorg replacement, a block
// with another hash and 3 of the 116 transactions, its transactions and logs before its block item, through
// the real broker and `chainsink run --config`: every table, typed ones included, ends up as the replacement
// alone would leave it, and verify passes.
func TestETLItemsThroughAReorg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	old, repl, err := fixtures.ReorgItems(root, 21_500_000, 3, "0x"+strings.Repeat("bb", 32))
	if err != nil {
		t.Fatal(err)
	}
	records := func(items ...[][]byte) []localkafka.Record {
		var out []localkafka.Record
		for _, list := range items {
			for _, v := range list {
				out = append(out, localkafka.Record{Topic: "items", Partition: int32(len(out) % 2), Value: v})
			}
		}
		return out
	}
	first := records(old["block"], old["transaction"], old["log"])
	second := records(repl["transaction"], repl["log"], repl["block"])
	ty := newTypedSetup(t, crashConfig)
	want := referenceOf(t, records(repl["block"], repl["transaction"], repl["log"]), format.EthereumETL, ty)

	s, cfg := migratedStore(t)
	applyTables(t, cfg, ty.path)
	b := newBroker(t, map[string]int32{"items": 2})
	p := start(t, append(runArgs(cfg, b.Addr(), "reorg", "items:ethereum-etl"), "--config", ty.path)...)
	for _, wave := range [][]localkafka.Record{first, second} {
		if err := b.Produce(ctx, wave); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, s, b, "reorg", 60*time.Second, "items")
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("run exited with %v", err)
	}
	requireSameContentsOf(t, cfg, want, ty.schema)
	if out, errOut, err := runCmd(t, "verify", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema); err != nil {
		t.Fatalf("verify after the reorg: %v\n%s%s", err, out, errOut)
	}
}
