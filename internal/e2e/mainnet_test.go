package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// etlTopics are the topics ethereum-etl's `stream --output kafka` writes, as chainsink is told to read them.
var etlTopics = []string{"eth_blocks", "eth_transactions", "eth_logs", "eth_token_transfers"}

// publishMainnet publishes block 17173049's ethereum-etl items (spread over two partitions per topic, as an
// unkeyed producer would) and block 483920 as a bundle.
func publishMainnet(t *testing.T, b *localkafka.Broker) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	items, err := fixtures.ETLItems(root)
	if err != nil {
		t.Fatal(err)
	}
	var recs []localkafka.Record
	for kind, topic := range map[string]string{"block": "eth_blocks", "transaction": "eth_transactions",
		"log": "eth_logs", "token_transfer": "eth_token_transfers"} {
		for i, it := range items[kind] {
			recs = append(recs, localkafka.Record{Topic: topic, Partition: int32(i % 2), Value: it})
		}
	}
	key, value, err := fixtures.Bundle483920(root)
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, localkafka.Record{Topic: "bundles", Partition: 0, Key: key, Value: value})
	if err := b.Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func mainnetTopics() map[string]int32 {
	return map[string]int32{"eth_blocks": 2, "eth_transactions": 2, "eth_logs": 2, "eth_token_transfers": 2, "bundles": 2}
}

func mainnetTopicArgs() []string {
	var out []string
	for _, t := range etlTopics {
		out = append(out, t+":ethereum-etl")
	}
	return append(out, "bundles:bundle")
}

// Secrets the mainnet run is given; none may appear in any log line. The test server trusts local
// connections, so the password is accepted and ignored.
const (
	dbSecret   = "db-s3cr3t-pw"
	saslSecret = "sasl-s3cr3t-pw"
)

// ingestMainnet loads the real mainnet fixtures through the real binary, checks its /metrics against what
// was stored, and returns the store.
func ingestMainnet(t *testing.T) (*store.Store, store.Config) {
	t.Helper()
	s, cfg := migratedStore(t)
	b := newBroker(t, mainnetTopics())
	publishMainnet(t, b)
	withSecret := cfg
	withSecret.DatabaseURL = strings.Replace(cfg.DatabaseURL, "postgres@", "postgres:"+dbSecret+"@", 1)
	if withSecret.DatabaseURL == cfg.DatabaseURL {
		t.Fatalf("cannot add a password to %s", cfg.DatabaseURL)
	}
	// The demo's configuration: the typed tables that docs/queries.md queries.
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(filepath.Dir(root), "internal", "demo", "chainsink.yaml")
	applyTables(t, cfg, conf)
	// The demo's token list: the symbols and decimals of docs/queries.md's scaled amounts.
	list := filepath.Join(root, "tokenlists", "uniswap-default.tokenlist.json")
	if _, errOut, err := runCmd(t, "tokens", "--list", list, "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema); err != nil {
		t.Fatalf("tokens --list: %v\n%s", err, errOut)
	}
	args := append(runArgs(withSecret, b.Addr(), "mainnet", mainnetTopicArgs()...),
		"--metrics-addr", "127.0.0.1:0", "--pprof", "--kafka-config", "sasl.password="+saslSecret, "--log-level", "debug",
		"--config", conf)
	p := start(t, args...)
	waitCaughtUp(t, s, b, "mainnet", 60*time.Second, append(etlTopics, "bundles")...)
	checkMetrics(t, s, p)
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink exited with %v; logs:\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	lines := p.logLines()
	if len(lines) < 5 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(l, dbSecret) || strings.Contains(l, saslSecret) {
			t.Errorf("a secret leaked into the log: %s", l)
		}
	}
	return s, cfg
}

var listenLine = regexp.MustCompile(`"addr":"([^"]+)"`)

