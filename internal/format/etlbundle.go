package format

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/common/hexutil"
	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// BundleFromETLItems rebuilds the bundle message of one block from its ethereum-etl items (one JSON item per
// element; the block, its transactions and its logs; other item types are skipped). It is a utility for
// tests, benchmarks and demos, which have mainnet blocks as ethereum-etl files but no node to ask; chainsink
// never calls it on its data path.
//
// The result is what a node would answer, in RPC field names and hex quantities, less what ethereum-etl does
// not carry. Of that, what Decode stores is left out (mixHash, blob versioned hashes, requests hash, parent
// beacon root), so that decoding the bundle gives exactly the rows of decoding the items; what Decode skips
// is filled with zeros of the right shape (v, r, s, yParity, access lists, receipt blooms, uncles), so that
// the message has a realistic size for benchmarks. The zero signatures and blooms are not valid data.
func BundleFromETLItems(items [][]byte) ([]byte, error) {
	var all chain.Rows
	for i, item := range items {
		rows, err := decodeETL(item)
		if err != nil {
			return nil, fmt.Errorf("rebuild bundle from ethereum-etl items: item %d: %s: %w", i, err.reason, err.err)
		}
		all.Add(&rows)
	}
	block, receipts, err := rpcFromRows(&all)
	if err != nil {
		return nil, fmt.Errorf("rebuild bundle from ethereum-etl items: %w", err)
	}
	return EncodeBundle(block, receipts, nil)
}

type object = map[string]any

var (
	zeroQuantity = (*hexutil.Big)(new(big.Int))
	zeroBloom    = hexutil.Bytes(make([]byte, 256))
)

func rpcFromRows(r *chain.Rows) (block, receipts json.RawMessage, err error) {
	if len(r.Blocks) != 1 {
		return nil, nil, fmt.Errorf("want the items of exactly one block, have %d block items", len(r.Blocks))
	}
	b := &r.Blocks[0]
	txs := slices.Clone(r.Transactions)
	slices.SortFunc(txs, func(x, y chain.Transaction) int { return int(x.TransactionIndex) - int(y.TransactionIndex) })
	if len(txs) != int(b.TransactionCount) {
		return nil, nil, fmt.Errorf("block %d has transaction_count %d but there are %d transaction items",
			b.Number, b.TransactionCount, len(txs))
	}
	logs := make([][]chain.Log, len(txs))
	for _, l := range r.Logs {
		if l.BlockNumber != b.Number || int(l.TransactionIndex) >= len(txs) {
			return nil, nil, fmt.Errorf("log %d of block %d, transaction %d, is not of block %d",
				l.LogIndex, l.BlockNumber, l.TransactionIndex, b.Number)
		}
		logs[l.TransactionIndex] = append(logs[l.TransactionIndex], l)
	}

	rpcTxs := make([]object, len(txs))
	rpcReceipts := make([]object, len(txs))
	for i := range txs {
		t := &txs[i]
		if t.BlockNumber != b.Number || int(t.TransactionIndex) != i || string(t.BlockHash) != string(b.Hash) {
			return nil, nil, fmt.Errorf("transaction %x (block %d, index %d) is not transaction %d of block %d",
				t.Hash, t.BlockNumber, t.TransactionIndex, i, b.Number)
		}
		if t.GasUsed == nil || t.CumulativeGasUsed == nil {
			return nil, nil, fmt.Errorf("transaction %x has no receipt fields: a bundle needs receipts", t.Hash)
		}
		rpcTxs[i] = rpcTxObject(t)
		rpcReceipts[i] = rpcReceiptObject(t, logs[i])
	}

	blk := object{
		"number":       hexutil.Uint64(b.Number),
		"hash":         hexutil.Bytes(b.Hash),
		"parentHash":   hexutil.Bytes(b.ParentHash),
		"timestamp":    hexutil.Uint64(b.Timestamp.Unix()),
		"miner":        hexutil.Bytes(b.Miner),
		"gasUsed":      hexutil.Uint64(b.GasUsed),
		"gasLimit":     hexutil.Uint64(b.GasLimit),
		"transactions": rpcTxs,
		"uncles":       []string{},
	}
	putBig(blk, "baseFeePerGas", b.BaseFeePerGas)
	putBig(blk, "difficulty", b.Difficulty)
	putBig(blk, "totalDifficulty", b.TotalDifficulty)
	putInt(blk, "size", b.Size)
	putInt(blk, "blobGasUsed", b.BlobGasUsed)
	putInt(blk, "excessBlobGas", b.ExcessBlobGas)
	putBytes(blk, "nonce", b.Nonce)
	putBytes(blk, "extraData", b.ExtraData)
	putBytes(blk, "sha3Uncles", b.Sha3Uncles)
	putBytes(blk, "logsBloom", b.LogsBloom)
	putBytes(blk, "transactionsRoot", b.TransactionsRoot)
	putBytes(blk, "stateRoot", b.StateRoot)
	putBytes(blk, "receiptsRoot", b.ReceiptsRoot)
	putBytes(blk, "withdrawalsRoot", b.WithdrawalsRoot)
	if b.WithdrawalCount != nil {
		ws := make([]object, 0, len(r.Withdrawals))
		for _, w := range r.Withdrawals {
			ws = append(ws, object{
				"index":          hexutil.Uint64(w.Index),
				"validatorIndex": hexutil.Uint64(w.ValidatorIndex),
				"address":        hexutil.Bytes(w.Address),
				"amount":         (*hexutil.Big)(w.AmountGwei),
			})
		}
		blk["withdrawals"] = ws
	}
	if block, err = json.Marshal(blk); err != nil {
		return nil, nil, fmt.Errorf("encode block: %w", err)
	}
	if receipts, err = json.Marshal(rpcReceipts); err != nil {
		return nil, nil, fmt.Errorf("encode receipts: %w", err)
	}
	return block, receipts, nil
}

