package format

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/store/chain"
)

// filtered483920 is mainnet block 483920 as filtered mode publishes it when a set matches the logs of its
// transactions 0 and 1 and a set with calls matches its transaction 2: the recorded block with its
// transactions as hashes (what eth_getBlockByNumber(N, false) answers), those receipts' logs (what
// eth_getLogs answers), and, with calls, transaction 2 with its receipt. edit, when set, changes the parts
// first.
func filtered483920(t testing.TB, calls bool, edit func(header map[string]any, logs, txs, receipts []map[string]any)) []byte {
	t.Helper()
	block := generic(t, rpcResult(t, filepath.Join(etlDir, "test_export_blocks_job/block_with_logs/web3_response.eth_getBlockByNumber_0x76250_true.json")))
	files, _ := filepath.Glob(filepath.Join(etlDir, "test_export_receipts_job/receipts_with_logs/web3_response.eth_getTransactionReceipt_*.json"))
	receipts := receiptsByIndex(t, files)
	full := block["transactions"].([]any)
	hashes := make([]any, len(full))
	for i, tx := range full {
		hashes[i] = tx.(map[string]any)["hash"]
	}
	block["transactions"] = hashes
	var logs, txs, rcs []map[string]any
	for _, i := range []int{0, 1} {
		for _, l := range generic(t, receipts[i])["logs"].([]any) {
			logs = append(logs, l.(map[string]any))
		}
	}
	if calls {
		txs = append(txs, full[2].(map[string]any))
		rcs = append(rcs, generic(t, receipts[2]))
	}
	if edit != nil {
		edit(block, logs, txs, rcs)
	}
	raw := func(ms []map[string]any) []json.RawMessage {
		if ms == nil {
			return nil
		}
		out := make([]json.RawMessage, len(ms))
		for i, m := range ms {
			out[i] = mustMarshal(t, m)
		}
		return out
	}
	b, err := EncodeFilteredBundle(mustMarshal(t, block), raw(logs), raw(txs), raw(rcs))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFilteredBundle: a filtered bundle decodes into exactly the rows of the full bundle of the same block
// that it keeps: the block (marked filtered, with all its transactions counted), the matched logs, the
// matched transaction with its receipt's fields, and nothing else (not the logs of that receipt).
func TestFilteredBundle(t *testing.T) {
	full := decodeOK(t, Bundle, BundleKey(483920), bundle483920(t))
	got := decodeOK(t, Bundle, BundleKey(483920), filtered483920(t, true, nil))

	want := chain.Rows{Blocks: []chain.Block{full.Blocks[0]}, Transactions: []chain.Transaction{full.Transactions[2]}}
	want.Blocks[0].Filtered = true
	for _, l := range full.Logs {
		if l.TransactionIndex <= 1 {
			want.Logs = append(want.Logs, l)
		}
	}
	if len(want.Logs) == 0 || want.Blocks[0].TransactionCount != 4 {
		t.Fatalf("the fixture changed: %d logs of transactions 0 and 1, %d transactions", len(want.Logs), want.Blocks[0].TransactionCount)
	}
	expectSame(t, "rows", got, want)

	// Logs alone: what a configuration without calls publishes.
	logsOnly := decodeOK(t, Bundle, nil, filtered483920(t, false, nil))
	want.Transactions = nil
	expectSame(t, "rows without calls", logsOnly, want)
}

// TestFilteredBundleFailures: every part of a filtered bundle is checked against its header, so that logs or
// transactions of another block (or of another version of the height) never pass for this one's.
func TestFilteredBundleFailures(t *testing.T) {
	otherHash := "0x" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		edit   func(h map[string]any, logs, txs, receipts []map[string]any)
		key    []byte
		reason string
		path   string
	}{
		{"a log of another block", func(_ map[string]any, logs, _, _ []map[string]any) { logs[0]["blockHash"] = otherHash },
			nil, ReasonBadField, "logs[0].blockHash"},
		{"a log of another height", func(_ map[string]any, logs, _, _ []map[string]any) { logs[1]["blockNumber"] = "0x1" },
			nil, ReasonBadField, "logs[1].blockNumber"},
		{"a log of a transaction not in the block", func(_ map[string]any, logs, _, _ []map[string]any) {
			logs[0]["transactionHash"] = otherHash
		}, nil, ReasonBadField, "logs[0].transactionHash"},
		{"a log past the block's transactions", func(_ map[string]any, logs, _, _ []map[string]any) {
			logs[0]["transactionIndex"] = "0x4"
		}, nil, ReasonBadField, "logs[0].transactionIndex"},
		{"a log of another of the block's transactions", func(_ map[string]any, logs, _, _ []map[string]any) {
			logs[0]["transactionIndex"] = "0x2"
		}, nil, ReasonBadField, "logs[0].transactionHash"},
		{"a log index twice", func(_ map[string]any, logs, _, _ []map[string]any) { logs[1]["logIndex"] = logs[0]["logIndex"] },
			nil, ReasonBadField, "logs[1].logIndex"},
		{"a log without its index", func(_ map[string]any, logs, _, _ []map[string]any) { delete(logs[0], "logIndex") },
			nil, ReasonBadField, "logs[0].logIndex"},
		{"a transaction at another index", func(_ map[string]any, _, txs, _ []map[string]any) { txs[0]["transactionIndex"] = "0x1" },
			nil, ReasonBadField, "transactions[0].transactionHash"},
		{"a receipt of another transaction", func(_ map[string]any, _, _, receipts []map[string]any) {
			receipts[0]["transactionHash"] = otherHash
		}, nil, ReasonReceiptsMismatch, "receipts[0].transactionHash"},
		{"a key that is not the height", nil, []byte("483921"), ReasonBadField, "key"},
		{"full transactions in the header", func(h map[string]any, _, txs, _ []map[string]any) {
			h["transactions"] = []any{txs[0]}
		}, nil, ReasonBadField, "header.transactions[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fail := Decode(Bundle, tc.key, filtered483920(t, true, tc.edit))
			if fail == nil {
				t.Fatal("decoded")
			}
			var fe *FieldError
			path := ""
			if errors.As(fail.Err, &fe) {
				path = fe.Path
			}
			if fail.Reason != tc.reason || path != tc.path {
				t.Fatalf("failure %s at %q (%v), want %s at %q", fail.Reason, path, fail.Err, tc.reason, tc.path)
			}
		})
	}
	// The top level: a block and a header, traces, receipts without transactions, no logs.
	for _, tc := range []struct{ name, value, path string }{
		{"block and header", `{"block":{},"header":{},"logs":[]}`, "header"},
		{"traces", `{"header":{},"logs":[],"traces":[]}`, "traces"},
		{"receipts alone", `{"header":{},"logs":[],"receipts":[]}`, "receipts"},
		{"no logs", `{"header":{}}`, "logs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fail := Decode(Bundle, nil, []byte(tc.value))
			var fe *FieldError
			if fail == nil || !errors.As(fail.Err, &fe) || fe.Path != tc.path {
				t.Fatalf("failure %v, want one at %q", fail, tc.path)
			}
		})
	}
}
