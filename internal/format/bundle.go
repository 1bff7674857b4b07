package format

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// The JSON-RPC shapes, declared like go-ethereum's ethapi.RPCTransaction. Only fields with a column are
// declared: encoding/json skips the rest (signatures, access lists, authorization lists, blooms of
// receipts) without allocating, and without judging them, which keeps the decoder lenient where it does
// not matter. The field types (convert.go) tell a missing or null field from a zero one.
//
// The list types are parameters so that the same structs, instantiated with json.RawMessage, can locate a
// failure to an element index (see locateBundleError); encoding/json's own error paths have no indices.

type rpcBundle[B, R, T, H, L, X any] struct {
	Block    *B   `json:"block"`
	Receipts *[]R `json:"receipts"`
	// Traces is optional (see traces.go).
	Traces *[]T `json:"traces"`
	// A filtered bundle (filtered.go) has Header in place of Block, its matching Logs, and the Transactions
	// that its Receipts are of.
	Header       *H   `json:"header"`
	Logs         *[]L `json:"logs"`
	Transactions *[]X `json:"transactions"`
}

type rpcBlock[T, W any] struct {
	Number                quantity    `json:"number"`
	Hash                  hash        `json:"hash"`
	ParentHash            hash        `json:"parentHash"`
	Timestamp             quantity    `json:"timestamp"`
	Miner                 address     `json:"miner"`
	GasUsed               quantity    `json:"gasUsed"`
	GasLimit              quantity    `json:"gasLimit"`
	BaseFeePerGas         bigQuantity `json:"baseFeePerGas"`
	Size                  quantity    `json:"size"`
	Nonce                 data        `json:"nonce"`
	Difficulty            bigQuantity `json:"difficulty"`
	TotalDifficulty       bigQuantity `json:"totalDifficulty"`
	ExtraData             data        `json:"extraData"`
	MixHash               hash        `json:"mixHash"`
	Sha3Uncles            hash        `json:"sha3Uncles"`
	LogsBloom             data        `json:"logsBloom"`
	TransactionsRoot      hash        `json:"transactionsRoot"`
	StateRoot             hash        `json:"stateRoot"`
	ReceiptsRoot          hash        `json:"receiptsRoot"`
	WithdrawalsRoot       hash        `json:"withdrawalsRoot"`
	BlobGasUsed           quantity    `json:"blobGasUsed"`
	ExcessBlobGas         quantity    `json:"excessBlobGas"`
	ParentBeaconBlockRoot hash        `json:"parentBeaconBlockRoot"`
	RequestsHash          hash        `json:"requestsHash"`
	Transactions          *[]T        `json:"transactions"`
	Withdrawals           *[]W        `json:"withdrawals"`
}

type rpcTx struct {
	BlockHash            hash        `json:"blockHash"`
	BlockNumber          quantity    `json:"blockNumber"`
	TransactionIndex     quantity    `json:"transactionIndex"`
	Hash                 hash        `json:"hash"`
	Type                 quantity    `json:"type"`
	From                 address     `json:"from"`
	To                   address     `json:"to"`
	Value                bigQuantity `json:"value"`
	Gas                  quantity    `json:"gas"`
	GasPrice             bigQuantity `json:"gasPrice"`
	MaxFeePerGas         bigQuantity `json:"maxFeePerGas"`
	MaxPriorityFeePerGas bigQuantity `json:"maxPriorityFeePerGas"`
	MaxFeePerBlobGas     bigQuantity `json:"maxFeePerBlobGas"`
	Nonce                quantity    `json:"nonce"`
	Input                data        `json:"input"`
}

type rpcWithdrawal struct {
	Index          quantity    `json:"index"`
	ValidatorIndex quantity    `json:"validatorIndex"`
	Address        address     `json:"address"`
	Amount         bigQuantity `json:"amount"`
}

