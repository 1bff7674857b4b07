package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/rpcreplay"
	"github.com/chainsink/chainsink/internal/typed"
)

// BenchmarkFilteredBackfill is the producer side of `make bench-rpc` in process, for profiles: one op
// fetches 200 blocks of the Ping chain (10,000 events) with a FilteredFetcher from a replay of the node, in
// batches of 50, and encodes and checks each block's filtered bundle, as backfill does before it publishes.
//
//	go test ./internal/bench -run '^$' -bench FilteredBackfill -cpuprofile cpu.out
func BenchmarkFilteredBackfill(b *testing.B) {
	ctx := context.Background()
	const blocks, batch = 200, 50
	sim, url, contract, head, err := pingChain(ctx, blocks)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Ping.json"), []byte(pingABI), 0o644); err != nil {
		b.Fatal(err)
	}
	reg, err := abi.Default()
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.LoadDir(dir); err != nil {
		b.Fatal(err)
	}
	ts, err := typed.CompileYAML("ping.yaml", []byte(fmt.Sprintf("contracts:\n  - {name: ping, abi: Ping, address: %q, events: [Ping]}\n",
		strings.ToLower(contract.Hex()))), reg)
	if err != nil {
		b.Fatal(err)
	}
	fetchAll := func(rpcURL string) int {
		node, err := backfill.DialRPC(ctx, rpcURL, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer node.Close()
		_, logs := fetchChain(b, backfill.NewFilteredFetcher(node, ts.Filter()), head, batch)
		return logs
	}
	rec := rpcreplay.NewRecorder(url)
	live := httptest.NewServer(rec)
	defer live.Close()
	if n := fetchAll(live.URL); n != (blocks)*RPCCallsPerBlock*pingsPerCall {
		b.Fatalf("%d logs fetched, want %d", n, blocks*RPCCallsPerBlock*pingsPerCall)
	}
	replay := httptest.NewServer(&rpcreplay.Server{Answers: rec.Answers})
	defer replay.Close()
	b.ResetTimer()
	for range b.N {
		fetchAll(replay.URL)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*int(head+1)), "ms/block")
}

// BenchmarkFullBackfill is full mode's producer side of `make bench-rpc` in process: one op fetches the 200
// blocks of the Ping chain with their receipts from a replay of the node, in batches of 10 (backfill's
// default), and encodes and checks each block's bundle. Its sub-benchmarks read the answers through
// go-ethereum's client and through the HTTP client backfill uses for http(s) nodes; the replay server's work
// (in the same process) is the same in both, so their difference is backfill's.
//
//	go test ./internal/bench -run '^$' -bench FullBackfill -cpuprofile cpu.out
func BenchmarkFullBackfill(b *testing.B) {
	ctx := context.Background()
	const blocks, batch = 200, 10
	sim, url, _, head, err := pingChain(ctx, blocks)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	rec := rpcreplay.NewRecorder(url)
	live := httptest.NewServer(rec)
	defer live.Close()
	fetchAll := func(f *backfill.RPCFetcher) int {
		txs, _ := fetchChain(b, f, head, batch)
		return txs
	}
	recording, err := backfill.DialRPC(ctx, live.URL, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	if n := fetchAll(recording); n != blocks*RPCCallsPerBlock+1 {
		b.Fatalf("%d transactions fetched, want %d", n, blocks*RPCCallsPerBlock+1)
	}
	recording.Close()
	replay := httptest.NewServer(&rpcreplay.Server{Answers: rec.Answers})
	defer replay.Close()
	for _, tc := range bothClients(b, replay.URL) {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				fetchAll(tc.f)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*int(head+1)), "ms/block")
		})
	}
}

// fetchChain fetches blocks 0..head with f in batches and encodes and checks each block's bundle, as backfill
// does before it publishes; it returns the transactions and logs of the bundles.
func fetchChain(b *testing.B, f backfill.Fetcher, head, batch uint64) (txs, logs int) {
	ctx := context.Background()
	for lo := uint64(0); lo <= head; lo += batch {
		got, err := f.Fetch(ctx, lo, min(lo+batch-1, head))
		if err != nil {
			b.Fatal(err)
		}
		for _, blk := range got {
			_, rows, err := backfill.EncodeRows(blk)
			if err != nil {
				b.Fatal(err)
			}
			txs, logs = txs+len(rows.Transactions), logs+len(rows.Logs)
		}
	}
	return txs, logs
}

// BenchmarkFetchMainnet is backfill's work per mainnet-sized block from the request to the checked bundle:
// mainnet block 17173049 (116 transactions, its block and receipts as the node sent them) fetched from an
// in-process replay of the node and encoded and checked, through each client (bothClients). The replay
// server's work is the same in both.
//
//	go test ./internal/bench -run '^$' -bench FetchMainnet
func BenchmarkFetchMainnet(b *testing.B) {
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	_, bundle, err := fixtures.Bundle17173049(root)
	if err != nil {
		b.Fatal(err)
	}
	var msg struct{ Block, Receipts json.RawMessage }
	if err := json.Unmarshal(bundle, &msg); err != nil {
		b.Fatal(err)
	}
	const n = 17173049
	answers := rpcreplay.NewAnswers()
	num := `"` + hexutil.EncodeUint64(n) + `"`
	for _, a := range []rpcreplay.Answer{
		{Method: "eth_getBlockByNumber", Params: json.RawMessage(`[` + num + `,true]`), Result: msg.Block},
		{Method: "eth_getBlockReceipts", Params: json.RawMessage(`[` + num + `]`), Result: msg.Receipts},
	} {
		if err := answers.Add(a); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(&rpcreplay.Server{Answers: answers})
	defer srv.Close()
	for _, tc := range bothClients(b, srv.URL) {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bundle)))
			b.ReportAllocs()
			for b.Loop() {
				blocks, err := tc.f.Fetch(context.Background(), n, n)
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

// bothClients are fetchers of the node at url through go-ethereum's JSON-RPC client and through the HTTP
// client backfill uses for http(s) nodes, closed when b ends.
func bothClients(b *testing.B, url string) []struct {
	name string
	f    *backfill.RPCFetcher
} {
	geth, err := rpc.DialHTTP(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(geth.Close)
	ours, err := backfill.DialRPC(context.Background(), url, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ours.Close)
	return []struct {
		name string
		f    *backfill.RPCFetcher
	}{{"go-ethereum client", backfill.NewRPCFetcher(geth, 0, nil)}, {"httpCaller", ours}}
}
