package format

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// receiptsByIndex loads recorded eth_getTransactionReceipt responses and orders their results by
// transactionIndex, which is how eth_getBlockReceipts returns them.
func receiptsByIndex(t testing.TB, files []string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for _, f := range files {
		out = append(out, rpcResult(t, f))
	}
	slices.SortFunc(out, func(a, b json.RawMessage) int {
		return quantityBig(t, generic(t, a)["transactionIndex"]).Cmp(quantityBig(t, generic(t, b)["transactionIndex"]))
	})
	return out
}

func encodeBundle(t testing.TB, block json.RawMessage, receipts []json.RawMessage) []byte {
	t.Helper()
	if receipts == nil {
		receipts = []json.RawMessage{}
	}
	b, err := EncodeBundle(block, mustMarshal(t, receipts), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bundle483920 is mainnet block 483920 (2015) as a bundle: the recorded eth_getBlockByNumber result and its
// 4 recorded receipts, pre-Byzantium (a state root, "status": null).
func bundle483920(t testing.TB) []byte {
	block := rpcResult(t, filepath.Join(etlDir, "test_export_blocks_job/block_with_logs/web3_response.eth_getBlockByNumber_0x76250_true.json"))
	files, _ := filepath.Glob(filepath.Join(etlDir, "test_export_receipts_job/receipts_with_logs/web3_response.eth_getTransactionReceipt_*.json"))
	if len(files) != 4 {
		t.Fatalf("%d receipt files", len(files))
	}
	return encodeBundle(t, block, receiptsByIndex(t, files))
}

// expectBlockCSV is a block row from ethereum-etl's expected_blocks.csv; mixHash, which ethereum-etl does not
// export, comes from the raw response.
func expectBlockCSV(t testing.TB, r map[string]string, rawBlock json.RawMessage) chain.Block {
	return chain.Block{
		Number:           decU64(t, r["number"]),
		Hash:             hexOrNil(t, r["hash"]),
		ParentHash:       hexOrNil(t, r["parent_hash"]),
		Timestamp:        unixTime(t, r["timestamp"]),
		Miner:            hexOrNil(t, r["miner"]),
		GasUsed:          decU64(t, r["gas_used"]),
		GasLimit:         decU64(t, r["gas_limit"]),
		BaseFeePerGas:    decBig(t, r["base_fee_per_gas"]),
		TransactionCount: int32(atoi(t, r["transaction_count"])),
		Size:             decI64p(t, r["size"]),
		Nonce:            hexOrNil(t, r["nonce"]),
		Difficulty:       decBig(t, r["difficulty"]),
		TotalDifficulty:  decBig(t, r["total_difficulty"]),
		ExtraData:        hexOrNil(t, r["extra_data"]),
		MixHash:          hexOrNil(t, generic(t, rawBlock)["mixHash"]),
		Sha3Uncles:       hexOrNil(t, r["sha3_uncles"]),
		LogsBloom:        hexOrNil(t, r["logs_bloom"]),
		TransactionsRoot: hexOrNil(t, r["transactions_root"]),
		StateRoot:        hexOrNil(t, r["state_root"]),
		ReceiptsRoot:     hexOrNil(t, r["receipts_root"]),
		WithdrawalsRoot:  hexOrNil(t, r["withdrawals_root"]),
	}
}

// TestBundle483920 checks every column against ethereum-etl's expected exports of the same block.
func TestBundle483920(t *testing.T) {
	rows := decodeOK(t, Bundle, BundleKey(483920), bundle483920(t))

	blockDir := filepath.Join(etlDir, "test_export_blocks_job/block_with_logs")
	receiptDir := filepath.Join(etlDir, "test_export_receipts_job/receipts_with_logs")
	rawBlock := rpcResult(t, filepath.Join(blockDir, "web3_response.eth_getBlockByNumber_0x76250_true.json"))
	blocks := readCSV(t, filepath.Join(blockDir, "expected_blocks.csv"))
	want := chain.Rows{Blocks: []chain.Block{expectBlockCSV(t, blocks[0], rawBlock)}}

	receipts := map[string]map[string]string{}
	for _, r := range readCSV(t, filepath.Join(receiptDir, "expected_receipts.csv")) {
		receipts[r["transaction_hash"]] = r
	}
	for _, r := range readCSV(t, filepath.Join(blockDir, "expected_transactions.csv")) {
		rc := receipts[r["hash"]]
		if rc == nil {
			t.Fatalf("no expected receipt for %s", r["hash"])
		}
		want.Transactions = append(want.Transactions, chain.Transaction{
			BlockNumber:          decU64(t, r["block_number"]),
			TransactionIndex:     int32(atoi(t, r["transaction_index"])),
			Hash:                 hexOrNil(t, r["hash"]),
			BlockHash:            hexOrNil(t, r["block_hash"]),
			BlockTimestamp:       unixTime(t, r["block_timestamp"]),
			FromAddress:          hexOrNil(t, r["from_address"]),
			ToAddress:            hexOrNil(t, r["to_address"]),
			Value:                decBig(t, r["value"]),
			Gas:                  decU64(t, r["gas"]),
			GasPrice:             decBig(t, r["gas_price"]),
			MaxFeePerGas:         decBig(t, r["max_fee_per_gas"]),
			MaxPriorityFeePerGas: decBig(t, r["max_priority_fee_per_gas"]),
			Type:                 int16(atoi(t, r["transaction_type"])),
			Nonce:                decU64(t, r["nonce"]),
			Input:                hexOrNil(t, r["input"]),
			Status:               decI16p(t, rc["status"]),
			Root:                 hexOrNil(t, rc["root"]),
			GasUsed:              decI64p(t, rc["gas_used"]),
			CumulativeGasUsed:    decI64p(t, rc["cumulative_gas_used"]),
			EffectiveGasPrice:    decBig(t, rc["effective_gas_price"]),
			ContractAddress:      hexOrNil(t, rc["contract_address"]),
		})
	}
	for _, line := range readLines(t, filepath.Join(receiptDir, "expected_logs.json")) {
		m := generic(t, line)
		want.Logs = append(want.Logs, chain.Log{
			BlockNumber:      decU64(t, m["block_number"]),
			LogIndex:         int32(decU64(t, m["log_index"])),
			TransactionHash:  hexOrNil(t, m["transaction_hash"]),
			TransactionIndex: int32(decU64(t, m["transaction_index"])),
			BlockTimestamp:   want.Blocks[0].Timestamp,
			Address:          hexOrNil(t, m["address"]),
			Topics:           hexList(t, m["topics"]),
			Data:             hexOrNil(t, m["data"]),
			BlockHash:        hexOrNil(t, m["block_hash"]),
		})
	}
	expectSame(t, "rows", rows, want)

	// The fixture's point: pre-Byzantium receipts.
	if len(rows.Transactions) != 4 || len(rows.Logs) != 2 {
		t.Fatalf("%d transactions, %d logs", len(rows.Transactions), len(rows.Logs))
	}
	for _, tx := range rows.Transactions {
		if tx.Status != nil || len(tx.Root) != 32 {
			t.Errorf("transaction %d: status %v, root %x", tx.TransactionIndex, tx.Status, tx.Root)
		}
	}
	if rows.Blocks[0].WithdrawalCount != nil || rows.Withdrawals != nil {
		t.Errorf("a 2015 block has withdrawals: %v", rows.Blocks[0].WithdrawalCount)
	}
}

// TestBundleReceiptsAnyOrder: receipts are matched by transactionIndex, not by position.
func TestBundleReceiptsAnyOrder(t *testing.T) {
	inOrder := decodeOK(t, Bundle, nil, bundle483920(t))
	var msg struct {
		Block    json.RawMessage
		Receipts []json.RawMessage
	}
	if err := json.Unmarshal(bundle483920(t), &msg); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(msg.Receipts)
	reversed := decodeOK(t, Bundle, nil, encodeBundle(t, msg.Block, msg.Receipts))
	expectSame(t, "rows", reversed, inOrder)
}

// TestBundleGenesis: block 0 has no transactions, so its receipts are [].
func TestBundleGenesis(t *testing.T) {
	dir := filepath.Join(etlDir, "test_export_blocks_job/block_without_transactions")
	raw := rpcResult(t, filepath.Join(dir, "web3_response.eth_getBlockByNumber_0x0_true.json"))
	rows := decodeOK(t, Bundle, BundleKey(0), encodeBundle(t, raw, nil))
	want := chain.Rows{
		Blocks:       []chain.Block{expectBlockCSV(t, readCSV(t, filepath.Join(dir, "expected_blocks.csv"))[0], raw)},
		Transactions: []chain.Transaction{},
		Logs:         []chain.Log{},
	}
	expectSame(t, "rows", rows, want)
}

// TestBundleMatchesETL decodes the same 2016 blocks from the raw RPC responses (as bundles) and from
// ethereum-etl's items: both formats must give the same rows, but for the mix hash ethereum-etl lacks.
func TestBundleMatchesETL(t *testing.T) {
	dir := filepath.Join(etlDir, "test_stream/blocks_1755634_1755635")
	var fromETL chain.Rows
	for _, f := range []string{"expected_blocks.json", "expected_transactions.json", "expected_logs.json"} {
		for _, item := range readLines(t, filepath.Join(dir, f)) {
			rows := decodeOK(t, EthereumETL, nil, item)
			fromETL.Add(&rows)
		}
	}
	receiptFiles, _ := filepath.Glob(filepath.Join(dir, "web3_response.eth_getTransactionReceipt_*.json"))
	for _, n := range []struct {
		number   uint64
		hex      string
		receipts []string
	}{{1755634, "0x1ac9f2", nil}, {1755635, "0x1ac9f3", receiptFiles}} {
		raw := rpcResult(t, filepath.Join(dir, "web3_response.eth_getBlockByNumber_"+n.hex+"_true.json"))
		got := decodeOK(t, Bundle, BundleKey(n.number), encodeBundle(t, raw, receiptsByIndex(t, n.receipts)))
		if len(got.Blocks[0].MixHash) != 32 {
			t.Errorf("block %d: mix hash %x", n.number, got.Blocks[0].MixHash)
		}
		got.Blocks[0].MixHash = nil
		want := chain.Rows{Transactions: []chain.Transaction{}, Logs: []chain.Log{}}
		for _, b := range fromETL.Blocks {
			if b.Number == n.number {
				want.Blocks = append(want.Blocks, b)
			}
		}
		for _, tx := range fromETL.Transactions {
			if tx.BlockNumber == n.number {
				want.Transactions = append(want.Transactions, tx)
			}
		}
		for _, l := range fromETL.Logs {
			if l.BlockNumber == n.number {
				want.Logs = append(want.Logs, l)
			}
		}
		slices.SortFunc(want.Transactions, func(a, b chain.Transaction) int { return int(a.TransactionIndex - b.TransactionIndex) })
		slices.SortFunc(want.Logs, func(a, b chain.Log) int { return int(a.LogIndex - b.LogIndex) })
		expectSame(t, "block "+n.hex, got, want)
	}
	if len(receiptFiles) != 2 {
		t.Errorf("%d receipts", len(receiptFiles))
	}
}

// TestBundleFromETLItems: a bundle rebuilt from the items of block 17173049 decodes into exactly the rows of
// the items themselves.
func TestBundleFromETLItems(t *testing.T) {
	items := etlItems17173049(t)
	// Skipped items and any order are fine.
	shuffled := slices.Clone(items)
	slices.Reverse(shuffled)
	shuffled = append(shuffled, readLines(t, filepath.Join(block17173049Dir, "expected_token_transfers.json"))[:3]...)
	bundle, err := BundleFromETLItems(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeOK(t, Bundle, BundleKey(17173049), bundle)
	var want chain.Rows
	for _, item := range items {
		rows := decodeOK(t, EthereumETL, nil, item)
		want.Add(&rows)
	}
	expectSame(t, "rows", got, want)

	// It must look like what a node sends, so that the benchmark measures the real thing.
	var msg struct {
		Block struct {
			Transactions []map[string]any `json:"transactions"`
		} `json:"block"`
		Receipts []map[string]any `json:"receipts"`
	}
	if err := json.Unmarshal(bundle, &msg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hash", "from", "gas", "input", "nonce", "value", "type", "v", "r", "s", "transactionIndex"} {
		if _, ok := msg.Block.Transactions[0][k]; !ok {
			t.Errorf("rebuilt transaction has no %q", k)
		}
	}
	for _, k := range []string{"transactionHash", "status", "gasUsed", "cumulativeGasUsed", "logsBloom", "logs", "effectiveGasPrice"} {
		if _, ok := msg.Receipts[0][k]; !ok {
			t.Errorf("rebuilt receipt has no %q", k)
		}
	}
	t.Logf("bundle of block 17173049: %d bytes", len(bundle))

	if _, err := BundleFromETLItems(items[1:]); err == nil || !strings.Contains(err.Error(), "exactly one block") {
		t.Errorf("without the block item: %v", err)
	}
	if _, err := BundleFromETLItems(items[:100]); err == nil || !strings.Contains(err.Error(), "transaction_count 116") {
		t.Errorf("with transactions missing: %v", err)
	}
	if _, err := BundleFromETLItems([][]byte{[]byte(`{"type": "block"`)}); err == nil || !strings.Contains(err.Error(), "invalid_json") {
		t.Errorf("with a broken item: %v", err)
	}
}

func TestEncodeBundle(t *testing.T) {
	// The parts are written as they are, whitespace included.
	b, err := EncodeBundle(json.RawMessage(" {\"number\": \"0x1\"}\n"), json.RawMessage("[ ]"), nil)
	if err != nil || string(b) != "{\"block\": {\"number\": \"0x1\"}\n,\"receipts\":[ ]}" {
		t.Errorf("EncodeBundle = %s, %v", b, err)
	}
	for _, c := range []struct{ block, receipts string }{
		{`[]`, `[]`}, {`{}`, `{}`}, {``, `[]`}, {`{}`, ``},
	} {
		if b, err := EncodeBundle(json.RawMessage(c.block), json.RawMessage(c.receipts), nil); err == nil {
			t.Errorf("EncodeBundle(%q, %q) = %s, want an error", c.block, c.receipts, b)
		}
	}
	// Invalid JSON of the right shape is written as it is, and the decoding that producers run on what they
	// publish refuses it.
	for _, c := range []struct{ block, receipts string }{{`{"a":}`, `[]`}, {`{}`, `[1,]`}} {
		b, err := EncodeBundle(json.RawMessage(c.block), json.RawMessage(c.receipts), nil)
		if err != nil {
			t.Fatalf("EncodeBundle(%q, %q): %v", c.block, c.receipts, err)
		}
		if _, fail := Decode(Bundle, nil, b); fail == nil || fail.Reason != ReasonInvalidJSON {
			t.Errorf("Decode of %s: %v, want invalid_json", b, fail)
		}
	}
	if k := BundleKey(17173049); !bytes.Equal(k, []byte("17173049")) {
		t.Errorf("BundleKey = %q", k)
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Format{"bundle": Bundle, "ethereum-etl": EthereumETL, " Bundle ": Bundle, "bundle-merge": BundleMerge} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "etl", "json", "bundles"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", in, got)
		}
	}
	if Bundle.Mode() != chain.ReplaceBlocks || EthereumETL.Mode() != chain.ReplaceRows || BundleMerge.Mode() != chain.ReplaceRows {
		t.Error("wrong replacement modes")
	}
}

// TestBundleTombstone: a bundle topic's message with a height key and no value removes that height (the chain
// became shorter than what was published); it decodes to a tombstone, not to rows or a failure.
func TestBundleTombstone(t *testing.T) {
	for _, f := range []Format{Bundle, BundleMerge} {
		for _, value := range [][]byte{nil, {}} {
			rows, failure := Decode(f, BundleKey(17173049), value)
			if failure != nil {
				t.Fatalf("%s tombstone: %v", f, failure.Err)
			}
			if rows.Len() != 0 || len(rows.Tombstones) != 1 || rows.Tombstones[0] != 17173049 {
				t.Fatalf("%s tombstone decoded to %+v", f, rows)
			}
		}
	}
	// ethereum-etl items have no key to say which height: an empty one stays a dead letter.
	if _, failure := Decode(EthereumETL, []byte("5"), nil); failure == nil || failure.Reason != ReasonEmpty {
		t.Fatalf("empty ethereum-etl item: %v", failure)
	}
}
