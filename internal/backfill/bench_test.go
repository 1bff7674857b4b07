package backfill_test

import (
	"encoding/json"
	"testing"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/fixtures"
)

// BenchmarkEncodeRows is backfill's own work per block once the node has answered: the bundle of mainnet
// block 17173049 (116 transactions) built from the node's block and receipts and decoded to check it.
func BenchmarkEncodeRows(b *testing.B) {
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	_, bundle, err := fixtures.Bundle17173049(root)
	if err != nil {
		b.Fatal(err)
	}
	var msg struct {
		Block    json.RawMessage `json:"block"`
		Receipts json.RawMessage `json:"receipts"`
	}
	if err := json.Unmarshal(bundle, &msg); err != nil {
		b.Fatal(err)
	}
	blk := backfill.Block{Number: 17173049, Block: msg.Block, Receipts: msg.Receipts}
	b.SetBytes(int64(len(bundle)))
	b.ReportAllocs()
	txs := 0
	for b.Loop() {
		_, rows, err := backfill.EncodeRows(blk)
		if err != nil {
			b.Fatal(err)
		}
		txs = len(rows.Transactions)
	}
	if txs != 116 {
		b.Fatalf("%d transactions", txs)
	}
}
