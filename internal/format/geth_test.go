package format

import (
	"bytes"
	"maps"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	json "github.com/go-json-experiment/json/v1"
	"github.com/holiman/uint256"

	"github.com/chainsink/chainsink/store/chain"
)

// go-ethereum's RPC golden files come from a simulated chain. Its block and receipt files were generated
// against different chains, so none of them belong together (TestGethFixturesDoNotPair); each receipts file
// is decoded through a block assembled around it from the full-transaction block file.

func gethJSON(t testing.TB, name string) json.RawMessage {
	return readFile(t, filepath.Join(gethDir, name))
}

func genericAny(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// blockAround builds the eth_getBlockByNumber result that the receipts belong to: the header of the
// full-transaction block file with the receipts' number and hash, and one transaction per receipt made from
// that file's transaction and what the receipt says about it (hash, sender, recipient, type), with the fee
// fields of its type.
func blockAround(t testing.TB, receipts []any) json.RawMessage {
	t.Helper()
	template := generic(t, gethJSON(t, "eth_getBlockByHash-hash-latest-1-fullTx.json"))
	block := maps.Clone(template)
	r0 := receipts[0].(map[string]any)
	block["number"], block["hash"] = r0["blockNumber"], r0["blockHash"]
	var txs []any
	for _, x := range receipts {
		r := x.(map[string]any)
		tx := maps.Clone(template["transactions"].([]any)[0].(map[string]any))
		for _, k := range []string{"transactionIndex", "from", "to", "type", "blockHash", "blockNumber"} {
			tx[k] = r[k]
		}
		tx["hash"] = r["transactionHash"]
		switch r["type"] {
		case "0x1":
			tx["chainId"], tx["accessList"] = "0x1", []any{}
		case "0x2":
			tx["chainId"], tx["maxFeePerGas"], tx["maxPriorityFeePerGas"] = "0x1", "0x3b9aca00", "0x2"
		case "0x3":
			tx["chainId"], tx["maxFeePerGas"], tx["maxPriorityFeePerGas"] = "0x1", "0x3b9aca00", "0x2"
			tx["maxFeePerBlobGas"] = "0x3"
			tx["blobVersionedHashes"] = []any{"0x01a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"}
		}
		txs = append(txs, tx)
	}
	block["transactions"] = txs
	return mustMarshal(t, block)
}

// checkReceiptMerged compares a transaction row's receipt columns with the receipt's JSON.
func checkReceiptMerged(t testing.TB, tx chain.Transaction, r map[string]any) {
	t.Helper()
	want := tx
	want.Hash = hexOrNil(t, r["transactionHash"])
	want.Type = int16(quantityBig(t, r["type"]).Int64())
	want.Status = nil
	if r["status"] != nil {
		want.Status = i16p(int16(quantityBig(t, r["status"]).Int64()))
	}
	want.GasUsed = i64p(quantityBig(t, r["gasUsed"]).Int64())
	want.CumulativeGasUsed = i64p(quantityBig(t, r["cumulativeGasUsed"]).Int64())
	want.EffectiveGasPrice = quantityBig(t, r["effectiveGasPrice"])
	want.ContractAddress = hexOrNil(t, r["contractAddress"])
	want.ToAddress = hexOrNil(t, r["to"])
	want.FromAddress = hexOrNil(t, r["from"])
	want.BlobGasUsed = nil
	if r["blobGasUsed"] != nil {
		want.BlobGasUsed = i64p(quantityBig(t, r["blobGasUsed"]).Int64())
	}
	want.BlobGasPrice = quantityBig(t, r["blobGasPrice"])
	want.Root = nil
	expectSame(t, "transaction", tx, want)
}

func checkLogs(t testing.TB, got []chain.Log, r map[string]any, ts chain.Block) {
	t.Helper()
	var want []chain.Log
	for _, x := range r["logs"].([]any) {
		l := x.(map[string]any)
		want = append(want, chain.Log{
			BlockNumber:      quantityBig(t, r["blockNumber"]).Uint64(),
			LogIndex:         int32(quantityBig(t, l["logIndex"]).Int64()),
			TransactionHash:  hexOrNil(t, r["transactionHash"]),
			TransactionIndex: int32(quantityBig(t, r["transactionIndex"]).Int64()),
			BlockTimestamp:   ts.Timestamp,
			Address:          hexOrNil(t, l["address"]),
			Topics:           hexList(t, l["topics"]),
			Data:             hexOrNil(t, l["data"]),
			BlockHash:        ts.Hash, // the block's, which the decoder checks each log's blockHash against
		})
	}
	if want == nil {
		want = []chain.Log{}
	}
	expectSame(t, "logs", got, want)
}

func TestGethReceiptShapes(t *testing.T) {
	for _, c := range []struct {
		file  string
		check func(t *testing.T, tx chain.Transaction)
	}{
		{"eth_getBlockReceipts-block-with-blob-tx.json", func(t *testing.T, tx chain.Transaction) {
			if tx.Type != 3 || *tx.BlobGasUsed != 0x20000 || tx.BlobGasPrice.Int64() != 1 || tx.MaxFeePerBlobGas.Int64() != 3 {
				t.Errorf("blob transaction: type %d, blob gas used %v, price %v, max fee %v", tx.Type, tx.BlobGasUsed,
					tx.BlobGasPrice, tx.MaxFeePerBlobGas)
			}
		}},
		{"eth_getBlockReceipts-block-with-contract-create-tx.json", func(t *testing.T, tx chain.Transaction) {
			if tx.ToAddress != nil || common.BytesToAddress(tx.ContractAddress) != common.HexToAddress("0xae9bea628c4ce503dcfd7e305cab4e29e7476592") {
				t.Errorf("contract creation: to %x, contract %x", tx.ToAddress, tx.ContractAddress)
			}
		}},
		{"eth_getBlockReceipts-block-with-dynamic-fee-tx.json", func(t *testing.T, tx chain.Transaction) {
			if tx.Type != 2 || *tx.Status != 0 || tx.MaxFeePerGas.Int64() != 1e9 || tx.MaxPriorityFeePerGas.Int64() != 2 {
				t.Errorf("dynamic fee: type %d, status %d, fees %v/%v", tx.Type, *tx.Status, tx.MaxFeePerGas, tx.MaxPriorityFeePerGas)
			}
		}},
		{"eth_getBlockReceipts-block-with-legacy-contract-call-tx.json", func(t *testing.T, tx chain.Transaction) {
			if tx.Type != 0 || tx.MaxFeePerGas != nil || tx.BlobGasUsed != nil || tx.BlobGasPrice != nil {
				t.Errorf("legacy: %+v", tx)
			}
		}},
		{"eth_getBlockReceipts-block-with-legacy-transfer-tx.json", nil},
		{"eth_getTransactionReceipt-create-contract-with-access-list.json", func(t *testing.T, tx chain.Transaction) {
			if tx.Type != 1 || tx.ToAddress != nil || len(tx.ContractAddress) != 20 {
				t.Errorf("access list creation: type %d, to %x, contract %x", tx.Type, tx.ToAddress, tx.ContractAddress)
			}
		}},
		{"eth_getTransactionReceipt-with-logs.json", nil},
	} {
		t.Run(strings.TrimSuffix(c.file, ".json"), func(t *testing.T) {
			raw := gethJSON(t, c.file)
			var receipts []any
			switch v := genericAny(t, raw).(type) {
			case []any:
				receipts = v
			default:
				receipts = []any{v}
			}
			var rawReceipts []json.RawMessage
			for _, r := range receipts {
				rawReceipts = append(rawReceipts, mustMarshal(t, r))
			}
			block := blockAround(t, receipts)
			number := quantityBig(t, receipts[0].(map[string]any)["blockNumber"]).Uint64()
			rows := decodeOK(t, Bundle, BundleKey(number), encodeBundle(t, block, rawReceipts))
			if len(rows.Transactions) != len(receipts) {
				t.Fatalf("%d transactions", len(rows.Transactions))
			}
			for i, x := range receipts {
				checkReceiptMerged(t, rows.Transactions[i], x.(map[string]any))
				if c.check != nil {
					c.check(t, rows.Transactions[i])
				}
			}
			checkLogs(t, rows.Logs, receipts[0].(map[string]any), rows.Blocks[0])
		})
	}
}

// TestGethFixturesDoNotPair checks the premise above: where a block file and a receipts file have the same
// number, they are of different chains, and Decode says so instead of storing them together.
func TestGethFixturesDoNotPair(t *testing.T) {
	block := generic(t, gethJSON(t, "eth_getBlockByNumber-number-1.json"))
	receipts := genericAny(t, gethJSON(t, "eth_getBlockReceipts-block-with-legacy-transfer-tx.json")).([]any)
	r := receipts[0].(map[string]any)
	if block["number"] != r["blockNumber"] || block["hash"] == r["blockHash"] {
		t.Fatalf("block %v %v, receipts of %v %v", block["number"], block["hash"], r["blockNumber"], r["blockHash"])
	}
	rawReceipts := []json.RawMessage{mustMarshal(t, r)}

	// As stored, the block has transaction hashes only: not a bundle.
	_, fail := Decode(Bundle, nil, encodeBundle(t, mustMarshal(t, block), rawReceipts))
	if fail == nil || fail.Reason != ReasonBadField || !strings.Contains(fail.Err.Error(), "block.transactions[0]: is a transaction hash") {
		t.Errorf("hash-only block: %v", fail)
	}
	// With the transaction filled in, the receipt's block hash gives the mismatch away.
	full := generic(t, blockAround(t, receipts))
	full["hash"] = block["hash"]
	for _, tx := range full["transactions"].([]any) {
		tx.(map[string]any)["blockHash"] = block["hash"]
	}
	_, fail = Decode(Bundle, nil, encodeBundle(t, mustMarshal(t, full), rawReceipts))
	if fail == nil || fail.Reason != ReasonReceiptsMismatch || !strings.Contains(fail.Err.Error(), "receipts[0].blockHash") {
		t.Errorf("receipts of another chain: %v", fail)
	}

	// The full-transaction block file has no receipts file; with a receipt made for its one transaction it
	// decodes, and its transaction columns are the file's.
	blk := generic(t, gethJSON(t, "eth_getBlockByHash-hash-latest-1-fullTx.json"))
	tx := blk["transactions"].([]any)[0].(map[string]any)
	receipt := map[string]any{"transactionHash": tx["hash"], "transactionIndex": "0x0", "blockHash": blk["hash"],
		"blockNumber": blk["number"], "status": "0x1", "gasUsed": "0x5208", "cumulativeGasUsed": "0x5208",
		"effectiveGasPrice": tx["gasPrice"], "contractAddress": nil, "logs": []any{}, "type": "0x0"}
	rows := decodeOK(t, Bundle, BundleKey(9), encodeBundle(t, gethJSON(t, "eth_getBlockByHash-hash-latest-1-fullTx.json"),
		[]json.RawMessage{mustMarshal(t, receipt)}))
	got := rows.Transactions[0]
	want := chain.Transaction{BlockNumber: 9, Hash: hexOrNil(t, tx["hash"]), BlockHash: hexOrNil(t, blk["hash"]),
		BlockTimestamp: rows.Blocks[0].Timestamp, FromAddress: hexOrNil(t, tx["from"]), ToAddress: hexOrNil(t, tx["to"]),
		Value: big.NewInt(1000), Gas: 21000, GasPrice: quantityBig(t, tx["gasPrice"]), Nonce: 8, Input: []byte{},
		Status: i16p(1), GasUsed: i64p(21000), CumulativeGasUsed: i64p(21000), EffectiveGasPrice: quantityBig(t, tx["gasPrice"])}
	expectSame(t, "transaction", got, want)
	if b := rows.Blocks[0]; b.BaseFeePerGas.Int64() != 0x121a9cca || b.Timestamp.Unix() != 0x5a || len(b.MixHash) != 32 || *b.Size != 0x26a {
		t.Errorf("block: %+v", b)
	}
}

// TestGethTypesBlock decodes a block that go-ethereum itself encodes (types.Header, types.Transaction,
// types.Receipt, types.Log MarshalJSON) holding one signed transaction of every type, 0 to 4, and compares
// each column with go-ethereum's accessors. No RPC fixture holds a set-code transaction.
func TestGethTypesBlock(t *testing.T) {
	bundle, want := gethTypesBundle(t)
	rows := decodeOK(t, Bundle, BundleKey(want.number), bundle)
	if len(rows.Transactions) != 5 {
		t.Fatalf("%d transactions", len(rows.Transactions))
	}
	h := want.header
	b := rows.Blocks[0]
	wantBlock := chain.Block{Number: h.Number.Uint64(), Hash: h.Hash().Bytes(), ParentHash: h.ParentHash.Bytes(),
		Timestamp: b.Timestamp, Miner: h.Coinbase.Bytes(), GasUsed: h.GasUsed, GasLimit: h.GasLimit,
		BaseFeePerGas: h.BaseFee, TransactionCount: 5, Nonce: h.Nonce[:], Difficulty: h.Difficulty,
		ExtraData: h.Extra, MixHash: h.MixDigest.Bytes(), Sha3Uncles: h.UncleHash.Bytes(), LogsBloom: h.Bloom.Bytes(),
		TransactionsRoot: h.TxHash.Bytes(), StateRoot: h.Root.Bytes(), ReceiptsRoot: h.ReceiptHash.Bytes(),
		WithdrawalsRoot: h.WithdrawalsHash.Bytes(), WithdrawalCount: i32p(1), BlobGasUsed: i64p(int64(*h.BlobGasUsed)),
		ExcessBlobGas: i64p(int64(*h.ExcessBlobGas)), ParentBeaconBlockRoot: h.ParentBeaconRoot.Bytes(),
		RequestsHash: h.RequestsHash.Bytes()}
	expectSame(t, "block", b, wantBlock)
	if b.Timestamp.Unix() != int64(h.Time) {
		t.Errorf("timestamp %v", b.Timestamp)
	}
	expectSame(t, "withdrawals", rows.Withdrawals, []chain.Withdrawal{{BlockNumber: h.Number.Uint64(), Index: 7,
		ValidatorIndex: 42, Address: common.HexToAddress("0x00000000000000000000000000000000000000aa").Bytes(),
		AmountGwei: big.NewInt(32e9)}})

	signer := types.LatestSignerForChainID(big.NewInt(1))
	for i, tx := range want.txs {
		r := want.receipts[i]
		from, _ := types.Sender(signer, tx)
		w := chain.Transaction{BlockNumber: h.Number.Uint64(), TransactionIndex: int32(i), Hash: tx.Hash().Bytes(),
			BlockHash: h.Hash().Bytes(), BlockTimestamp: b.Timestamp, FromAddress: from.Bytes(), Value: tx.Value(),
			Gas: tx.Gas(), Type: int16(tx.Type()), Nonce: tx.Nonce(), Input: tx.Data(), Status: i16p(int16(r.Status)),
			GasUsed: i64p(int64(r.GasUsed)), CumulativeGasUsed: i64p(int64(r.CumulativeGasUsed)),
			EffectiveGasPrice: r.EffectiveGasPrice}
		if tx.To() != nil {
			w.ToAddress = tx.To().Bytes()
		}
		if tx.Type() < types.DynamicFeeTxType {
			w.GasPrice = tx.GasPrice()
		} else {
			w.MaxFeePerGas, w.MaxPriorityFeePerGas = tx.GasFeeCap(), tx.GasTipCap()
		}
		if tx.Type() == types.BlobTxType {
			w.MaxFeePerBlobGas = tx.BlobGasFeeCap()
			w.BlobGasUsed, w.BlobGasPrice = i64p(int64(r.BlobGasUsed)), r.BlobGasPrice
		}
		if r.ContractAddress != (common.Address{}) {
			w.ContractAddress = r.ContractAddress.Bytes()
		}
		if w.Input == nil {
			w.Input = []byte{}
		}
		expectSame(t, "transaction "+tx.Hash().Hex(), rows.Transactions[i], w)
	}
	if len(rows.Logs) != 1 || rows.Logs[0].LogIndex != 0 || rows.Logs[0].TransactionIndex != 4 || len(rows.Logs[0].Topics) != 4 {
		t.Errorf("logs: %+v", rows.Logs)
	}
}

type gethBlock struct {
	number   uint64
	header   *types.Header
	txs      []*types.Transaction
	receipts []*types.Receipt
}

// gethTypesBundle signs one transaction of each type with the key of go-ethereum's evm t8n test 33 and
// encodes them, their receipts and a Prague header with go-ethereum's own JSON encoders.
func gethTypesBundle(t testing.TB) ([]byte, gethBlock) {
	t.Helper()
	key, err := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	if err != nil {
		t.Fatal(err)
	}
	chainID := big.NewInt(1)
	signer := types.LatestSignerForChainID(chainID)
	to := common.HexToAddress("0x71562b71999873db5b286df957af199ec94617f7")
	huge, _ := new(big.Int).SetString("fedcba9876543210fedcba9876543210fedcba9876543210", 16) // above 2^64
	auth, err := types.SignSetCode(key, types.SetCodeAuthorization{ChainID: *uint256.NewInt(1),
		Address: common.HexToAddress("0x000000000000000000000000000000000000aaaa"), Nonce: 5})
	if err != nil {
		t.Fatal(err)
	}
	inner := []types.TxData{
		&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(30e9), Gas: 21000, To: &to, Value: huge},
		&types.AccessListTx{ChainID: chainID, Nonce: 1, GasPrice: big.NewInt(31e9), Gas: 100000, To: nil,
			Data: []byte{0x60, 0x00}, AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}},
		&types.DynamicFeeTx{ChainID: chainID, Nonce: 2, GasTipCap: big.NewInt(2e9), GasFeeCap: big.NewInt(40e9),
			Gas: 50000, To: &to, Value: big.NewInt(1), Data: []byte{0xa9, 0x05, 0x9c, 0xbb}},
		&types.BlobTx{ChainID: uint256.NewInt(1), Nonce: 3, GasTipCap: uint256.NewInt(1e9), GasFeeCap: uint256.NewInt(50e9),
			Gas: 21000, To: to, BlobFeeCap: uint256.NewInt(7e9),
			BlobHashes: []common.Hash{common.HexToHash("0x01a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8")}},
		&types.SetCodeTx{ChainID: uint256.NewInt(1), Nonce: 4, GasTipCap: uint256.NewInt(1e9), GasFeeCap: uint256.NewInt(60e9),
			Gas: 80000, To: to, AuthList: []types.SetCodeAuthorization{auth}},
	}
	g := gethBlock{number: 22_500_000}
	var cumulative uint64
	for i, d := range inner {
		tx, err := types.SignNewTx(key, signer, d)
		if err != nil {
			t.Fatal(err)
		}
		g.txs = append(g.txs, tx)
		cumulative += tx.Gas() / 2
		r := &types.Receipt{Type: tx.Type(), Status: uint64(i % 2), CumulativeGasUsed: cumulative, TxHash: tx.Hash(),
			GasUsed: tx.Gas() / 2, EffectiveGasPrice: big.NewInt(int64(20e9 + i)), TransactionIndex: uint(i),
			BlockNumber: new(big.Int).SetUint64(g.number), Logs: []*types.Log{}}
		if tx.To() == nil {
			r.ContractAddress = crypto.CreateAddress(common.HexToAddress("0x1"), tx.Nonce())
		}
		if tx.Type() == types.BlobTxType {
			r.BlobGasUsed, r.BlobGasPrice = 131072, big.NewInt(3)
		}
		if tx.Type() == types.SetCodeTxType {
			r.Logs = []*types.Log{{Address: to, Topics: []common.Hash{{1}, {2}, {3}, {4}}, Data: []byte{5},
				BlockNumber: g.number, TxHash: tx.Hash(), TxIndex: uint(i), Index: 0}}
		}
		g.receipts = append(g.receipts, r)
	}
	blobGas, excess := uint64(131072), uint64(1<<20)
	wroot, beacon, requests := common.Hash{0xaa}, common.Hash{0xbb}, common.Hash{0xcc}
	g.header = &types.Header{ParentHash: common.Hash{0x01}, UncleHash: types.EmptyUncleHash, Coinbase: to,
		Root: common.Hash{0x02}, TxHash: common.Hash{0x03}, ReceiptHash: common.Hash{0x04}, Difficulty: new(big.Int),
		Number: new(big.Int).SetUint64(g.number), GasLimit: 36_000_000, GasUsed: cumulative, Time: 1_750_000_000,
		Extra: []byte("chainsink"), BaseFee: big.NewInt(7e9), WithdrawalsHash: &wroot, BlobGasUsed: &blobGas,
		ExcessBlobGas: &excess, ParentBeaconRoot: &beacon, RequestsHash: &requests}
	hash := g.header.Hash()

	block := generic(t, mustMarshal(t, g.header))
	var txs, receipts []any
	for i, tx := range g.txs {
		o := generic(t, mustMarshal(t, tx))
		from, _ := types.Sender(signer, tx)
		o["from"], o["blockHash"], o["blockNumber"], o["transactionIndex"] = from, hash, block["number"], hexUint(uint64(i))
		txs = append(txs, o)
		g.receipts[i].BlockHash = hash
		for _, l := range g.receipts[i].Logs {
			l.BlockHash = hash
		}
		receipts = append(receipts, json.RawMessage(mustMarshal(t, g.receipts[i])))
	}
	block["transactions"] = txs
	block["withdrawals"] = []any{json.RawMessage(mustMarshal(t, &types.Withdrawal{Index: 7, Validator: 42,
		Address: common.HexToAddress("0xaa"), Amount: 32e9}))}
	return encodeBundle(t, mustMarshal(t, block), anyToRaw(receipts)), g
}

func hexUint(n uint64) string {
	return "0x" + new(big.Int).SetUint64(n).Text(16)
}

func anyToRaw(v []any) []json.RawMessage {
	out := make([]json.RawMessage, len(v))
	for i, x := range v {
		out[i] = x.(json.RawMessage)
	}
	return out
}