type rpcReceipt[L any] struct {
	TransactionHash   hash        `json:"transactionHash"`
	TransactionIndex  quantity    `json:"transactionIndex"`
	BlockHash         hash        `json:"blockHash"`
	BlockNumber       quantity    `json:"blockNumber"`
	Type              quantity    `json:"type"`
	Status            quantity    `json:"status"`
	Root              data        `json:"root"`
	GasUsed           quantity    `json:"gasUsed"`
	CumulativeGasUsed quantity    `json:"cumulativeGasUsed"`
	EffectiveGasPrice bigQuantity `json:"effectiveGasPrice"`
	ContractAddress   address     `json:"contractAddress"`
	BlobGasUsed       quantity    `json:"blobGasUsed"`
	BlobGasPrice      bigQuantity `json:"blobGasPrice"`
	Logs              *[]L        `json:"logs"`
}

type rpcLog struct {
	Address          address  `json:"address"`
	Topics           *topics  `json:"topics"`
	Data             data     `json:"data"`
	LogIndex         quantity `json:"logIndex"`
	TransactionHash  hash     `json:"transactionHash"`
	TransactionIndex quantity `json:"transactionIndex"`
	BlockHash        hash     `json:"blockHash"`
	BlockNumber      quantity `json:"blockNumber"`
}

type (
	bundleMsg = rpcBundle[rpcBlock[rpcTx, rpcWithdrawal], rpcReceipt[rpcLog], rpcTraceResult,
		rpcBlock[hash, rpcWithdrawal], rpcLog, rpcTx]
	rawBundle  = rpcBundle[json.RawMessage, json.RawMessage, json.RawMessage, json.RawMessage, json.RawMessage, json.RawMessage]
	rawBlock   = rpcBlock[json.RawMessage, json.RawMessage]
	rawReceipt = rpcReceipt[json.RawMessage]
)

// maxTopics is what the EVM can emit (LOG0..LOG4); the logs table has no column for a fifth.
const maxTopics = 4

// EncodeBundle builds a bundle message from an eth_getBlockByNumber result with full transaction objects
// and the eth_getBlockReceipts result of the same block, and, when traces is not nil, the
// debug_traceBlockByNumber callTracer result of the block. It checks their shape (an object, arrays) and
// writes them as they are, whitespace included. Whether they are valid JSON, and that the receipts and
// traces belong to the block, is Decode's to check, which the producers run on every bundle before they
// publish it (backfill.Encode): checking the JSON here as well (a scan of every byte, as v1's json.Marshal of
// json.RawMessage did, compacting it too) cost 0.4 ms a mainnet block, a fifth of backfill's work per block.
func EncodeBundle(block, receipts, traces []byte) ([]byte, error) {
	if first(block) != '{' {
		return nil, errors.New("encode bundle: block is not a JSON object")
	}
	if first(receipts) != '[' {
		return nil, errors.New("encode bundle: receipts is not a JSON array")
	}
	if traces != nil && first(traces) != '[' {
		return nil, errors.New("encode bundle: traces is not a JSON array")
	}
	out := make([]byte, 0, len(`{"block":,"receipts":,"traces":}`)+len(block)+len(receipts)+len(traces))
	out = append(append(append(out, `{"block":`...), block...), `,"receipts":`...)
	out = append(out, receipts...)
	if traces != nil {
		out = append(append(out, `,"traces":`...), traces...)
	}
	return append(out, '}'), nil
}

// checkKey fails when a message's key is not its height (an empty key is not checked).
func checkKey(key []byte, number uint64, list string) *decodeError {
	if len(key) == 0 {
		return nil
	}
	if k, err := strconv.ParseUint(string(key), 10, 64); err != nil || k != number {
		return at{i: -1}.field("key", fmt.Errorf("%q is not %s.number %d", clip(key), list, number))
	}
	return nil
}