// checkMetrics scrapes /metrics and /readyz of a caught-up run (rows written equal rows stored, lag is 0),
// and checks that --pprof serves a heap profile.
func checkMetrics(t *testing.T, s *store.Store, p *proc) {
	t.Helper()
	addr := p.metricsAddr(t)
	counts, err := store.CountRows(context.Background(), s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	samples := scrape(t, "http://"+addr+"/metrics")
	for table, n := range counts {
		if got := samples[fmt.Sprintf(`chainsink_rows_written_total{table=%q}`, table)]; got != float64(n) {
			t.Errorf("chainsink_rows_written_total{table=%q} = %v, want %d", table, got, n)
		}
	}
	lags := 0
	for k, v := range samples {
		if strings.HasPrefix(k, "chainsink_consumer_lag{") {
			lags++
			if v != 0 {
				t.Errorf("%s = %v, want 0", k, v)
			}
		}
	}
	if lags == 0 {
		t.Error("no chainsink_consumer_lag samples")
	}
	if samples["chainsink_assigned_partitions"] != 10 {
		t.Errorf("chainsink_assigned_partitions = %v, want 10", samples["chainsink_assigned_partitions"])
	}
	if code := httpStatus(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
	if code := httpStatus(t, "http://"+addr+"/debug/pprof/heap"); code != 200 {
		t.Errorf("/debug/pprof/heap with --pprof = %d, want 200", code)
	}
	// The command line holds --database-url, password included.
	if code := httpStatus(t, "http://"+addr+"/debug/pprof/cmdline"); code == 200 {
		t.Errorf("/debug/pprof/cmdline = %d: it would serve the database password", code)
	}
}

func TestMainnetDataFieldByField(t *testing.T) {
	t.Parallel()
	s, _ := ingestMainnet(t)
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ethereum-etl block 17173049", func(t *testing.T) {
		rows, err := pgtest.ReadRows(ctx, s.Pool(), fixtures.Block17173049, fixtures.Block17173049)
		if err != nil {
			t.Fatal(err)
		}
		items, err := fixtures.ETLItems(root)
		if err != nil {
			t.Fatal(err)
		}
		checkETLBlock(t, rows, items)
	})
	t.Run("bundle block 483920", func(t *testing.T) {
		rows, err := pgtest.ReadRows(ctx, s.Pool(), fixtures.Block483920, fixtures.Block483920)
		if err != nil {
			t.Fatal(err)
		}
		checkBundle483920(t, rows, root)
	})
	t.Run("no dead letters", func(t *testing.T) {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("dead letters = %d (%v), want 0", n, err)
		}
	})
	t.Run("docs/queries.md", func(t *testing.T) { checkDocsQueries(t, s) })
}

type jsonObj map[string]any

func parseItems(t *testing.T, lines [][]byte) []jsonObj {
	t.Helper()
	out := make([]jsonObj, 0, len(lines))
	for _, l := range lines {
		d := json.NewDecoder(bytes.NewReader(l))
		d.UseNumber()
		var o jsonObj
		if err := d.Decode(&o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// eqHex compares a bytea with a 0x string (nil with JSON null).
func eqHex(t *testing.T, what string, got []byte, want any) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("%s = %x, want NULL", what, got)
		}
		return
	}
	if w := want.(string); hexutil.Encode(got) != strings.ToLower(w) {
		t.Errorf("%s = %s, want %s", what, hexutil.Encode(got), w)
	}
}

// eqNum compares an integer column with a JSON number (nil with null).
func eqNum(t *testing.T, what string, got any, want any) {
	t.Helper()
	var g string
	switch v := got.(type) {
	case *big.Int:
		if v != nil {
			g = v.String()
		}
	case *int64:
		if v != nil {
			g = fmt.Sprint(*v)
		}
	case *int16:
		if v != nil {
			g = fmt.Sprint(*v)
		}
	default:
		g = fmt.Sprint(v)
	}
	w := ""
	if want != nil {
		w = string(want.(json.Number))
	}
	if g != w {
		t.Errorf("%s = %q, want %q", what, g, w)
	}
}

