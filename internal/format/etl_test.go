package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/store/chain"
)

// expectETL builds the rows an ethereum-etl item must decode into, from a generic parse of the item.
func expectETL(t testing.TB, item []byte) chain.Rows {
	t.Helper()
	m := generic(t, item)
	switch m["type"] {
	case "block":
		b := chain.Block{
			Number:           decU64(t, m["number"]),
			Hash:             hexOrNil(t, m["hash"]),
			ParentHash:       hexOrNil(t, m["parent_hash"]),
			Timestamp:        unixTime(t, m["timestamp"]),
			Miner:            hexOrNil(t, m["miner"]),
			GasUsed:          decU64(t, m["gas_used"]),
			GasLimit:         decU64(t, m["gas_limit"]),
			BaseFeePerGas:    decBig(t, m["base_fee_per_gas"]),
			TransactionCount: int32(decU64(t, m["transaction_count"])),
			Size:             decI64p(t, m["size"]),
			Nonce:            hexOrNil(t, m["nonce"]),
			Difficulty:       decBig(t, m["difficulty"]),
			TotalDifficulty:  decBig(t, m["total_difficulty"]),
			ExtraData:        hexOrNil(t, m["extra_data"]),
			Sha3Uncles:       hexOrNil(t, m["sha3_uncles"]),
			LogsBloom:        hexOrNil(t, m["logs_bloom"]),
			TransactionsRoot: hexOrNil(t, m["transactions_root"]),
			StateRoot:        hexOrNil(t, m["state_root"]),
			ReceiptsRoot:     hexOrNil(t, m["receipts_root"]),
			WithdrawalsRoot:  hexOrNil(t, m["withdrawals_root"]),
			BlobGasUsed:      decI64p(t, m["blob_gas_used"]),
			ExcessBlobGas:    decI64p(t, m["excess_blob_gas"]),
		}
		var ws []chain.Withdrawal
		if m["withdrawals_root"] != nil {
			list := m["withdrawals"].([]any)
			b.WithdrawalCount = i32p(int32(len(list)))
			for i, x := range list {
				w := x.(map[string]any)
				ws = append(ws, chain.Withdrawal{
					BlockNumber:    b.Number,
					Index:          decU64(t, w["index"]),
					Position:       int32(i),
					ValidatorIndex: decU64(t, w["validator_index"]),
					Address:        hexOrNil(t, w["address"]),
					AmountGwei:     decBig(t, w["amount"]),
				})
			}
			if ws == nil {
				ws = []chain.Withdrawal{}
			}
		}
		return chain.Rows{Blocks: []chain.Block{b}, Withdrawals: ws}
	case "transaction":
		return chain.Rows{Transactions: []chain.Transaction{{
			BlockNumber:          decU64(t, m["block_number"]),
			TransactionIndex:     int32(decU64(t, m["transaction_index"])),
			Hash:                 hexOrNil(t, m["hash"]),
			BlockHash:            hexOrNil(t, m["block_hash"]),
			BlockTimestamp:       unixTime(t, m["block_timestamp"]),
			FromAddress:          hexOrNil(t, m["from_address"]),
			ToAddress:            hexOrNil(t, m["to_address"]),
			Value:                decBig(t, m["value"]),
			Gas:                  decU64(t, m["gas"]),
			GasPrice:             decBig(t, m["gas_price"]),
			MaxFeePerGas:         decBig(t, m["max_fee_per_gas"]),
			MaxPriorityFeePerGas: decBig(t, m["max_priority_fee_per_gas"]),
			MaxFeePerBlobGas:     decBig(t, m["max_fee_per_blob_gas"]),
			Type:                 int16(decU64(t, m["transaction_type"])),
			Nonce:                decU64(t, m["nonce"]),
			Input:                hexOrNil(t, m["input"]),
			Status:               decI16p(t, m["receipt_status"]),
			Root:                 hexOrNil(t, m["receipt_root"]),
			GasUsed:              decI64p(t, m["receipt_gas_used"]),
			CumulativeGasUsed:    decI64p(t, m["receipt_cumulative_gas_used"]),
			EffectiveGasPrice:    decBig(t, m["receipt_effective_gas_price"]),
			ContractAddress:      hexOrNil(t, m["receipt_contract_address"]),
			BlobGasUsed:          decI64p(t, m["receipt_blob_gas_used"]),
			BlobGasPrice:         decBig(t, m["receipt_blob_gas_price"]),
		}}}
	case "log":
		return chain.Rows{Logs: []chain.Log{{
			BlockNumber:      decU64(t, m["block_number"]),
			LogIndex:         int32(decU64(t, m["log_index"])),
			TransactionHash:  hexOrNil(t, m["transaction_hash"]),
			TransactionIndex: int32(decU64(t, m["transaction_index"])),
			BlockTimestamp:   unixTime(t, m["block_timestamp"]),
			Address:          hexOrNil(t, m["address"]),
			Topics:           hexList(t, m["topics"]),
			Data:             hexOrNil(t, m["data"]),
			BlockHash:        hexOrNil(t, m["block_hash"]),
		}}}
	}
	return chain.Rows{}
}

