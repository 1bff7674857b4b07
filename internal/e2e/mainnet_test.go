package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/store"
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

// ingestMainnet loads the real mainnet fixtures through the real binary and returns the store.
func ingestMainnet(t *testing.T) (*store.Store, store.Config) {
	t.Helper()
	s, cfg := migratedStore(t)
	b := newBroker(t, mainnetTopics())
	publishMainnet(t, b)
	p := start(t, runArgs(cfg, b.Addr(), "mainnet", mainnetTopicArgs()...)...)
	waitCaughtUp(t, s, b, "mainnet", 60*time.Second, append(etlTopics, "bundles")...)
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink exited with %v; logs:\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	return s, cfg
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
		rows, err := store.ReadRows(ctx, s.Pool(), fixtures.Block17173049, fixtures.Block17173049)
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
		rows, err := store.ReadRows(ctx, s.Pool(), fixtures.Block483920, fixtures.Block483920)
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

func checkETLBlock(t *testing.T, rows store.Rows, items map[string][][]byte) {
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
		var tx *store.Transaction
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

func checkBundle483920(t *testing.T, rows store.Rows, root string) {
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
		var tx *store.Transaction
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
// pipeline health, return rows on this data.
func checkDocsQueries(t *testing.T, s *store.Store) {
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
	for i, m := range blocks {
		q := m[1]
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
		if n == 0 && !strings.Contains(q, "dead_letters") {
			t.Errorf("query %d returned no rows on real data:\n%s", i+1, q)
		}
	}
}