func first(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// BundleKey is the Kafka key of block number's bundle. Keying by height sends every version of a height
// (reorgs) to the same partition, in order.
func BundleKey(number uint64) []byte {
	return strconv.AppendUint(nil, number, 10)
}

func decodeBundle(key, value []byte) (chain.Rows, *decodeError) {
	var rows chain.Rows
	var msg bundleMsg
	if !decodeBundleFast(value, &msg) {
		msg = bundleMsg{}
		if err := unmarshalWire(value, &msg); err != nil {
			return rows, locateBundleError(value, err)
		}
	}
	top := at{i: -1}
	if msg.Header != nil {
		if msg.Block != nil {
			return rows, top.field("header", errors.New("a bundle has a block or, filtered, a header: not both"))
		}
		return decodeFiltered(key, &msg)
	}
	if msg.Block == nil {
		return rows, top.field("block", errMissing)
	}
	if msg.Receipts == nil {
		return rows, top.field("receipts", errMissing)
	}
	blk, receipts := msg.Block, *msg.Receipts
	c := conv{at: at{list: "block", i: -1}}
	number, blockHash, ts, txs, derr := blockStart(&c, key, blk)
	if derr != nil {
		return rows, derr
	}

	// One slab for the nullable integers of the message: 3 per transaction (gas used, cumulative gas used,
	// blob gas used) and 3 for the block.
	ints := make([]int64, 3*len(txs)+3)
	b := headerRow(&c, blk, number, blockHash, ts, ints[:3])
	b.TransactionCount = int32(len(txs))
	if c.err != nil {
		return rows, c.err
	}
	ints = ints[3:]
	if rows.Withdrawals, b.WithdrawalCount, derr = withdrawalRows(&c, blk.Withdrawals, number); derr != nil {
		return chain.Rows{}, derr
	}
	rows.Blocks = []chain.Block{b}

	rows.Transactions = make([]chain.Transaction, len(txs))
	for i := range txs {
		tx := &txs[i]
		c := conv{at: at{list: "block.transactions", i: i}}
		rows.Transactions[i] = txRow(&c, tx, int32(i), number, blockHash, ts)
		// A block's transactions repeat where they are; a copy that disagrees is not from this block.
		switch {
		case c.err != nil:
		case tx.BlockHash.ok && tx.BlockHash.v != blk.Hash.v:
			c.fail("blockHash", fmt.Errorf("%s is not block.hash %s", tx.BlockHash.v, blk.Hash.v))
		case tx.BlockNumber.ok && tx.BlockNumber.v != number:
			c.fail("blockNumber", fmt.Errorf("%d is not block.number %d", tx.BlockNumber.v, number))
		case tx.TransactionIndex.ok && tx.TransactionIndex.v != uint64(i):
			c.fail("transactionIndex", fmt.Errorf("%d is not the transaction's position %d", tx.TransactionIndex.v, i))
		}
		if c.err != nil {
			return chain.Rows{}, c.err
		}
	}

	if err := mergeReceipts(&rows, txs, receipts, blk.Hash.v, number, ints); err != nil {
		return chain.Rows{}, err
	}
	if msg.Traces != nil {
		var err *decodeError
		if rows.Traces, err = decodeTraces(rows.Transactions, *msg.Traces); err != nil {
			return chain.Rows{}, err
		}
	}
	return rows, nil
}

// blockStart reads what the rest of a block's decoding needs first: its number (which the key, when there is
// one, must be), hash, time and transactions list.
func blockStart[T, W any](c *conv, key []byte, blk *rpcBlock[T, W]) (number uint64, hash []byte, ts time.Time, txs []T, err *decodeError) {
	number = c.int64("number", &blk.Number)
	hash = c.hash("hash", &blk.Hash)
	ts = c.time("timestamp", &blk.Timestamp)
	if c.err != nil {
		return 0, nil, ts, nil, c.err
	}
	if err := checkKey(key, number, c.at.list); err != nil {
		return 0, nil, ts, nil, err
	}
	if blk.Transactions == nil {
		return 0, nil, ts, nil, c.at.field("transactions", errMissing)
	}
	if txs = *blk.Transactions; len(txs) > math.MaxInt32 {
		return 0, nil, ts, nil, c.at.field("transactions", errNotInt32)
	}
	return number, hash, ts, txs, nil
}

// headerRow is the block row of a block's header fields (all but its transaction count), with its number,
// hash and time already read; ints holds its 3 nullable integers.
func headerRow[T, W any](c *conv, blk *rpcBlock[T, W], number uint64, blockHash []byte, ts time.Time, ints []int64) chain.Block {
	return chain.Block{
		Number:                number,
		Hash:                  blockHash,
		ParentHash:            c.hash("parentHash", &blk.ParentHash),
		Timestamp:             ts,
		Miner:                 c.address("miner", &blk.Miner),
		GasUsed:               c.int64("gasUsed", &blk.GasUsed),
		GasLimit:              c.int64("gasLimit", &blk.GasLimit),
		BaseFeePerGas:         optBig(&blk.BaseFeePerGas),
		Size:                  c.optInt64("size", &blk.Size, &ints[0]),
		Nonce:                 optBytes(&blk.Nonce),
		Difficulty:            optBig(&blk.Difficulty),
		TotalDifficulty:       optBig(&blk.TotalDifficulty),
		ExtraData:             optBytes(&blk.ExtraData),
		MixHash:               optHash(&blk.MixHash),
		Sha3Uncles:            optHash(&blk.Sha3Uncles),
		LogsBloom:             optBytes(&blk.LogsBloom),
		TransactionsRoot:      optHash(&blk.TransactionsRoot),
		StateRoot:             optHash(&blk.StateRoot),
		ReceiptsRoot:          optHash(&blk.ReceiptsRoot),
		WithdrawalsRoot:       optHash(&blk.WithdrawalsRoot),
		BlobGasUsed:           c.optInt64("blobGasUsed", &blk.BlobGasUsed, &ints[1]),
		ExcessBlobGas:         c.optInt64("excessBlobGas", &blk.ExcessBlobGas, &ints[2]),
		ParentBeaconBlockRoot: optHash(&blk.ParentBeaconBlockRoot),
		RequestsHash:          optHash(&blk.RequestsHash),
	}
}

// txRow is the row of a transaction at index of its block, before its receipt.
func txRow(c *conv, tx *rpcTx, index int32, number uint64, blockHash []byte, ts time.Time) chain.Transaction {
	return chain.Transaction{
		BlockNumber:          number,
		TransactionIndex:     index,
		Hash:                 c.hash("hash", &tx.Hash),
		BlockHash:            blockHash,
		BlockTimestamp:       ts,
		FromAddress:          c.address("from", &tx.From),
		ToAddress:            optAddress(&tx.To),
		Value:                c.big("value", &tx.Value),
		Gas:                  c.int64("gas", &tx.Gas),
		GasPrice:             optBig(&tx.GasPrice),
		MaxFeePerGas:         optBig(&tx.MaxFeePerGas),
		MaxPriorityFeePerGas: optBig(&tx.MaxPriorityFeePerGas),
		MaxFeePerBlobGas:     optBig(&tx.MaxFeePerBlobGas),
		Type:                 c.txType("type", &tx.Type),
		Nonce:                c.int64("nonce", &tx.Nonce),
		Input:                c.bytes("input", &tx.Input),
	}
}

// withdrawalRows are the rows of a block's withdrawals and their count; nil, nil for a block without the
// field (before Shanghai).
func withdrawalRows(c *conv, list *[]rpcWithdrawal, number uint64) ([]chain.Withdrawal, *int32, *decodeError) {
	if list == nil {
		return nil, nil, nil
	}
	ws := *list
	if len(ws) > math.MaxInt32 {
		return nil, nil, c.at.field("withdrawals", errNotInt32)
	}
	n := int32(len(ws))
	out := make([]chain.Withdrawal, len(ws))
	for i := range ws {
		w := &ws[i]
		c := conv{at: at{list: "block.withdrawals", i: i}}
		out[i] = chain.Withdrawal{
			BlockNumber:    number,
			Index:          c.int64("index", &w.Index),
			Position:       int32(i),
			ValidatorIndex: c.int64("validatorIndex", &w.ValidatorIndex),
			Address:        c.address("address", &w.Address),
			AmountGwei:     c.big("amount", &w.Amount),
		}
		if c.err != nil {
			return nil, nil, c.err
		}
	}
	return out, &n, nil
}

// mergeReceipts puts each receipt's fields into its transaction's row and its logs into rows.Logs. The
// receipts must be exactly the block's: one per transaction, found by transactionIndex and confirmed by
// transactionHash, so that a receipts list of another block (or of another version of this height after a
// reorg) can never be stored under this block.
func mergeReceipts(rows *chain.Rows, txs []rpcTx, receipts []rpcReceipt[rpcLog], blockHash common.Hash,
	number uint64, ints []int64) *decodeError {
	if len(receipts) != len(txs) {
		return failWith(ReasonReceiptsMismatch,
			fmt.Errorf("block has %d transactions but the bundle has %d receipts", len(txs), len(receipts)))
	}
	mismatch := func(a at, field string, err error) *decodeError {
		return failWith(ReasonReceiptsMismatch, &FieldError{Path: a.path(field), Err: err})
	}
	// order[t] is the receipt of transaction t; usually receipts come in transaction order.
	order := make([]int32, len(txs))
	for t := range order {
		order[t] = -1
	}
	nlogs := 0
	statuses := make([]int16, len(txs))
	for j := range receipts {
		r := &receipts[j]
		c := conv{at: at{list: "receipts", i: j}}
		idx := c.int32("transactionIndex", &r.TransactionIndex)
		c.hash("transactionHash", &r.TransactionHash)
		if r.Logs == nil {
			c.fail("logs", errMissing)
		}
		if c.err != nil {
			return c.err
		}
		if int(idx) >= len(txs) {
			return mismatch(c.at, "transactionIndex", fmt.Errorf("%d is past the block's %d transactions", idx, len(txs)))
		}
		switch tx := &txs[idx]; {
		case order[idx] >= 0:
			return mismatch(c.at, "transactionIndex", fmt.Errorf("%d is also the index of receipts[%d]", idx, order[idx]))
		case r.TransactionHash.v != tx.Hash.v:
			return mismatch(c.at, "transactionHash", fmt.Errorf("%s is not block.transactions[%d].hash %s",
				r.TransactionHash.v, idx, tx.Hash.v))
		case r.BlockHash.ok && r.BlockHash.v != blockHash:
			return mismatch(c.at, "blockHash", fmt.Errorf("%s is not block.hash %s", r.BlockHash.v, blockHash))
		case r.BlockNumber.ok && r.BlockNumber.v != number:
			return mismatch(c.at, "blockNumber", fmt.Errorf("%d is not block.number %d", r.BlockNumber.v, number))
		case r.Type.ok && tx.Type.ok && r.Type.v != tx.Type.v:
			return mismatch(c.at, "type", fmt.Errorf("%d is not block.transactions[%d].type %d", r.Type.v, idx, tx.Type.v))
		}
		order[idx] = int32(j)
		nlogs += len(*r.Logs)

		if applyReceipt(&c, &rows.Transactions[idx], r, ints[3*int(idx):], &statuses[idx]); c.err != nil {
			return c.err
		}
	}

	rows.Logs = make([]chain.Log, 0, nlogs)
	ntopics := 0
	for _, r := range receipts {
		for k := range *r.Logs {
			ntopics += countTopics((*r.Logs)[k].Topics)
		}
	}
	topicSlab := make([][]byte, ntopics)
	blockTime := rows.Blocks[0].Timestamp
	var seen map[int32]struct{} // only built if log indexes are not increasing
	last := int32(-1)
	for t, j := range order {
		r := &receipts[j]
		tx := &rows.Transactions[t]
		for k := range *r.Logs {
			l := &(*r.Logs)[k]
			c := conv{at: at{list: "receipts", i: int(j), sub: "logs", j: k}}
			row := chain.Log{
				BlockNumber:      number,
				LogIndex:         c.int32("logIndex", &l.LogIndex),
				TransactionHash:  tx.Hash,
				TransactionIndex: int32(t),
				BlockTimestamp:   blockTime,
				Address:          c.address("address", &l.Address),
				Topics:           c.topicsOn("topics", l.Topics, &topicSlab),
				Data:             c.bytes("data", &l.Data),
				BlockHash:        rows.Blocks[0].Hash,
			}
			if c.err != nil {
				return c.err
			}
			switch {
			case l.TransactionHash.ok && l.TransactionHash.v != r.TransactionHash.v:
				return mismatch(c.at, "transactionHash", fmt.Errorf("%s is not the receipt's %s", l.TransactionHash.v, r.TransactionHash.v))
			case l.TransactionIndex.ok && l.TransactionIndex.v != uint64(t):
				return mismatch(c.at, "transactionIndex", fmt.Errorf("%d is not the receipt's %d", l.TransactionIndex.v, t))
			case l.BlockHash.ok && l.BlockHash.v != blockHash:
				return mismatch(c.at, "blockHash", fmt.Errorf("%s is not block.hash %s", l.BlockHash.v, blockHash))
			case l.BlockNumber.ok && l.BlockNumber.v != number:
				return mismatch(c.at, "blockNumber", fmt.Errorf("%d is not block.number %d", l.BlockNumber.v, number))
			}
			// logIndex is the key of the logs table within the block; a duplicate would fail the COPY.
			if row.LogIndex <= last || seen != nil {
				if seen == nil {
					seen = make(map[int32]struct{}, nlogs)
					for i := range rows.Logs {
						seen[rows.Logs[i].LogIndex] = struct{}{}
					}
				}
				if _, dup := seen[row.LogIndex]; dup {
					return c.at.field("logIndex", fmt.Errorf("%d appears twice in the block", row.LogIndex))
				}
				seen[row.LogIndex] = struct{}{}
			}
			last = max(last, row.LogIndex)
			rows.Logs = append(rows.Logs, row)
		}
	}
	return nil
}

// applyReceipt puts receipt r's fields into its transaction's row t; slots hold its 3 nullable integers and
// status its status.
func applyReceipt(c *conv, t *chain.Transaction, r *rpcReceipt[rpcLog], slots []int64, status *int16) {
	t.Status = c.status("status", &r.Status, status)
	t.Root = stateRoot(&r.Root)
	t.GasUsed = c.optInt64("gasUsed", &r.GasUsed, &slots[0])
	t.CumulativeGasUsed = c.optInt64("cumulativeGasUsed", &r.CumulativeGasUsed, &slots[1])
	t.EffectiveGasPrice = optBig(&r.EffectiveGasPrice)
	t.ContractAddress = contractAddress(&r.ContractAddress)
	t.BlobGasUsed = c.optInt64("blobGasUsed", &r.BlobGasUsed, &slots[2])
	t.BlobGasPrice = optBig(&r.BlobGasPrice)
	if !r.GasUsed.ok {
		c.fail("gasUsed", errMissing)
	}
	if !r.CumulativeGasUsed.ok {
		c.fail("cumulativeGasUsed", errMissing)
	}
}

// locateBundleError finds where a message that encoding/json rejected goes wrong, with list indices, by
// decoding it again one element at a time. Only failing messages pay for this.
func locateBundleError(value []byte, err error) *decodeError {
	top := at{i: -1}
	var b rawBundle
	if e := decodeAt(top, value, &b); e != nil {
		return e
	}
	if b.Block != nil {
		var blk rawBlock
		if e := decodeAt(at{list: "block", i: -1}, *b.Block, &blk); e != nil {
			return e
		}
		if blk.Transactions != nil {
			for i, raw := range *blk.Transactions {
				a := at{list: "block.transactions", i: i}
				if first(raw) == '"' {
					return a.field("", errors.New("is a transaction hash: a bundle needs full transaction objects "+
						"(eth_getBlockByNumber with true as second parameter)"))
				}
				if e := decodeAt(a, raw, &rpcTx{}); e != nil {
					return e
				}
			}
		}
		if blk.Withdrawals != nil {
			for i, raw := range *blk.Withdrawals {
				if e := decodeAt(at{list: "block.withdrawals", i: i}, raw, &rpcWithdrawal{}); e != nil {
					return e
				}
			}
		}
	}
	if b.Receipts != nil {
		for i, raw := range *b.Receipts {
			var r rawReceipt
			if e := decodeAt(at{list: "receipts", i: i}, raw, &r); e != nil {
				return e
			}
			if r.Logs == nil {
				continue
			}
			for j, raw := range *r.Logs {
				if e := decodeAt(at{list: "receipts", i: i, sub: "logs", j: j}, raw, &rpcLog{}); e != nil {
					return e
				}
			}
		}
	}
	if b.Traces != nil {
		for i, raw := range *b.Traces {
			if e := locateTraceError(i, raw); e != nil {
				return e
			}
		}
	}
	if e := locateFilteredError(&b); e != nil {
		return e
	}
	return top.jsonError(err)
}