// TestETLBlock17173049 decodes every item of a post-Shanghai mainnet block and checks every column.
func TestETLBlock17173049(t *testing.T) {
	var all chain.Rows
	for _, item := range etlItems17173049(t) {
		got := decodeOK(t, EthereumETL, nil, item)
		if got.Len() != 1+len(got.Withdrawals) {
			t.Fatalf("item %.80s: %d rows", item, got.Len())
		}
		expectSame(t, "rows", got, expectETL(t, item))
		all.Add(&got)
	}
	if t.Failed() {
		return
	}

	// The shape of the block, counted from the fixture's README and the raw text, not from the decoder.
	b := all.Blocks[0]
	if b.Number != 17173049 || b.TransactionCount != 116 || *b.WithdrawalCount != 16 || len(all.Withdrawals) != 16 {
		t.Errorf("block %d: %d transactions, %d withdrawals (%d rows)", b.Number, b.TransactionCount, *b.WithdrawalCount,
			len(all.Withdrawals))
	}
	td, _ := new(big.Int).SetString("58750003716598352816469", 10)
	if b.TotalDifficulty.Cmp(td) != 0 || b.TotalDifficulty.IsUint64() {
		t.Errorf("total difficulty %v: a number above 2^64 lost precision", b.TotalDifficulty)
	}
	if b.MixHash != nil {
		t.Error("an ethereum-etl block has no mix hash, but MixHash is set")
	}
	if w := all.Withdrawals[15]; w.Index != 2210767 || w.ValidatorIndex != 540245 || w.AmountGwei.Int64() != 12384451 || w.Position != 15 {
		t.Errorf("last withdrawal: %+v", w)
	}
	var failed, legacy, dynamic int
	for _, tx := range all.Transactions {
		if *tx.Status == 0 {
			failed++
		}
		switch tx.Type {
		case 0:
			legacy++
			if tx.MaxFeePerGas != nil || tx.MaxPriorityFeePerGas != nil {
				t.Errorf("legacy transaction %x has EIP-1559 fees", tx.Hash)
			}
		case 2:
			dynamic++
		}
		if tx.ToAddress == nil || tx.ContractAddress != nil || tx.Root != nil || tx.BlobGasUsed != nil {
			t.Errorf("transaction %x: to %x, contract %x, root %x, blob gas %v", tx.Hash, tx.ToAddress,
				tx.ContractAddress, tx.Root, tx.BlobGasUsed)
		}
	}
	if len(all.Transactions) != 116 || failed != 3 || legacy != 17 || dynamic != 99 {
		t.Errorf("%d transactions, %d failed, %d legacy, %d dynamic-fee; want 116, 3, 17, 99",
			len(all.Transactions), failed, legacy, dynamic)
	}
	raw := readFile(t, filepath.Join(block17173049Dir, "expected_logs.json"))
	transfer := hexBytes(t, "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
	var transfers, topics int
	for i, l := range all.Logs {
		if int(l.LogIndex) != i {
			t.Errorf("log %d has index %d", i, l.LogIndex)
		}
		if len(l.Topics) > 0 && bytes.Equal(l.Topics[0], transfer) {
			transfers++
		}
		topics += len(l.Topics)
	}
	// 106 ERC-20 + 8 ERC-721 Transfer logs, per the README; topics counted in the raw text.
	if len(all.Logs) != 271 || transfers != 114 || topics != bytes.Count(raw, []byte(`"0x`))-4*271 {
		t.Errorf("%d logs, %d Transfer logs, %d topics", len(all.Logs), transfers, topics)
	}
}

// TestETLIgnored: token transfer items (chainsink decodes transfers from the logs) and contract items (the
// contracts table comes from their create traces) decode into nothing, without failing.
func TestETLIgnored(t *testing.T) {
	items := readLines(t, filepath.Join(block17173049Dir, "expected_token_transfers.json"))
	items = append(items, readLines(t, filepath.Join(etlDir, "test_stream/blocks_508110_508110/expected_contracts.json"))...)
	items = append(items, readLines(t, filepath.Join(etlDir, "test_stream/blocks_2112234_2112234/expected_contracts.json"))...)
	seen := map[string]bool{}
	for _, item := range items {
		rows, fail := Decode(EthereumETL, nil, item)
		if fail != nil || rows.Len() != 0 {
			t.Errorf("%.60s: %d rows, failure %v", item, rows.Len(), fail)
		}
		seen[generic(t, item)["type"].(string)] = true
	}
	for _, typ := range []string{"token_transfer", "contract"} {
		if !seen[typ] {
			t.Errorf("no %s item was tried", typ)
		}
	}
	// A contract item is still checked: a malformed one is a dead letter.
	bad := bytes.Replace(items[len(items)-1], []byte(`"address": "0x`), []byte(`"address": "0xzz`), 1)
	if _, fail := Decode(EthereumETL, nil, bad); fail == nil || fail.Reason != ReasonBadField {
		t.Errorf("contract item with a bad address: failure %v", fail)
	}
}

// TestETLTraces: ethereum-etl's trace items (Parity's trace_block of two mainnet blocks, flattened) become
// rows of traces; the rewards of a block's miner and uncles, which are no transaction's, give none.
func TestETLTraces(t *testing.T) {
	var items [][]byte
	for _, b := range []string{"blocks_508110_508110", "blocks_2112234_2112234"} {
		items = append(items, readLines(t, filepath.Join(etlDir, "test_stream", b, "expected_traces.json"))...)
	}
	if len(items) != 6 {
		t.Fatalf("%d trace items", len(items))
	}
	hash508110 := hexBytes(t, "0xc881ee96ddf8b5be74d7680ccda437466b14b9d942aa0161f139fe920690f665")
	hash2112234 := hexBytes(t, "0xd279067d9852394d6b6c00b13c49696503c9618d3ed3b23c6b1b1321857ddd92")
	field := func(i int, k string) []byte { return hexBytes(t, generic(t, items[i])[k].(string)) }
	for i, want := range []*chain.Trace{
		{ // a contract created by the block's first transaction
			BlockNumber: 508110, TransactionIndex: 0, TraceAddress: []int32{}, BlockHash: hash508110,
			TransactionHash: hexBytes(t, "0xcdfc8283894591201a62fcec43553d446a1ec46aaaacd98f69692d5a3ade317c"),
			BlockTimestamp:  time.Unix(1446973196, 0).UTC(), Type: "create", TraceType: "create",
			FromAddress: hexBytes(t, "0x52de4b32e40ba930679efeb2214357cdf6fec979"),
			ToAddress:   hexBytes(t, "0xaec3266ebd18361ab1378646e91f0c5c373038da"),
			Value:       big.NewInt(0), Gas: i64p(1718274), GasUsed: i64p(518125),
			Input: field(0, "input"), Output: field(0, "output"), Status: 1,
		},
		{ // a plain transfer of ether
			BlockNumber: 508110, TransactionIndex: 1, TraceAddress: []int32{}, BlockHash: hash508110,
			TransactionHash: hexBytes(t, "0x435f5f71090a14a7eca2d7c14103f9dbaa962777bc959794e5c6d17ed771406e"),
			BlockTimestamp:  time.Unix(1446973196, 0).UTC(), Type: "call", TraceType: "call",
			FromAddress: hexBytes(t, "0xfecab546498f74591d4f6d448a4a63552850f122"),
			ToAddress:   hexBytes(t, "0x32be343b94f860124dc4fee278fdcbd38c102d88"),
			Value:       big.NewInt(4949989500000000000), Gas: i64p(0), GasUsed: i64p(0),
			Input: []byte{}, Output: []byte{}, Status: 1,
		},
		nil, // the block reward
		nil, // the uncle reward
		{
			BlockNumber: 2112234, TransactionIndex: 0, TraceAddress: []int32{}, BlockHash: hash2112234,
			TransactionHash: hexBytes(t, "0xa7a876923fdf69617794ea3fd77734bfb46bde6a44a3dc4264c0ca9f9cada30c"),
			BlockTimestamp:  time.Unix(1471774428, 0).UTC(), Type: "create", TraceType: "create",
			FromAddress: hexBytes(t, "0x4b638dd891b0669242742bc0f4198a7c60bfbf00"),
			ToAddress:   hexBytes(t, "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a"),
			Value:       big.NewInt(0), Gas: i64p(4589988), GasUsed: i64p(228729),
			Input: field(4, "input"), Output: field(4, "output"), Status: 1,
		},
		nil, // the block reward
	} {
		got := decodeOK(t, EthereumETL, nil, items[i])
		if want == nil {
			if got.Len() != 0 {
				t.Errorf("item %d (%s): %d rows", i, generic(t, items[i])["trace_type"], got.Len())
			}
			continue
		}
		if len(got.Traces) != 1 || got.Len() != 1 {
			t.Errorf("item %d: %d traces, %d rows", i, len(got.Traces), got.Len())
			continue
		}
		expectSame(t, fmt.Sprintf("item %d", i), got.Traces[0], *want)
	}
}

// TestETLTraceShapes: what Parity's call types, failures and selfdestructs become, and what is refused.
func TestETLTraceShapes(t *testing.T) {
	base := readLines(t, filepath.Join(etlDir, "test_stream/blocks_508110_508110/expected_traces.json"))[1]
	edit := func(pairs ...string) []byte {
		m := generic(t, base)
		for i := 0; i < len(pairs); i += 2 {
			var v any
			if err := json.Unmarshal([]byte(pairs[i+1]), &v); err != nil {
				t.Fatal(err)
			}
			m[pairs[i]] = v
		}
		return mustMarshal(t, m)
	}
	for _, c := range []struct {
		name   string
		item   []byte
		check  func(chain.Trace) bool
		reason string
	}{
		{"a delegatecall moves no value", edit("call_type", `"delegatecall"`, "trace_address", `[0, 3]`),
			func(tr chain.Trace) bool {
				return tr.Type == "delegatecall" && tr.Value == nil && slices.Equal(tr.TraceAddress, []int32{0, 3})
			}, ""},
		{"a staticcall moves no value", edit("call_type", `"staticcall"`),
			func(tr chain.Trace) bool { return tr.Type == "staticcall" && tr.Value == nil }, ""},
		{"a failed frame", edit("error", `"Reverted"`, "status", `0`, "gas_used", `null`, "output", `null`),
			func(tr chain.Trace) bool {
				return tr.Error == "Reverted" && tr.Status == 0 && tr.GasUsed == nil && tr.Output == nil
			}, ""},
		{"a selfdestruct", edit("trace_type", `"suicide"`, "call_type", `null`, "input", `null`, "output", `null`),
			func(tr chain.Trace) bool { return tr.Type == "selfdestruct" && tr.TraceType == "suicide" }, ""},
		{"a call without call type", edit("call_type", `null`), nil, ReasonBadField},
		{"an unknown call type", edit("call_type", `"jump"`), nil, ReasonBadField},
		{"an unknown trace type", edit("trace_type", `"teleport"`), nil, ReasonBadField},
		{"no status", edit("status", `null`), nil, ReasonBadField},
		{"a status of 2", edit("status", `2`), nil, ReasonBadField},
		{"no trace address", edit("trace_address", `null`), nil, ReasonBadField},
		{"a negative trace address", edit("trace_address", `[0, -1]`), nil, ReasonBadField},
		{"no transaction", edit("transaction_index", `null`), nil, ReasonBadField},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, fail := Decode(EthereumETL, nil, c.item)
			if c.reason != "" {
				if fail == nil || fail.Reason != c.reason {
					t.Fatalf("failure %v, want %s", fail, c.reason)
				}
				return
			}
			if fail != nil || len(rows.Traces) != 1 {
				t.Fatalf("failure %v, %d traces", fail, len(rows.Traces))
			}
			if !c.check(rows.Traces[0]) {
				t.Errorf("%+v", rows.Traces[0])
			}
		})
	}
}

