package backfill_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/store"

	"github.com/chainsink/chainsink/internal/simchain"
)

// chain is a go-ethereum simulated backend serving JSON-RPC over HTTP, with funded accounts.
type chain struct {
	t       testing.TB
	backend *simulated.Backend
	client  simulated.Client
	url     string
	keys    []*ecdsa.PrivateKey
	addrs   []common.Address
	signer  types.Signer
	nonces  map[common.Address]uint64
}

// newChain starts a simulated chain on a free port with three funded accounts.
func newChain(t testing.TB) *chain {
	t.Helper()
	c := &chain{t: t, nonces: map[common.Address]uint64{}, signer: types.LatestSignerForChainID(big.NewInt(1337))}
	alloc := types.GenesisAlloc{}
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		a := crypto.PubkeyToAddress(k.PublicKey)
		c.keys, c.addrs = append(c.keys, k), append(c.addrs, a)
		alloc[a] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))}
	}
	n, err := simchain.Start(alloc)
	if err != nil {
		t.Fatal(err)
	}
	c.backend, c.client, c.url = n.Backend, n.Client(), n.URL
	t.Cleanup(func() { _ = c.backend.Close() })
	return c
}

// send signs and submits a transaction from account i; it is mined by the next Commit.
func (c *chain) send(i int, to *common.Address, value *big.Int, data []byte, gas uint64, legacy bool) common.Hash {
	c.t.Helper()
	ctx := context.Background()
	from := c.addrs[i]
	nonce := c.nonces[from]
	c.nonces[from]++
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	tip := big.NewInt(2e9)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	var tx *types.Transaction
	if legacy {
		tx = types.NewTx(&types.LegacyTx{Nonce: nonce, To: to, Value: value, Gas: gas, GasPrice: feeCap, Data: data})
	} else {
		tx = types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, To: to, Value: value, Gas: gas,
			GasTipCap: tip, GasFeeCap: feeCap, Data: data})
	}
	signed, err := types.SignTx(tx, c.signer, c.keys[i])
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.client.SendTransaction(ctx, signed); err != nil {
		c.t.Fatalf("send transaction: %v", err)
	}
	return signed.Hash()
}

func (c *chain) transfer(i, j int, wei int64, legacy bool) common.Hash {
	return c.send(i, &c.addrs[j], big.NewInt(wei), nil, 21000, legacy)
}

// commit mines the pending transactions and checks that every one succeeded.
func (c *chain) commit(txs ...common.Hash) {
	c.t.Helper()
	c.backend.Commit()
	for _, h := range txs {
		r, err := c.client.TransactionReceipt(context.Background(), h)
		if err != nil {
			c.t.Fatalf("receipt of %s: %v", h, err)
		}
		if r.Status != types.ReceiptStatusSuccessful {
			tx, _, _ := c.client.TransactionByHash(context.Background(), h)
			c.t.Fatalf("transaction %s failed (gas used %d of %d, input %x)", h, r.GasUsed, tx.Gas(), tx.Data())
		}
	}
}

func (c *chain) head() uint64 {
	c.t.Helper()
	n, err := c.client.BlockNumber(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// weth is the canonical WETH9 (testdata/contracts) deployed on a chain.
type weth struct {
	abi  gethabi.ABI
	addr common.Address
}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// deployWETH deploys WETH9 from account 0 and mines it.
func (c *chain) deployWETH() *weth {
	c.t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(c.t), "testdata", "contracts", "WETH9.json"))
	if err != nil {
		c.t.Fatal(err)
	}
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(raw, &art); err != nil {
		c.t.Fatal(err)
	}
	a, err := gethabi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		c.t.Fatal(err)
	}
	addr := crypto.CreateAddress(c.addrs[0], c.nonces[c.addrs[0]])
	h := c.send(0, nil, big.NewInt(0), common.FromHex(art.Bytecode), 2_000_000, false)
	c.commit(h)
	return &weth{abi: a, addr: addr}
}

