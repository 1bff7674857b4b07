package backfill_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/rpcreplay"
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

// BenchmarkFetchMainnet is backfill's work per mainnet-sized block from the request to the checked bundle:
// mainnet block 17173049 (116 transactions, its block and receipts as the node sent them) fetched from an
// in-process replay of the node and encoded and checked, once through go-ethereum's client and once through
// the HTTP client backfill uses for http(s) nodes. The replay server's work is the same in both.
//
//	go test ./internal/backfill -run '^$' -bench FetchMainnet
func BenchmarkFetchMainnet(b *testing.B) {
	bundle, msg := mainnetBundle(b)
	const n = 17173049
	answers := rpcreplay.NewAnswers()
	num := json.RawMessage(fmt.Sprintf(`"%s"`, hexutil.EncodeUint64(n)))
	for _, a := range []rpcreplay.Answer{
		{Method: "eth_getBlockByNumber", Params: json.RawMessage(`[` + string(num) + `,true]`), Result: msg.Block},
		{Method: "eth_getBlockReceipts", Params: json.RawMessage(`[` + string(num) + `]`), Result: msg.Receipts},
	} {
		if err := answers.Add(a); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(&rpcreplay.Server{Answers: answers})
	defer srv.Close()
	ctx := context.Background()
	geth, err := rpc.DialHTTP(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer geth.Close()
	ours, err := backfill.DialRPC(ctx, srv.URL, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ours.Close()
	for _, tc := range []struct {
		name string
		f    *backfill.RPCFetcher
	}{{"go-ethereum client", backfill.NewRPCFetcher(geth, 0, nil)}, {"httpCaller", ours}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bundle)))
			b.ReportAllocs()
			for b.Loop() {
				blocks, err := tc.f.Fetch(ctx, n, n)
				if err != nil {
					b.Fatal(err)
				}
				if _, rows, err := backfill.EncodeRows(blocks[0]); err != nil || len(rows.Transactions) != 116 {
					b.Fatalf("%d transactions, %v", len(rows.Transactions), err)
				}
			}
		})
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