func checkETLBlock(t *testing.T, rows chain.Rows, items map[string][][]byte) {
	blocks := parseItems(t, items["block"])
	if len(rows.Blocks) != 1 {
		t.Fatalf("blocks = %d, want 1", len(rows.Blocks))
	}
	b, w := rows.Blocks[0], blocks[0]
	eqHex(t, "block hash", b.Hash, w["hash"])
	eqHex(t, "parent_hash", b.ParentHash, w["parent_hash"])
	eqHex(t, "miner", b.Miner, w["miner"])
	eqHex(t, "state_root", b.StateRoot, w["state_root"])
	eqHex(t, "withdrawals_root", b.WithdrawalsRoot, w["withdrawals_root"])
	eqHex(t, "extra_data", b.ExtraData, w["extra_data"])
	eqNum(t, "gas_used", b.GasUsed, w["gas_used"])
	eqNum(t, "gas_limit", b.GasLimit, w["gas_limit"])
	eqNum(t, "base_fee_per_gas", b.BaseFeePerGas, w["base_fee_per_gas"])
	eqNum(t, "total_difficulty", b.TotalDifficulty, w["total_difficulty"])
	eqNum(t, "transaction_count", b.TransactionCount, w["transaction_count"])
	eqNum(t, "timestamp", b.Timestamp.Unix(), w["timestamp"])
	if ws := w["withdrawals"].([]any); len(rows.Withdrawals) != len(ws) || len(ws) != 16 {
		t.Errorf("withdrawals = %d, want %d", len(rows.Withdrawals), len(ws))
	}

	txs := parseItems(t, items["transaction"])
	if len(rows.Transactions) != len(txs) || len(txs) != 116 {
		t.Fatalf("transactions = %d, want %d", len(rows.Transactions), len(txs))
	}
	failed := 0
	for _, w := range txs {
		idx := w["transaction_index"].(json.Number).String()
		var tx *chain.Transaction
		for i := range rows.Transactions {
			if fmt.Sprint(rows.Transactions[i].TransactionIndex) == idx {
				tx = &rows.Transactions[i]
			}
		}
		if tx == nil {
			t.Fatalf("transaction %s missing", idx)
		}
		p := "tx " + idx + " "
		eqHex(t, p+"hash", tx.Hash, w["hash"])
		eqHex(t, p+"from", tx.FromAddress, w["from_address"])
		eqHex(t, p+"to", tx.ToAddress, w["to_address"])
		eqHex(t, p+"input", tx.Input, w["input"])
		eqHex(t, p+"contract_address", tx.ContractAddress, w["receipt_contract_address"])
		eqNum(t, p+"value", tx.Value, w["value"])
		eqNum(t, p+"nonce", tx.Nonce, w["nonce"])
		eqNum(t, p+"gas", tx.Gas, w["gas"])
		eqNum(t, p+"gas_price", tx.GasPrice, w["gas_price"])
		eqNum(t, p+"max_fee_per_gas", tx.MaxFeePerGas, w["max_fee_per_gas"])
		eqNum(t, p+"max_priority_fee_per_gas", tx.MaxPriorityFeePerGas, w["max_priority_fee_per_gas"])
		eqNum(t, p+"type", tx.Type, w["transaction_type"])
		eqNum(t, p+"status", tx.Status, w["receipt_status"])
		eqNum(t, p+"gas_used", tx.GasUsed, w["receipt_gas_used"])
		eqNum(t, p+"cumulative_gas_used", tx.CumulativeGasUsed, w["receipt_cumulative_gas_used"])
		eqNum(t, p+"effective_gas_price", tx.EffectiveGasPrice, w["receipt_effective_gas_price"])
		if tx.Status != nil && *tx.Status == 0 {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("failed transactions = %d, want 3", failed)
	}

	logs := parseItems(t, items["log"])
	if len(rows.Logs) != len(logs) || len(logs) != 271 {
		t.Fatalf("logs = %d, want %d", len(rows.Logs), len(logs))
	}
	for i, w := range logs {
		l := rows.Logs[i]
		p := fmt.Sprintf("log %d ", l.LogIndex)
		eqNum(t, p+"log_index", l.LogIndex, w["log_index"])
		eqHex(t, p+"address", l.Address, w["address"])
		eqHex(t, p+"data", l.Data, w["data"])
		eqHex(t, p+"transaction_hash", l.TransactionHash, w["transaction_hash"])
		eqNum(t, p+"transaction_index", l.TransactionIndex, w["transaction_index"])
		topics := w["topics"].([]any)
		if len(topics) != len(l.Topics) {
			t.Errorf("%stopics = %d, want %d", p, len(l.Topics), len(topics))
			continue
		}
		for j := range topics {
			eqHex(t, fmt.Sprintf("%stopic%d", p, j), l.Topics[j], topics[j])
		}
	}

	// Token transfers are chainsink's own decoding, compared with ethereum-etl's independent one.
	want := parseItems(t, items["token_transfer"])
	if len(rows.TokenTransfers) != len(want) || len(want) != 114 {
		t.Fatalf("token transfers = %d, want %d", len(rows.TokenTransfers), len(want))
	}
	for i, w := range want {
		tt := rows.TokenTransfers[i]
		p := fmt.Sprintf("transfer at log %d ", tt.LogIndex)
		eqNum(t, p+"log_index", tt.LogIndex, w["log_index"])
		eqHex(t, p+"token", tt.TokenAddress, w["token_address"])
		eqHex(t, p+"from", tt.FromAddress, w["from_address"])
		eqHex(t, p+"to", tt.ToAddress, w["to_address"])
		eqHex(t, p+"tx", tt.TransactionHash, w["transaction_hash"])
		if tt.Standard == "erc721" {
			eqNum(t, p+"token_id", tt.TokenID, w["value"]) // ethereum-etl puts the token id in value
		} else {
			eqNum(t, p+"value", tt.Value, w["value"])
		}
	}
	if len(rows.Events) < 200 {
		t.Errorf("decoded events = %d; the built-in ABIs know far more of this block's 271 logs", len(rows.Events))
	}
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		if x == nil {
			return ""
		}
		return hexutil.Encode(x)
	case *big.Int:
		if x == nil {
			return ""
		}
		return x.String()
	case *int64:
		if x == nil {
			return ""
		}
		return fmt.Sprint(*x)
	case *int16:
		if x == nil {
			return ""
		}
		return fmt.Sprint(*x)
	}
	return fmt.Sprint(v)
}