func (w *weth) pack(t testing.TB, method string, args ...any) []byte {
	data, err := w.abi.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// broker is a local Kafka-protocol broker with the topic.
func newBroker(t testing.TB, topic string, partitions int32) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{topic: partitions}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newPublisher(t testing.TB, b *localkafka.Broker, topic string) *backfill.KafkaPublisher {
	t.Helper()
	cm := kafka.ConfigMap{"bootstrap.servers": b.Addr()}
	for k, v := range backfill.ProducerConfig() {
		cm[k] = v
	}
	for k, v := range backfill.FixedProducerConfig() {
		cm[k] = v
	}
	p, err := backfill.NewKafkaPublisher(topic, &cm, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

type record struct {
	partition int32
	offset    int64
	key       string
	value     []byte
}

// consume reads the whole topic (up to the broker's high watermarks) and returns its records by key.
func consume(t testing.TB, b *localkafka.Broker, topic string) map[string][]record {
	t.Helper()
	var want int64
	for _, hw := range b.HighWatermarks(topic) {
		want += hw
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string][]record{}
	var got int64
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", got, want, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[string(r.Key)] = append(out[string(r.Key)], record{r.Partition, r.Offset, string(r.Key), r.Value})
			got++
		})
	}
	return out
}

// memCheckpoints keeps checkpoints in memory, for the unit tests. Like the store it never lets a job's
// checkpoint go back, but it records every attempt to (and every save check rejects), so that a test can
// see a watermark that went wrong instead of a clamped one.
type memCheckpoints struct {
	mu       sync.Mutex
	m        map[string]store.BackfillCheckpoint
	saves    int
	check    func(store.BackfillCheckpoint) error // optional: what every saved checkpoint must satisfy
	problems []error
}

// requireSound fails t for every checkpoint that went back or failed check.
func (m *memCheckpoints) requireSound(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, err := range m.problems {
		t.Error(err)
	}
}

func (m *memCheckpoints) Load(_ context.Context, job string) (store.BackfillCheckpoint, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.m[job]
	return cp, ok, nil
}

func (m *memCheckpoints) Save(_ context.Context, cp store.BackfillCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]store.BackfillCheckpoint{}
	}
	if m.check != nil {
		if err := m.check(cp); err != nil {
			m.problems = append(m.problems, err)
		}
	}
	if old, ok := m.m[cp.Job]; ok && old.NextBlock > cp.NextBlock {
		m.problems = append(m.problems, fmt.Errorf("checkpoint of %s went back from %d to %d", cp.Job, old.NextBlock, cp.NextBlock))
		cp.NextBlock = old.NextBlock
	}
	m.m[cp.Job] = cp
	m.saves++
	return nil
}

// proxy is an HTTP reverse proxy in front of the node that can fail requests.
type proxy struct {
	srv      *httptest.Server
	target   string
	requests atomic.Int64
	// fault decides, per request (numbered from 1), what to do: "" forwards, "429" and "500" answer that
	// status, "hang" answers nothing until the client gives up.
	fault func(n int64, body []byte) string
	// rewrite changes a request body before it is forwarded.
	rewrite func(body []byte) []byte

	mu      sync.Mutex
	methods map[string]int
	faults  map[string]int
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{target: target, methods: map[string]int{}, faults: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) URL() string { return p.srv.URL }

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := p.requests.Add(1)
	p.count(body)
	f := ""
	if p.fault != nil {
		f = p.fault(n, body)
	}
	if f != "" {
		p.mu.Lock()
		p.faults[f]++
		p.mu.Unlock()
	}
	switch f {
	case "429":
		http.Error(w, "rate limited", http.StatusTooManyRequests)
		return
	case "500":
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case "hang":
		<-r.Context().Done()
		return
	}
	if p.rewrite != nil {
		body = p.rewrite(body)
	}
	resp, err := http.Post(p.target, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *proxy) count(body []byte) {
	var calls []struct {
		Method string `json:"method"`
	}
	if strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
		_ = json.Unmarshal(body, &calls)
	} else {
		var one struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &one)
		calls = append(calls, one)
	}
	p.mu.Lock()
	for _, c := range calls {
		p.methods[c.Method]++
	}
	p.mu.Unlock()
}

func (p *proxy) methodCount(m string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.methods[m]
}
