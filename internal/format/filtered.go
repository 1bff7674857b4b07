package format

import (
	stdjson "encoding/json"
	"errors"
	"fmt"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// A filtered bundle is what filtered mode (`chainsink backfill --config`) publishes for a height: the
// block's header in place of the block, only the logs that the configuration's contract sets match, and the
// transactions (with their receipts) that its sets with calls match. docs/formats.md describes it.
//
//	{"header": eth_getBlockByNumber(N, false), "logs": [eth_getLogs entries of N],
//	 "transactions": [full transaction objects], "receipts": [their receipts]}
//
// Its block row is marked filtered, with the header's transaction count; its logs keep their own log and
// transaction indexes, checked against the header's transaction hashes. A receipt's own logs are not stored
// (only "logs" are: what the filter matched).

// EncodeFilteredBundle builds a filtered bundle from an eth_getBlockByNumber(N, false) result, the
// eth_getLogs entries of block N to keep, and, both nil or both arrays, the full objects of the transactions
// to keep and their receipts. Like EncodeBundle it checks the shapes and writes the JSON as it is; Decode
// checks the rest.
func EncodeFilteredBundle(header []byte, logs, txs, receipts []stdjson.RawMessage) ([]byte, error) {
	if first(header) != '{' {
		return nil, errors.New("encode filtered bundle: header is not a JSON object")
	}
	if (txs == nil) != (receipts == nil) || len(txs) != len(receipts) {
		return nil, fmt.Errorf("encode filtered bundle: %d transactions but %d receipts", len(txs), len(receipts))
	}
	n := len(header) + 64
	for _, l := range [][]stdjson.RawMessage{logs, txs, receipts} {
		for _, x := range l {
			n += len(x) + 1
		}
	}
	out := make([]byte, 0, n)
	out = append(append(append(out, `{"header":`...), header...), `,"logs":`...)
	out = appendArray(out, logs)
	if txs != nil {
		out = appendArray(append(out, `,"transactions":`...), txs)
		out = appendArray(append(out, `,"receipts":`...), receipts)
	}
	return append(out, '}'), nil
}

func appendArray(out []byte, items []stdjson.RawMessage) []byte {
	out = append(out, '[')
	for i, x := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, x...)
	}
	return append(out, ']')
}