func rpcTxObject(t *chain.Transaction) object {
	o := object{
		"blockHash":        hexutil.Bytes(t.BlockHash),
		"blockNumber":      hexutil.Uint64(t.BlockNumber),
		"blockTimestamp":   hexutil.Uint64(t.BlockTimestamp.Unix()),
		"transactionIndex": hexutil.Uint64(t.TransactionIndex),
		"hash":             hexutil.Bytes(t.Hash),
		"type":             hexutil.Uint64(t.Type),
		"from":             hexutil.Bytes(t.FromAddress),
		"to":               nil,
		"value":            (*hexutil.Big)(t.Value),
		"gas":              hexutil.Uint64(t.Gas),
		"nonce":            hexutil.Uint64(t.Nonce),
		"input":            hexutil.Bytes(t.Input),
		"v":                zeroQuantity,
		"r":                zeroQuantity,
		"s":                zeroQuantity,
	}
	if t.ToAddress != nil {
		o["to"] = hexutil.Bytes(t.ToAddress)
	}
	putBig(o, "gasPrice", t.GasPrice)
	putBig(o, "maxFeePerGas", t.MaxFeePerGas)
	putBig(o, "maxPriorityFeePerGas", t.MaxPriorityFeePerGas)
	putBig(o, "maxFeePerBlobGas", t.MaxFeePerBlobGas)
	if t.Type != 0 {
		o["accessList"] = []object{}
		o["yParity"] = hexutil.Uint64(0)
	}
	return o
}

func rpcReceiptObject(t *chain.Transaction, logs []chain.Log) object {
	slices.SortFunc(logs, func(x, y chain.Log) int { return int(x.LogIndex) - int(y.LogIndex) })
	rpcLogs := make([]object, len(logs))
	for i, l := range logs {
		topics := make([]hexutil.Bytes, len(l.Topics))
		for j, tp := range l.Topics {
			topics[j] = tp
		}
		rpcLogs[i] = object{
			"address":          hexutil.Bytes(l.Address),
			"topics":           topics,
			"data":             hexutil.Bytes(l.Data),
			"blockNumber":      hexutil.Uint64(l.BlockNumber),
			"blockHash":        hexutil.Bytes(t.BlockHash),
			"blockTimestamp":   hexutil.Uint64(l.BlockTimestamp.Unix()),
			"transactionHash":  hexutil.Bytes(t.Hash),
			"transactionIndex": hexutil.Uint64(l.TransactionIndex),
			"logIndex":         hexutil.Uint64(l.LogIndex),
			"removed":          false,
		}
	}
	o := object{
		"blockHash":        hexutil.Bytes(t.BlockHash),
		"blockNumber":      hexutil.Uint64(t.BlockNumber),
		"transactionHash":  hexutil.Bytes(t.Hash),
		"transactionIndex": hexutil.Uint64(t.TransactionIndex),
		"from":             hexutil.Bytes(t.FromAddress),
		"to":               nil,
		"type":             hexutil.Uint64(t.Type),
		"contractAddress":  nil,
		"logs":             rpcLogs,
		"logsBloom":        zeroBloom,
	}
	if t.ToAddress != nil {
		o["to"] = hexutil.Bytes(t.ToAddress)
	}
	if t.ContractAddress != nil {
		o["contractAddress"] = hexutil.Bytes(t.ContractAddress)
	}
	if t.Status != nil {
		o["status"] = hexutil.Uint64(*t.Status)
	}
	putBytes(o, "root", t.Root)
	putInt(o, "gasUsed", t.GasUsed)
	putInt(o, "cumulativeGasUsed", t.CumulativeGasUsed)
	putInt(o, "blobGasUsed", t.BlobGasUsed)
	putBig(o, "effectiveGasPrice", t.EffectiveGasPrice)
	putBig(o, "blobGasPrice", t.BlobGasPrice)
	return o
}

func putBig(o object, k string, v *big.Int) {
	if v != nil {
		o[k] = (*hexutil.Big)(v)
	}
}

func putInt(o object, k string, v *int64) {
	if v != nil {
		o[k] = hexutil.Uint64(*v)
	}
}

func putBytes(o object, k string, v []byte) {
	if v != nil {
		o[k] = hexutil.Bytes(v)
	}
}