// TestETLTokens: ethereum-etl's token item becomes a tokens row; what chainsink publishes (EncodeETLToken)
// decodes back to the row it came from, nulls included, and text that Postgres would refuse is cleaned.
func TestETLTokens(t *testing.T) {
	items := readLines(t, filepath.Join(etlDir, "test_stream/blocks_2112234_2112234/expected_tokens.json"))
	if len(items) != 1 {
		t.Fatalf("%d token items", len(items))
	}
	got := decodeOK(t, EthereumETL, nil, items[0])
	// ethereum-etl writes "" and 0 where the calls failed or said nothing: unknown, not facts.
	block := uint64(2112234)
	want := chain.Token{Address: common.FromHex("0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a"),
		TotalSupply: big.NewInt(0), BlockNumber: &block, Source: chain.TokenFromChain}
	expectSame(t, "token", got, chain.Rows{Tokens: []chain.Token{want}})
	// chainsink's own items say "standard" and keep what the contract answered, empty text included.
	empty, zero := "", int32(0)
	own := decodeOK(t, EthereumETL, nil, []byte(`{"type": "token", "address": "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a",
		"symbol": "", "name": "", "decimals": 0, "total_supply": 0, "standard": "erc20"}`))
	if tk := own.Tokens[0]; tk.Name == nil || *tk.Name != empty || tk.Symbol == nil || tk.Decimals == nil || *tk.Decimals != zero {
		t.Errorf("chainsink's item of a token of empty name: %+v", tk)
	}

	name, symbol, six := "USD\x00Coin\x00\x00", " USDC\xff", int32(6)
	supply, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	for _, tok := range []chain.Token{
		{Address: common.FromHex("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"), Name: &name, Symbol: &symbol,
			Decimals: &six, TotalSupply: supply, BlockNumber: &block, Standard: "erc20", Source: chain.TokenFromChain},
		{Address: common.FromHex("0x0000000000000000000000000000000000000001"), Source: chain.TokenFromChain},
	} {
		item, err := EncodeETLToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		back := decodeOK(t, EthereumETL, nil, item)
		tok.Name, tok.Symbol = TokenText(tok.Name), TokenText(tok.Symbol)
		expectSame(t, string(item), back, chain.Rows{Tokens: []chain.Token{tok}})
	}
	if got := *TokenText(&name) + "|" + *TokenText(&symbol); got != "USDCoin|USDC\uFFFD" {
		t.Errorf("cleaned text %q", got)
	}

	for _, bad := range []string{
		`{"type": "token", "symbol": "X"}`,
		`{"type": "token", "address": "0x12"}`,
		`{"type": "token", "address": "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a", "decimals": -1}`,
		`{"type": "token", "address": "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a", "standard": "erc777"}`,
	} {
		if _, fail := Decode(EthereumETL, nil, []byte(bad)); fail == nil {
			t.Errorf("%s: decoded", bad)
		}
	}
	// decimals above 255 mean nothing: NULL, as when the call reverted.
	rows := decodeOK(t, EthereumETL, nil, []byte(`{"type": "token", "address": "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a", "decimals": 256}`))
	if rows.Tokens[0].Decimals != nil {
		t.Errorf("decimals 256 stored as %d", *rows.Tokens[0].Decimals)
	}
}

