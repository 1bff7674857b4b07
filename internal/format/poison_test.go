package format

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// edit parses a message generically, lets f change it, and encodes it again.
func edit(t testing.TB, msg []byte, f func(m map[string]any)) []byte {
	t.Helper()
	m := generic(t, msg)
	f(m)
	return mustMarshal(t, m)
}

func obj(v any) map[string]any { return v.(map[string]any) }
func list(v any) []any         { return v.([]any) }

const (
	hex300 = "0x" + "fff" + "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" // 300 bits
	// 2^256, one above the largest 256-bit number.
	dec2p256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936"
)

// TestPoison: every message that cannot be stored fails with a stable reason and an error that says where.
func TestPoison(t *testing.T) {
	good := bundle483920(t)
	etlTx := readLines(t, filepath.Join(block17173049Dir, "expected_transactions.json"))[0]
	etlBlock := readLines(t, filepath.Join(block17173049Dir, "expected_blocks.json"))[0]
	etlLog := readLines(t, filepath.Join(block17173049Dir, "expected_logs.json"))[0]
	block := func(f func(b map[string]any)) []byte {
		return edit(t, good, func(m map[string]any) { f(obj(m["block"])) })
	}
	tx := func(i int, f func(tx map[string]any)) []byte {
		return block(func(b map[string]any) { f(obj(list(b["transactions"])[i])) })
	}
	receipts := func(f func(r []any) []any) []byte {
		return edit(t, good, func(m map[string]any) { m["receipts"] = f(list(m["receipts"])) })
	}
	etlEdit := func(item []byte, f func(m map[string]any)) []byte { return edit(t, item, f) }
	// rawSet replaces a field's value in the item's text, for values that a map cannot hold (big numbers).
	rawSet := func(item []byte, field, value string) []byte {
		m := generic(t, item)
		old := mustMarshal(t, m[field])
		out := bytes.Replace(item, []byte(`"`+field+`": `+string(old)), []byte(`"`+field+`": `+value), 1)
		if bytes.Equal(out, item) {
			t.Fatalf("%s not replaced", field)
		}
		return out
	}

	for _, c := range []struct {
		name   string
		f      Format
		key    string
		value  []byte
		reason string
		errHas string // the error must contain this, typically the field's path
	}{
		{"empty bundle without a key", Bundle, "", nil, ReasonEmpty, "no value"},
		{"a tombstone whose key is no height", Bundle, "latest", nil, ReasonEmpty, "is not a block height"},
		{"empty etl", EthereumETL, "", []byte{}, ReasonEmpty, "no value"},
		{"truncated", Bundle, "", good[:len(good)/2], ReasonInvalidJSON, "invalid JSON at byte"},
		{"not json", EthereumETL, "", []byte("block 17173049"), ReasonInvalidJSON, "invalid JSON at byte"},
		{"trailing garbage", Bundle, "", append(bytes.Clone(good), '}'), ReasonInvalidJSON, "invalid JSON"},
		{"etl trailing garbage", EthereumETL, "", append(bytes.Clone(etlTx), 'x'), ReasonInvalidJSON, "invalid JSON"},
		{"skipped etl item, broken", EthereumETL, "", []byte(`{"type": "token_transfer", "value": }`), ReasonInvalidJSON, "invalid JSON"},
		{"array", Bundle, "", []byte(`[1]`), ReasonBadField, "invalid value (array), want an object"},
		{"null", Bundle, "", []byte(`null`), ReasonBadField, "block: missing required field"},
		{"no receipts", Bundle, "", edit(t, good, func(m map[string]any) { delete(m, "receipts") }), ReasonBadField,
			"receipts: missing required field"},
		{"number as JSON number", Bundle, "", block(func(b map[string]any) { b["number"] = 483920 }), ReasonBadField,
			"block.number: invalid value (non-string), want a 0x-prefixed hex quantity of at most 64 bits"},
		{"gas as JSON number", Bundle, "", tx(2, func(tx map[string]any) { tx["gas"] = json.Number("90000") }), ReasonBadField,
			"block.transactions[2].gas: invalid value (non-string)"},
		{"bad hex quantity", Bundle, "", tx(1, func(tx map[string]any) { tx["nonce"] = "0xzz" }), ReasonBadField,
			"block.transactions[1].nonce: invalid value (invalid hex string)"},
		{"hex without prefix", Bundle, "", block(func(b map[string]any) { b["gasUsed"] = "2315a" }), ReasonBadField,
			"block.gasUsed: invalid value (hex string without 0x prefix)"},
		{"leading zero", Bundle, "", block(func(b map[string]any) { b["timestamp"] = "0x05638c858" }), ReasonBadField,
			"block.timestamp: invalid value (hex number with leading zero digits)"},
		{"short hash", Bundle, "", tx(3, func(tx map[string]any) { tx["hash"] = "0x1234" }), ReasonBadField,
			"block.transactions[3].hash: invalid value (hex string has length 4, want 64 for common.Hash)"},
		{"bad hex data", Bundle, "", tx(0, func(tx map[string]any) { tx["input"] = "0xabc" }), ReasonBadField,
			"block.transactions[0].input: invalid value (hex string of odd length)"},
		{"300-bit value", Bundle, "", tx(0, func(tx map[string]any) { tx["value"] = hex300 }), ReasonBadField,
			"block.transactions[0].value: invalid value (hex number > 256 bits)"},
		{"65-bit gas", Bundle, "", tx(0, func(tx map[string]any) { tx["gas"] = "0x10000000000000000" }), ReasonBadField,
			"block.transactions[0].gas: invalid value (hex number > 64 bits)"},
		{"gas above bigint", Bundle, "", tx(0, func(tx map[string]any) { tx["gas"] = "0x8000000000000000" }), ReasonBadField,
			"block.transactions[0].gas: out of range: above 9223372036854775807"},
		{"number above bigint", Bundle, "", block(func(b map[string]any) { b["number"] = "0xffffffffffffffff" }), ReasonBadField,
			"block.number: out of range"},
		{"timestamp after year 294276", Bundle, "", block(func(b map[string]any) { b["timestamp"] = "0x7fffffffffffffff" }),
			ReasonBadField, "block.timestamp: out of range: after 294276-12-31T23:59:59Z"},
		{"type above smallint", Bundle, "", tx(0, func(tx map[string]any) { tx["type"] = "0x8000" }), ReasonBadField,
			"block.transactions[0].type: out of range"},
		{"transaction index above integer", Bundle, "", receipts(func(r []any) []any {
			obj(r[0])["transactionIndex"] = "0x80000000"
			return r
		}), ReasonBadField, "receipts[0].transactionIndex: out of range: above 2147483647"},
		{"status 2", Bundle, "", receipts(func(r []any) []any { obj(r[1])["status"] = "0x2"; return r }), ReasonBadField,
			"receipts[1].status: out of range: a receipt status is 0 or 1"},
		{"no block hash", Bundle, "", block(func(b map[string]any) { delete(b, "hash") }), ReasonBadField,
			"block.hash: missing required field"},
		{"null miner", Bundle, "", block(func(b map[string]any) { b["miner"] = nil }), ReasonBadField,
			"block.miner: missing required field"},
		{"no transactions", Bundle, "", block(func(b map[string]any) { delete(b, "transactions") }), ReasonBadField,
			"block.transactions: missing required field"},
		{"transaction hashes only", Bundle, "", block(func(b map[string]any) {
			b["transactions"] = []any{"0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8"}
		}), ReasonBadField, "block.transactions[0]: is a transaction hash"},
		{"no sender", Bundle, "", tx(2, func(tx map[string]any) { delete(tx, "from") }), ReasonBadField,
			"block.transactions[2].from: missing required field"},
		{"no input", Bundle, "", tx(1, func(tx map[string]any) { delete(tx, "input") }), ReasonBadField,
			"block.transactions[1].input: missing required field"},
		{"null input", Bundle, "", tx(1, func(tx map[string]any) { tx["input"] = nil }), ReasonBadField,
			"block.transactions[1].input: missing required field"},
		{"transaction of another block", Bundle, "", tx(1, func(tx map[string]any) { tx["blockNumber"] = "0x1" }),
			ReasonBadField, "block.transactions[1].blockNumber: 1 is not block.number 483920"},
		{"transaction out of place", Bundle, "", tx(1, func(tx map[string]any) { tx["transactionIndex"] = "0x2" }),
			ReasonBadField, "block.transactions[1].transactionIndex: 2 is not the transaction's position 1"},
		{"receipt without gasUsed", Bundle, "", receipts(func(r []any) []any { delete(obj(r[3]), "gasUsed"); return r }),
			ReasonBadField, "receipts[3].gasUsed: missing required field"},
		{"receipt without logs", Bundle, "", receipts(func(r []any) []any { delete(obj(r[3]), "logs"); return r }),
			ReasonBadField, "receipts[3].logs: missing required field"},
		{"log without address", Bundle, "", receipts(func(r []any) []any {
			delete(obj(list(obj(r[1])["logs"])[0]), "address")
			return r
		}), ReasonBadField, "receipts[1].logs[0].address: missing required field"},
		{"bad topic", Bundle, "", receipts(func(r []any) []any {
			list(obj(list(obj(r[1])["logs"])[0])["topics"])[2] = "0x00"
			return r
		}), ReasonBadField, "receipts[1].logs[0].topics: invalid value (hex string has length 2, want 64 for common.Hash)"},
		{"five topics", Bundle, "", receipts(func(r []any) []any {
			l := obj(list(obj(r[1])["logs"])[0])
			l["topics"] = append(list(l["topics"]), list(l["topics"])[0], list(l["topics"])[0])
			return r
		}), ReasonBadField, "receipts[1].logs[0].topics: has more than 4 topics, which the EVM cannot emit"},
		{"duplicate log index", Bundle, "", receipts(func(r []any) []any {
			obj(list(obj(r[1])["logs"])[0])["logIndex"] = "0x0"
			return r
		}), ReasonBadField, "receipts[1].logs[0].logIndex: 0 appears twice in the block"},
		{"receipt missing", Bundle, "", receipts(func(r []any) []any { return r[:3] }), ReasonReceiptsMismatch,
			"block has 4 transactions but the bundle has 3 receipts"},
		{"receipt too many", Bundle, "", receipts(func(r []any) []any { return append(r, r[0]) }), ReasonReceiptsMismatch,
			"block has 4 transactions but the bundle has 5 receipts"},
		{"receipt of another transaction", Bundle, "", receipts(func(r []any) []any {
			obj(r[2])["transactionHash"] = obj(r[3])["transactionHash"]
			return r
		}), ReasonReceiptsMismatch, "receipts[2].transactionHash: 0x05287a561f218418892ab053adfb3d919860988b19458c570c5c30f51c146f02 is not block.transactions[2].hash"},
		{"two receipts for one transaction", Bundle, "", receipts(func(r []any) []any {
			r[3] = r[2]
			return r
		}), ReasonReceiptsMismatch, "receipts[3].transactionIndex: 2 is also the index of receipts[2]"},
		{"receipt index past the block", Bundle, "", receipts(func(r []any) []any {
			obj(r[3])["transactionIndex"] = "0x4"
			return r
		}), ReasonReceiptsMismatch, "receipts[3].transactionIndex: 4 is past the block's 4 transactions"},
		{"receipt of another block", Bundle, "", receipts(func(r []any) []any {
			obj(r[0])["blockHash"] = "0x2610dc6eb941f4bcbddfd2362b999087ccd956e978f0ece4f8da96851283a2ba"
			return r
		}), ReasonReceiptsMismatch, "receipts[0].blockHash"},
		{"receipt of another height", Bundle, "", receipts(func(r []any) []any {
			obj(r[0])["blockNumber"] = "0x7624f"
			return r
		}), ReasonReceiptsMismatch, "receipts[0].blockNumber: 483919 is not block.number 483920"},
		{"receipt of another type", Bundle, "", receipts(func(r []any) []any { obj(r[0])["type"] = "0x2"; return r }),
			ReasonReceiptsMismatch, "receipts[0].type: 2 is not block.transactions[0].type 0"},
		{"log of another transaction", Bundle, "", receipts(func(r []any) []any {
			obj(list(obj(r[1])["logs"])[0])["transactionHash"] = obj(r[0])["transactionHash"]
			return r
		}), ReasonReceiptsMismatch, "receipts[1].logs[0].transactionHash"},
		{"key is another block", Bundle, "483921", good, ReasonBadField, `key: "483921" is not block.number 483920`},
		{"key is not a number", Bundle, "0x76250", good, ReasonBadField, `key: "0x76250" is not block.number 483920`},
		{"unknown format", Format("avro"), "", good, ReasonUnknownFormat, `unknown format "avro"`},

		{"etl unknown type", EthereumETL, "", etlEdit(etlTx, func(m map[string]any) { m["type"] = "receipt" }),
			ReasonUnknownItemType, `item type "receipt" is not one of block, transaction, log`},
		{"etl no type", EthereumETL, "", etlEdit(etlTx, func(m map[string]any) { delete(m, "type") }), ReasonBadField,
			"type: missing required field"},
		{"etl type not a string", EthereumETL, "", []byte(`{"type": 1}`), ReasonBadField, "type: invalid value (number), want a string"},
		{"etl two types", EthereumETL, "", append([]byte(`{"type": "block", `), etlTx[1:]...), ReasonBadField,
			`type: "transaction" after "block": the item has two types`},
		{"etl value above 2^256", EthereumETL, "", rawSet(etlTx, "value", dec2p256), ReasonBadField,
			"transaction.value: invalid value (number 1157920892373161954235709850086879078532… above 2^256-1)"},
		{"etl 300-bit value", EthereumETL, "", rawSet(etlTx, "value", "2037035976334486086268445688409378161051468393665936250636140449354381299763336706183397375"),
			ReasonBadField, "transaction.value: invalid value (number of 91 digits)"},
		{"etl negative", EthereumETL, "", rawSet(etlTx, "gas", "-1"), ReasonBadField, "transaction.gas: invalid value (negative number -1)"},
		{"etl fraction", EthereumETL, "", rawSet(etlTx, "gas_price", "1.5"), ReasonBadField,
			"transaction.gas_price: invalid value (number 1.5 with a fraction or exponent)"},
		{"etl exponent", EthereumETL, "", rawSet(etlTx, "value", "1e18"), ReasonBadField, "transaction.value: invalid value (number 1e18"},
		{"etl number as string", EthereumETL, "", rawSet(etlTx, "nonce", `"323847"`), ReasonBadField,
			"transaction.nonce: invalid value (string), want a non-negative integer of at most 256 bits"},
		{"etl hash as number", EthereumETL, "", rawSet(etlTx, "block_hash", `1`), ReasonBadField,
			"transaction.block_hash: invalid value (non-string), want a 32-byte 0x-prefixed hex string"},
		{"etl nonce above bigint", EthereumETL, "", rawSet(etlTx, "nonce", "9223372036854775808"), ReasonBadField,
			"transaction.nonce: out of range: above 9223372036854775807"},
		{"etl timestamp above bigint", EthereumETL, "", rawSet(etlTx, "block_timestamp", "18446744073709551616"), ReasonBadField,
			"transaction.block_timestamp: out of range: after 294276-12-31T23:59:59Z"},
		{"etl status 2", EthereumETL, "", rawSet(etlTx, "receipt_status", "2"), ReasonBadField, "transaction.receipt_status: out of range"},
		{"etl no from", EthereumETL, "", etlEdit(etlTx, func(m map[string]any) { delete(m, "from_address") }), ReasonBadField,
			"transaction.from_address: missing required field"},
		{"etl null block number", EthereumETL, "", rawSet(etlTx, "block_number", "null"), ReasonBadField,
			"transaction.block_number: missing required field"},
		{"etl bad address", EthereumETL, "", rawSet(etlTx, "to_address", `"0x6b75d8af000000e20b7a7ddf000ba900b4009a8"`), ReasonBadField,
			"transaction.to_address: invalid value (hex string of odd length)"},
		{"etl bad withdrawal", EthereumETL, "", etlEdit(etlBlock, func(m map[string]any) {
			obj(list(m["withdrawals"])[3])["amount"] = "12"
		}), ReasonBadField, "block.withdrawals[3].amount: invalid value (string)"},
		{"etl withdrawal without address", EthereumETL, "", etlEdit(etlBlock, func(m map[string]any) {
			delete(obj(list(m["withdrawals"])[5]), "address")
		}), ReasonBadField, "block.withdrawals[5].address: missing required field"},
		{"etl transaction count above integer", EthereumETL, "", rawSet(etlBlock, "transaction_count", "2147483648"),
			ReasonBadField, "block.transaction_count: out of range: above 2147483647"},
		{"etl block without miner", EthereumETL, "", etlEdit(etlBlock, func(m map[string]any) { delete(m, "miner") }),
			ReasonBadField, "block.miner: missing required field"},
		{"etl five topics", EthereumETL, "", etlEdit(etlLog, func(m map[string]any) {
			m["topics"] = append(list(m["topics"]), list(m["topics"])[0], list(m["topics"])[0])
		}), ReasonBadField, "log.topics: has more than 4 topics"},
		{"etl log without topics", EthereumETL, "", etlEdit(etlLog, func(m map[string]any) { delete(m, "topics") }),
			ReasonBadField, "log.topics: missing required field"},
		{"etl log data null", EthereumETL, "", rawSet(etlLog, "data", "null"), ReasonBadField, "log.data: missing required field"},
		{"etl log index above integer", EthereumETL, "", rawSet(etlLog, "log_index", "4294967296"), ReasonBadField,
			"log.log_index: out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var key []byte
			if c.key != "" {
				key = []byte(c.key)
			}
			rows, fail := Decode(c.f, key, c.value)
			if fail == nil {
				t.Fatalf("decoded into %d rows, want a %s failure", rows.Len(), c.reason)
			}
			t.Logf("%s: %v", fail.Reason, fail.Err)
			if rows.Len() != 0 {
				t.Errorf("a failure with %d rows", rows.Len())
			}
			if fail.Reason != c.reason || !strings.Contains(fail.Err.Error(), c.errHas) {
				t.Errorf("got %s: %v\nwant %s: ...%s...", fail.Reason, fail.Err, c.reason, c.errHas)
			}
			if !strings.HasPrefix(fail.Err.Error(), "decode "+string(c.f)+" message: ") {
				t.Errorf("error does not say what failed: %v", fail.Err)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	big := make([]byte, MaxMessageBytes+1)
	copy(big, `{"block":`)
	_, fail := Decode(Bundle, nil, big)
	if fail == nil || fail.Reason != ReasonTooLarge || !strings.Contains(fail.Err.Error(), "16777217 bytes, above the limit of 16777216") {
		t.Errorf("a 16 MiB + 1 message: %v", fail)
	}
	good := bundle483920(t)
	_, fail = Decoder{Format: Bundle, MaxMessageBytes: len(good) - 1}.Decode(nil, good)
	if fail == nil || fail.Reason != ReasonTooLarge {
		t.Errorf("a message one byte above a custom limit: %v", fail)
	}
	if _, fail = (Decoder{Format: Bundle, MaxMessageBytes: len(good)}).Decode(nil, good); fail != nil {
		t.Errorf("a message at the limit: %v", fail)
	}
}

// TestFieldError: callers can find the path without parsing the text.
func TestFieldError(t *testing.T) {
	_, fail := Decode(Bundle, nil, edit(t, bundle483920(t), func(m map[string]any) {
		obj(list(obj(m["block"])["transactions"])[3])["value"] = hex300
	}))
	var fe *FieldError
	if fail == nil || !errors.As(fail.Err, &fe) || fe.Path != "block.transactions[3].value" {
		t.Fatalf("%v", fail)
	}
}

func TestMaxUnixSeconds(t *testing.T) {
	if last := time.Date(294276, 12, 31, 23, 59, 59, 0, time.UTC).Unix(); last != maxUnixSeconds {
		t.Errorf("maxUnixSeconds = %d, want %d", int64(maxUnixSeconds), last)
	}
}