func checkBundle483920(t *testing.T, rows chain.Rows, root string) {
	res := filepath.Join(root, "ethereum-etl", "tests", "resources")
	eb := readCSV(t, filepath.Join(res, "test_export_blocks_job", "block_with_logs", "expected_blocks.csv"))[0]
	if len(rows.Blocks) != 1 {
		t.Fatalf("blocks = %d", len(rows.Blocks))
	}
	b := rows.Blocks[0]
	for col, got := range map[string]any{"hash": b.Hash, "parent_hash": b.ParentHash, "miner": b.Miner,
		"nonce": b.Nonce, "logs_bloom": b.LogsBloom, "state_root": b.StateRoot, "receipts_root": b.ReceiptsRoot,
		"transactions_root": b.TransactionsRoot, "extra_data": b.ExtraData, "difficulty": b.Difficulty,
		"total_difficulty": b.TotalDifficulty, "size": b.Size, "gas_limit": b.GasLimit, "gas_used": b.GasUsed,
		"timestamp": b.Timestamp.Unix(), "transaction_count": b.TransactionCount} {
		if str(got) != eb[col] {
			t.Errorf("block %s = %s, want %s", col, str(got), eb[col])
		}
	}
	txs := readCSV(t, filepath.Join(res, "test_export_blocks_job", "block_with_logs", "expected_transactions.csv"))
	receipts := readCSV(t, filepath.Join(res, "test_export_receipts_job", "receipts_with_logs", "expected_receipts.csv"))
	if len(rows.Transactions) != len(txs) || len(txs) != 4 {
		t.Fatalf("transactions = %d, want %d", len(rows.Transactions), len(txs))
	}
	for _, w := range txs {
		var tx *chain.Transaction
		for i := range rows.Transactions {
			if hexutil.Encode(rows.Transactions[i].Hash) == w["hash"] {
				tx = &rows.Transactions[i]
			}
		}
		if tx == nil {
			t.Fatalf("transaction %s missing", w["hash"])
		}
		for col, got := range map[string]any{"nonce": tx.Nonce, "transaction_index": tx.TransactionIndex,
			"from_address": tx.FromAddress, "to_address": tx.ToAddress, "value": tx.Value, "gas": tx.Gas,
			"gas_price": tx.GasPrice, "input": tx.Input, "block_timestamp": tx.BlockTimestamp.Unix(),
			"transaction_type": tx.Type} {
			if str(got) != w[col] {
				t.Errorf("tx %s %s = %s, want %s", w["hash"], col, str(got), w[col])
			}
		}
		for _, r := range receipts {
			if r["transaction_hash"] != w["hash"] {
				continue
			}
			for col, got := range map[string]any{"cumulative_gas_used": tx.CumulativeGasUsed, "gas_used": tx.GasUsed,
				"contract_address": tx.ContractAddress, "root": tx.Root, "status": tx.Status,
				"effective_gas_price": tx.EffectiveGasPrice} {
				if str(got) != r[col] {
					t.Errorf("receipt %s %s = %s, want %s", w["hash"], col, str(got), r[col])
				}
			}
		}
	}
	transfers := readCSV(t, filepath.Join(res, "test_export_token_transfers_job", "block_with_transfers", "expected_token_transfers.csv"))
	if len(rows.TokenTransfers) != len(transfers) || len(transfers) != 2 {
		t.Fatalf("token transfers = %d, want %d", len(rows.TokenTransfers), len(transfers))
	}
	for i, w := range transfers {
		tt := rows.TokenTransfers[i]
		for col, got := range map[string]any{"token_address": tt.TokenAddress, "from_address": tt.FromAddress,
			"to_address": tt.ToAddress, "value": tt.Value, "transaction_hash": tt.TransactionHash, "log_index": tt.LogIndex} {
			if str(got) != w[col] {
				t.Errorf("transfer %d %s = %s, want %s", i, col, str(got), w[col])
			}
		}
	}
}

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// checkDocsQueries runs every ```sql block of docs/queries.md; each must succeed and, but for the ones about
// pipeline health and the ones over traces (which the mainnet fixtures do not have; TestTracesOfUniswapV2
// runs them on a traced chain, see checkTraceQueries), return rows on this data.
func checkDocsQueries(t *testing.T, s *store.Store) {
	runDocsQueries(t, s, func(q string) (run, needRows bool) {
		return true, !strings.Contains(q, "dead_letters") && !isTraceQuery(q)
	})
}