// TestETLPreByzantium: 2016 items have a receipt root instead of a status, no base fee and no withdrawals.
func TestETLPreByzantium(t *testing.T) {
	dir := filepath.Join(etlDir, "test_stream/blocks_1755634_1755635")
	for _, f := range []string{"expected_blocks.json", "expected_transactions.json", "expected_logs.json"} {
		for _, item := range readLines(t, filepath.Join(dir, f)) {
			got := decodeOK(t, EthereumETL, nil, item)
			expectSame(t, "rows", got, expectETL(t, item))
			for _, b := range got.Blocks {
				if b.WithdrawalCount != nil || b.BaseFeePerGas != nil || got.Withdrawals != nil {
					t.Errorf("block %d: withdrawal count %v, base fee %v", b.Number, b.WithdrawalCount, b.BaseFeePerGas)
				}
			}
			for _, tx := range got.Transactions {
				if tx.Status != nil || len(tx.Root) != 32 {
					t.Errorf("transaction %x: status %v, root %x", tx.Hash, tx.Status, tx.Root)
				}
			}
		}
	}
}

// TestETLContractCreation: a transaction without to_address has a NULL to_address and a contract address.
// No fixture item creates a contract, so one is derived from a real item.
func TestETLContractCreation(t *testing.T) {
	item := readLines(t, filepath.Join(block17173049Dir, "expected_transactions.json"))[5]
	item = bytes.Replace(item, []byte(`"to_address": "0x`), []byte(`"to_address": null, "x": "0x`), 1)
	item = bytes.Replace(item, []byte(`"receipt_contract_address": null`),
		[]byte(`"receipt_contract_address": "0xae9bea628c4ce503dcfd7e305cab4e29e7476592"`), 1)
	got := decodeOK(t, EthereumETL, nil, item)
	tx := got.Transactions[0]
	if tx.ToAddress != nil || !bytes.Equal(tx.ContractAddress, hexBytes(t, "0xae9bea628c4ce503dcfd7e305cab4e29e7476592")) {
		t.Errorf("to %x, contract %x", tx.ToAddress, tx.ContractAddress)
	}
	expectSame(t, "rows", got, expectETL(t, item))
}