func decodeFiltered(key []byte, msg *bundleMsg) (chain.Rows, *decodeError) {
	var rows chain.Rows
	top := at{i: -1}
	switch {
	case msg.Logs == nil:
		return rows, top.field("logs", errMissing)
	case msg.Traces != nil:
		return rows, top.field("traces", errors.New("a filtered bundle has no traces"))
	case (msg.Transactions == nil) != (msg.Receipts == nil):
		return rows, top.field("receipts", errors.New("a filtered bundle has both transactions and receipts, or neither"))
	}
	hdr := msg.Header
	c := conv{at: at{list: "header", i: -1}}
	number, blockHash, ts, hashes, derr := blockStart(&c, key, hdr)
	if derr != nil {
		return rows, derr
	}
	var txs []rpcTx
	var receipts []rpcReceipt[rpcLog]
	if msg.Transactions != nil {
		txs, receipts = *msg.Transactions, *msg.Receipts
	}
	ints := make([]int64, 3+3*len(txs))
	b := headerRow(&c, hdr, number, blockHash, ts, ints[:3])
	b.TransactionCount, b.Filtered = int32(len(hashes)), true
	if c.err != nil {
		return rows, c.err
	}
	if rows.Withdrawals, b.WithdrawalCount, derr = withdrawalRows(&c, hdr.Withdrawals, number); derr != nil {
		return chain.Rows{}, derr
	}
	rows.Blocks = []chain.Block{b}

	// of checks that an item names one of the block's transactions, by index and hash.
	of := func(c *conv, index *quantity, h *hash) int32 {
		if !index.ok {
			c.fail("transactionIndex", errMissing)
		}
		i := c.int32("transactionIndex", index)
		if c.err == nil && int(i) >= len(hashes) {
			c.fail("transactionIndex", fmt.Errorf("%d is past the block's %d transactions", i, len(hashes)))
		}
		if c.err == nil && (!h.ok || h.v != hashes[i].v) {
			c.fail("transactionHash", fmt.Errorf("%s is not header.transactions[%d] %s", h.v, i, hashes[i].v))
		}
		return i
	}
	rows.Transactions = make([]chain.Transaction, len(txs))
	statuses := make([]int16, len(txs))
	last := int32(-1)
	for i := range txs {
		tx := &txs[i]
		c := conv{at: at{list: "transactions", i: i}}
		idx := of(&c, &tx.TransactionIndex, &tx.Hash)
		switch {
		case c.err != nil:
		case idx <= last:
			c.fail("transactionIndex", fmt.Errorf("%d does not follow the previous transaction's %d", idx, last))
		case tx.BlockHash.ok && tx.BlockHash.v != hdr.Hash.v:
			c.fail("blockHash", fmt.Errorf("%s is not header.hash %s", tx.BlockHash.v, hdr.Hash.v))
		}
		last = idx
		rows.Transactions[i] = txRow(&c, tx, idx, number, blockHash, ts)
		if c.err != nil {
			return chain.Rows{}, c.err
		}
		r := &receipts[i]
		rc := conv{at: at{list: "receipts", i: i}}
		rc.hash("transactionHash", &r.TransactionHash)
		switch {
		case rc.err != nil:
			return chain.Rows{}, rc.err
		case r.TransactionHash.v != tx.Hash.v:
			return chain.Rows{}, failWith(ReasonReceiptsMismatch, &FieldError{Path: rc.at.path("transactionHash"),
				Err: fmt.Errorf("%s is not transactions[%d].hash %s", r.TransactionHash.v, i, tx.Hash.v)})
		case r.BlockHash.ok && r.BlockHash.v != hdr.Hash.v:
			return chain.Rows{}, failWith(ReasonReceiptsMismatch, &FieldError{Path: rc.at.path("blockHash"),
				Err: fmt.Errorf("%s is not header.hash %s", r.BlockHash.v, hdr.Hash.v)})
		}
		if applyReceipt(&rc, &rows.Transactions[i], r, ints[3+3*i:], &statuses[i]); rc.err != nil {
			return chain.Rows{}, rc.err
		}
	}

	logs := *msg.Logs
	rows.Logs = make([]chain.Log, len(logs))
	ntopics := 0
	for k := range logs {
		ntopics += countTopics(logs[k].Topics)
	}
	topicSlab := make([][]byte, ntopics)
	seen := make(map[int32]struct{}, len(logs))
	for k := range logs {
		l := &logs[k]
		c := conv{at: at{list: "logs", i: k}}
		t := of(&c, &l.TransactionIndex, &l.TransactionHash)
		row := chain.Log{
			BlockNumber:      number,
			LogIndex:         c.int32("logIndex", &l.LogIndex),
			TransactionHash:  c.hash("transactionHash", &l.TransactionHash),
			TransactionIndex: t,
			BlockTimestamp:   ts,
			Address:          c.address("address", &l.Address),
			Topics:           c.topicsOn("topics", l.Topics, &topicSlab),
			Data:             c.bytes("data", &l.Data),
			BlockHash:        blockHash,
		}
		switch {
		case c.err != nil:
		case !l.LogIndex.ok:
			c.fail("logIndex", errMissing)
		case l.BlockHash.ok && l.BlockHash.v != hdr.Hash.v:
			c.fail("blockHash", fmt.Errorf("%s is not header.hash %s", l.BlockHash.v, hdr.Hash.v))
		case l.BlockNumber.ok && l.BlockNumber.v != number:
			c.fail("blockNumber", fmt.Errorf("%d is not header.number %d", l.BlockNumber.v, number))
		}
		if c.err != nil {
			return chain.Rows{}, c.err
		}
		if _, dup := seen[row.LogIndex]; dup {
			return chain.Rows{}, c.at.field("logIndex", fmt.Errorf("%d appears twice in the block", row.LogIndex))
		}
		seen[row.LogIndex] = struct{}{}
		rows.Logs[k] = row
	}
	return rows, nil
}

// locateFilteredError is locateBundleError for the parts of a filtered bundle.
func locateFilteredError(b *rawBundle) *decodeError {
	if b.Header != nil {
		var blk rawBlock
		if e := decodeAt(at{list: "header", i: -1}, *b.Header, &blk); e != nil {
			return e
		}
		if blk.Transactions != nil {
			for i, raw := range *blk.Transactions {
				if e := decodeAt(at{list: "header.transactions", i: i}, raw, &hash{}); e != nil {
					return e
				}
			}
		}
	}
	for _, list := range []struct {
		name  string
		items *[]json.RawMessage
		into  func() any
	}{{"logs", b.Logs, func() any { return &rpcLog{} }}, {"transactions", b.Transactions, func() any { return &rpcTx{} }}} {
		if list.items == nil {
			continue
		}
		for i, raw := range *list.items {
			if e := decodeAt(at{list: list.name, i: i}, raw, list.into()); e != nil {
				return e
			}
		}
	}
	return nil
}
