package tokens_test

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/tokens"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// tokenNode answers every token's name() and symbol() with "T", decimals() with 6 and totalSupply() with the
// block number asked, so that an item says which block it was read at.
type tokenNode struct{}

func (n *tokenNode) Call(args callArgs, block string) (hexutil.Bytes, error) {
	word := func(v uint64) []byte { return common.LeftPadBytes(new(big.Int).SetUint64(v).Bytes(), 32) }
	switch hexutil.Encode(args.Data) {
	case "0x06fdde03", "0x95d89b41":
		return append(append(word(32), word(1)...), common.RightPadBytes([]byte("T"), 32)...), nil
	case "0x313ce567":
		return word(6), nil
	}
	return word(hexutil.MustDecodeUint64(block)), nil
}

// published records what a Watcher publishes; Kafka itself is the e2e tests' (TestBackfillPublishesTokens).
type published struct {
	mu    sync.Mutex
	items []string // address@block
}

func (p *published) Publish(_ context.Context, key, value []byte, done func(error)) error {
	rows, fail := format.Decode(format.EthereumETL, nil, value)
	if fail != nil {
		return fail.Err
	}
	tok := rows.Tokens[0]
	p.mu.Lock()
	p.items = append(p.items, strings.ToLower(string(key))+"@"+tok.TotalSupply.String())
	p.mu.Unlock()
	go done(nil)
	return nil
}

func (p *published) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.items
	p.items = nil
	return out
}

var transferTopic = crypto.Keccak256([]byte("Transfer(address,address,uint256)"))

// transfers is one block's rows with an ERC-20 Transfer log of each token.
func transfers(block uint64, tokens ...common.Address) chain.Rows {
	var r chain.Rows
	for i, a := range tokens {
		r.Logs = append(r.Logs, chain.Log{BlockNumber: block, LogIndex: int32(i), Address: a.Bytes(),
			Topics: [][]byte{transferTopic, make([]byte, 32), make([]byte, 32)}, Data: make([]byte, 32)})
	}
	return r
}

func addr(b byte) common.Address { return common.Address{19: b} }

func hexAt(a common.Address, block string) string { return strings.ToLower(a.Hex()) + "@" + block }

// TestWatcherPublishesEachTokenOnceAtItsFirstTransfer: a token is read at the block of its first transfer in
// the batch and not again; a batch that comes after a higher one publishes the token again at its lower
// block (what the store keeps); a token the store has read is left alone; a failed read gives its claims up,
// so that the retry reads them.
func TestWatcherPublishesEachTokenOnceAtItsFirstTransfer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The node behind a switch that answers 503 while it is down, as a node behind a load balancer does.
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", &tokenNode{}); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.Close(); srv.Stop() })
	client, err := rpc.Dial(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	pub := &published{}
	s, _ := pgtest.Open(t)
	w := tokens.NewWatcher(tokens.NewReader(client, 0), pub, s.Pool(), nil)
	expect := func(what string, want ...string) {
		t.Helper()
		got := pub.take()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: published %v, want %v", what, got, want)
		}
	}
	x, y, z, v := addr(1), addr(2), addr(3), addr(4)

	if err := w.Observe(ctx, []chain.Rows{transfers(10, x, x), transfers(11, y, x)}); err != nil {
		t.Fatal(err)
	}
	expect("first batch", hexAt(x, "10"), hexAt(y, "11"))
	if err := w.Observe(ctx, []chain.Rows{transfers(12, x, z)}); err != nil {
		t.Fatal(err)
	}
	expect("second batch", hexAt(z, "12"))
	// A batch below the ones seen: x is published again at 5, which the store keeps over 10.
	if err := w.Observe(ctx, []chain.Rows{transfers(5, x)}); err != nil {
		t.Fatal(err)
	}
	expect("a lower batch", hexAt(x, "5"))

	block := uint64(1)
	if _, err := store.SaveTokens(ctx, s.Pool(), []chain.Token{{Address: v.Bytes(), BlockNumber: &block,
		Source: chain.TokenFromChain}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Observe(ctx, []chain.Rows{transfers(20, v)}); err != nil {
		t.Fatal(err)
	}
	expect("a stored token")

	down.Store(true)
	u := addr(5)
	if err := w.Observe(ctx, []chain.Rows{transfers(30, u)}); err == nil {
		t.Fatal("Observe succeeded with the node down")
	}
	expect("node down")
	down.Store(false)
	if err := w.Observe(ctx, []chain.Rows{transfers(30, u)}); err != nil {
		t.Fatal(err)
	}
	expect("the retry", hexAt(u, "30"))
}
