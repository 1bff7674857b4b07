package format

import (
	"math"
	"path/filepath"
	"reflect"
	"testing"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

var reasons = map[string]bool{ReasonEmpty: true, ReasonTooLarge: true, ReasonInvalidJSON: true, ReasonBadField: true,
	ReasonReceiptsMismatch: true, ReasonTracesMismatch: true, ReasonUnknownItemType: true}

// sameAsV1 holds unmarshalWire to encoding/json v1's semantics on value: both fail, or both decode into
// the same Go value of the type that newValue makes.
func sameAsV1(t *testing.T, value []byte, newValue func() any) {
	t.Helper()
	wire, v1 := newValue(), newValue()
	errWire, errV1 := unmarshalWire(value, wire), json.Unmarshal(value, v1)
	if (errWire == nil) != (errV1 == nil) {
		t.Fatalf("unmarshalWire: %v; encoding/json v1: %v", errWire, errV1)
	}
	if errWire == nil && !reflect.DeepEqual(wire, v1) {
		t.Fatalf("unmarshalWire decoded\n%+v\nencoding/json v1\n%+v", wire, v1)
	}
}

// wireTypes are the Go types the wire formats decode into, by ethereum-etl item type ("" is the bundle).
var wireTypes = map[string]func() any{
	"":                 func() any { return &bundleMsg{} },
	etlTypeBlock:       func() any { return &etlBlock[etlWithdrawal]{} },
	etlTypeTransaction: func() any { return &etlTx{} },
	etlTypeLog:         func() any { return &etlLog{} },
	etlTypeToken:       func() any { return &etlToken{} },
	etlTypeTrace:       func() any { return &etlTrace{} },
	etlTypeContract:    func() any { return &etlContract{} },
}

// checkDecoded holds Decode to its contract on any input: no panic (a panic is an internal_error failure), a
// known reason with an explanation, no rows with a failure, and rows that Postgres accepts.
func checkDecoded(t *testing.T, f Format, key, value []byte) {
	if f == Bundle {
		sameAsV1(t, value, wireTypes[""])
		sameAsWire(t, value)
	} else {
		typ, err := itemType(value)
		if fast, ok := fastItemType(value); ok && (err != nil || fast != typ) {
			t.Fatalf("fastItemType read type %q, itemType %q (%v)", fast, typ, err)
		}
		if err == nil && wireTypes[typ] != nil && typ != "" {
			sameAsV1(t, value, wireTypes[typ])
			sameAsWireETL(t, value)
		}
	}
	rows, fail := Decode(f, key, value)
	if fail != nil {
		if !reasons[fail.Reason] || fail.Err == nil {
			t.Fatalf("failure %q: %v", fail.Reason, fail.Err)
		}
		if rows.Len() != 0 {
			t.Fatalf("failure %q with %d rows", fail.Reason, rows.Len())
		}
		return
	}
	checkRows(t, &rows)
	if f == Bundle && len(rows.Tombstones) > 0 {
		// A block number as the key and no value: a tombstone of that height, and nothing else.
		if len(value) != 0 || rows.Len() != 0 || len(rows.Tombstones) != 1 {
			t.Fatalf("tombstone of %q with a %d-byte value: %d rows, tombstones %v", key, len(value), rows.Len(), rows.Tombstones)
		}
		return
	}
	if f == Bundle {
		// A full bundle holds all of its block's transactions, a filtered one (a header) some, in order.
		if len(rows.Blocks) != 1 || !rows.Blocks[0].Filtered && int(rows.Blocks[0].TransactionCount) != len(rows.Transactions) {
			t.Fatalf("bundle decoded into %d blocks and %d transactions", len(rows.Blocks), len(rows.Transactions))
		}
		n, count := rows.Blocks[0].Number, int(rows.Blocks[0].TransactionCount)
		logIndexes := map[int32]bool{}
		last := -1
		for i, tx := range rows.Transactions {
			at := int(tx.TransactionIndex)
			if tx.BlockNumber != n || at >= count || at <= last || !rows.Blocks[0].Filtered && at != i {
				t.Fatalf("transaction %d of block %d is at %d/%d", i, n, tx.BlockNumber, tx.TransactionIndex)
			}
			last = at
		}
		for _, l := range rows.Logs {
			if l.BlockNumber != n || logIndexes[l.LogIndex] || int(l.TransactionIndex) >= count {
				t.Fatalf("log %d of block %d: block %d, transaction %d", l.LogIndex, n, l.BlockNumber, l.TransactionIndex)
			}
			logIndexes[l.LogIndex] = true
		}
	} else if rows.Len() > 0 && len(rows.Blocks)+len(rows.Transactions)+len(rows.Logs) != 1 {
		t.Fatalf("an ethereum-etl item decoded into %d blocks, %d transactions, %d logs", len(rows.Blocks),
			len(rows.Transactions), len(rows.Logs))
	}
}

// checkRows checks what the schema requires: NOT NULL columns set, integers within their column types,
// hashes and addresses of their size, timestamps Postgres can store.
func checkRows(t *testing.T, r *chain.Rows) {
	t.Helper()
	size := func(what string, b []byte, n int, null bool) {
		if b == nil && null {
			return
		}
		if b == nil || n > 0 && len(b) != n {
			t.Fatalf("%s: %d bytes (nil %v)", what, len(b), b == nil)
		}
	}
	i64 := func(what string, v uint64) {
		if v > math.MaxInt64 {
			t.Fatalf("%s = %d", what, v)
		}
	}
	for _, b := range r.Blocks {
		i64("block number", b.Number)
		i64("gas used", b.GasUsed)
		i64("gas limit", b.GasLimit)
		size("block hash", b.Hash, 32, false)
		size("parent hash", b.ParentHash, 32, false)
		size("miner", b.Miner, 20, false)
		if b.Timestamp.Unix() > maxUnixSeconds || b.Timestamp.Unix() < 0 || b.TransactionCount < 0 {
			t.Fatalf("block %+v", b)
		}
	}
	for _, w := range r.Withdrawals {
		i64("withdrawal index", w.Index)
		i64("validator index", w.ValidatorIndex)
		size("withdrawal address", w.Address, 20, false)
		if w.AmountGwei == nil || w.AmountGwei.Sign() < 0 || w.AmountGwei.BitLen() > 256 {
			t.Fatalf("withdrawal amount %v", w.AmountGwei)
		}
	}
	for _, tx := range r.Transactions {
		i64("transaction block", tx.BlockNumber)
		i64("gas", tx.Gas)
		i64("nonce", tx.Nonce)
		size("transaction hash", tx.Hash, 32, false)
		size("transaction block hash", tx.BlockHash, 32, false)
		size("from", tx.FromAddress, 20, false)
		size("to", tx.ToAddress, 20, true)
		size("contract", tx.ContractAddress, 20, true)
		size("input", tx.Input, 0, false)
		if tx.Value == nil || tx.Value.Sign() < 0 || tx.Value.BitLen() > 256 || tx.TransactionIndex < 0 || tx.Type < 0 ||
			tx.Status != nil && *tx.Status != 0 && *tx.Status != 1 || tx.GasUsed != nil && *tx.GasUsed < 0 ||
			tx.BlockTimestamp.Unix() > maxUnixSeconds {
			t.Fatalf("transaction %+v", tx)
		}
	}
	for _, l := range r.Logs {
		i64("log block", l.BlockNumber)
		size("log transaction", l.TransactionHash, 32, false)
		size("log address", l.Address, 20, false)
		size("log data", l.Data, 0, false)
		if len(l.Topics) > 4 || l.LogIndex < 0 || l.TransactionIndex < 0 || l.BlockTimestamp.Unix() > maxUnixSeconds {
			t.Fatalf("log %+v", l)
		}
		for _, tp := range l.Topics {
			size("topic", tp, 32, false)
		}
	}
}

func FuzzDecodeBundle(f *testing.F) {
	f.Add([]byte("483920"), bundle483920(f))
	f.Add([]byte(nil), bundle483920(f))
	f.Add([]byte("483920"), filtered483920(f, true, nil))
	f.Add([]byte(nil), filtered483920(f, false, nil))
	f.Add([]byte("1"), []byte(`{"block":{"number":"0x1","hash":"0x905befae7e53cf8e68e667f3b8b43c7baf6785c5df04cc350d919ede888420a3",`+
		`"parentHash":"0x876370be1a166be5dc6f0daf18b737a78f1145053529b57ee5269c05e34a5fc6","timestamp":"0xa",`+
		`"miner":"0x0000000000000000000000000000000000000000","gasUsed":"0x0","gasLimit":"0x47e7c4","transactions":[],`+
		`"withdrawals":[]},"receipts":[]}`))
	bundle, _ := gethTypesBundle(f)
	f.Add([]byte("22500000"), bundle)
	dir := filepath.Join(etlDir, "test_export_blocks_job/block_without_transactions")
	genesis, _ := EncodeBundle(rpcResult(f, filepath.Join(dir, "web3_response.eth_getBlockByNumber_0x0_true.json")), []byte("[]"), nil)
	f.Add([]byte("0"), genesis)
	d := filepath.Join(etlDir, "test_stream/blocks_1755634_1755635")
	receipts, _ := filepath.Glob(filepath.Join(d, "web3_response.eth_getTransactionReceipt_*.json"))
	f.Add([]byte("1755635"), encodeBundle(f, rpcResult(f, filepath.Join(d, "web3_response.eth_getBlockByNumber_0x1ac9f3_true.json")),
		receiptsByIndex(f, receipts)))
	f.Add([]byte(""), []byte(`{"block":{"transactions":["0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8"]},"receipts":[]}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		checkDecoded(t, Bundle, key, value)
	})
}

func FuzzDecodeETL(f *testing.F) {
	for _, item := range etlItems17173049(f) {
		f.Add(item)
	}
	for _, file := range []string{"expected_blocks.json", "expected_transactions.json", "expected_logs.json", "expected_token_transfers.json"} {
		for _, item := range readLines(f, filepath.Join(etlDir, "test_stream/blocks_1755634_1755635", file)) {
			f.Add(item)
		}
	}
	f.Add([]byte(`{"type": "log", "topics": [null], "log_index": 1e3}`))
	f.Add([]byte(`{"type":"transaction","type":"block","value":115792089237316195423570985008687907853269984665640564039457584007913129639936}`))
	f.Add([]byte(`{"log_index":1,"TYPE":"block","type":"log","Type":null,"topics":["0x00"]}`))
	f.Add([]byte(`{"hash":"0x00","type":"transaction","type":null}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		checkDecoded(t, EthereumETL, nil, value)
	})
}
