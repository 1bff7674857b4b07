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
	bundle, msg := mainnetBundle(b)
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

// mainnetBundle is the bundle of mainnet block 17173049 and the node's block and receipts it holds.
func mainnetBundle(b *testing.B) (bundle []byte, msg struct{ Block, Receipts json.RawMessage }) {
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	if _, bundle, err = fixtures.Bundle17173049(root); err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(bundle, &msg); err != nil {
		b.Fatal(err)
	}
	return bundle, msg
}