// checkTraceQueries runs the queries of docs/queries.md over traces, each of which must return rows.
func checkTraceQueries(t *testing.T, s *store.Store) {
	runDocsQueries(t, s, func(q string) (run, needRows bool) { return isTraceQuery(q), true })
}

func isTraceQuery(q string) bool {
	return strings.Contains(q, "FROM traces") || strings.Contains(q, "FROM contracts") || strings.Contains(q, "trace_address")
}

func runDocsQueries(t *testing.T, s *store.Store, which func(q string) (run, needRows bool)) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(root), "docs", "queries.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 8 {
		t.Fatalf("docs/queries.md has %d queries, want at least 8", len(blocks))
	}
	ran := 0
	for i, m := range blocks {
		q := m[1]
		run, needRows := which(q)
		if !run {
			continue
		}
		ran++
		rows, err := s.Pool().Query(context.Background(), q)
		if err != nil {
			t.Errorf("query %d failed: %v\n%s", i+1, err, q)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("query %d failed: %v\n%s", i+1, err, q)
			continue
		}
		if n == 0 && needRows {
			t.Errorf("query %d returned no rows:\n%s", i+1, q)
		}
	}
	if ran == 0 {
		t.Error("no query of docs/queries.md was run")
	}
}

// metricsAddr is the address the process logged for its /metrics endpoint (started with --metrics-addr :0).
func (p *proc) metricsAddr(t *testing.T) string {
	t.Helper()
	p.waitLog(t, "serving /metrics", 10*time.Second)
	for _, l := range p.logLines() {
		if strings.Contains(l, "serving /metrics") {
			if m := listenLine.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		}
	}
	t.Fatal("metrics address not logged")
	return ""
}

// scrape reads a Prometheus text exposition into sample name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