// TestETLBlobFields: items of ethereum-etl versions that know EIP-4844. The fixtures predate it, so the
// fields are added to real items, with the names ethereum-etl uses.
func TestETLBlobFields(t *testing.T) {
	tx := readLines(t, filepath.Join(block17173049Dir, "expected_transactions.json"))[0]
	tx = bytes.Replace(tx, []byte(`"transaction_type": 2`), []byte(`"transaction_type": 3, "max_fee_per_blob_gas": 1000000000, `+
		`"blob_versioned_hashes": ["0x01a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"], `+
		`"receipt_blob_gas_used": 131072, "receipt_blob_gas_price": 1`), 1)
	got := decodeOK(t, EthereumETL, nil, tx).Transactions[0]
	if got.Type != 3 || got.MaxFeePerBlobGas.Int64() != 1e9 || *got.BlobGasUsed != 131072 || got.BlobGasPrice.Int64() != 1 {
		t.Errorf("type %d, max fee per blob gas %v, blob gas used %v, blob gas price %v", got.Type, got.MaxFeePerBlobGas,
			got.BlobGasUsed, got.BlobGasPrice)
	}
	blk := readLines(t, filepath.Join(block17173049Dir, "expected_blocks.json"))[0]
	blk = bytes.Replace(blk, []byte(`"gas_used": `), []byte(`"blob_gas_used": 393216, "excess_blob_gas": 79167488, "gas_used": `), 1)
	b := decodeOK(t, EthereumETL, nil, blk).Blocks[0]
	if b.BlobGasUsed == nil || *b.BlobGasUsed != 393216 || b.ExcessBlobGas == nil || *b.ExcessBlobGas != 79167488 {
		t.Errorf("blob gas used %v, excess blob gas %v", b.BlobGasUsed, b.ExcessBlobGas)
	}
}

func TestSniffType(t *testing.T) {
	for in, want := range map[string]string{
		`{"type": "block"}`:            "block",
		" \n{ \"type\":\"log\" , }":    "log",
		`{"type": "transaction", "x"`:  "transaction",
		`{"type": "token_transfer"}`:   "",
		`{"hash": "x", "type": "log"}`: "",
		`{"type": "lo\"g"}`:            "",
		`{"type": "log`:                "",
		`["type"]`:                     "",
		``:                             "",
	} {
		if got, _ := sniffType([]byte(in)); got != want {
			t.Errorf("sniffType(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestItemsDecodeInTwoAllocations holds the transaction and log items of block 17173049 to what they cost
// since each item's wire struct, numbers, topics and row share one allocation: that one and the item's
// data (a log's data, a transaction's input). They took 5 to 7 each before.
func TestItemsDecodeInTwoAllocations(t *testing.T) {
	var items [][]byte
	for _, it := range etlItems17173049(t) {
		if typ, _ := fastItemType(it); typ == etlTypeTransaction || typ == etlTypeLog {
			items = append(items, it)
		}
	}
	if len(items) != 387 {
		t.Fatalf("%d transaction and log items, want 387", len(items))
	}
	allocs := 0.0
	for _, it := range items {
		allocs += testing.AllocsPerRun(5, func() {
			if _, fail := Decode(EthereumETL, nil, it); fail != nil {
				t.Fatal(fail.Err)
			}
		})
	}
	// A value above 2^64 wei (18.4 ether) takes math/big's own allocation; a few transactions here have one.
	if perItem := allocs / float64(len(items)); perItem > 2.05 {
		t.Errorf("%.2f allocations an item (%.0f for %d items), want at most 2", perItem, allocs, len(items))
	}
}
