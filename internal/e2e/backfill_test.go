package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/store"
)

// simChain is a go-ethereum simulated chain serving JSON-RPC over HTTP, with three funded accounts.
type simChain struct {
	t       *testing.T
	backend *simulated.Backend
	client  simulated.Client
	url     string
	keys    []*ecdsa.PrivateKey
	addrs   []common.Address
}

func newSimChain(t *testing.T) *simChain {
	t.Helper()
	c := &simChain{t: t}
	alloc := types.GenesisAlloc{}
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		c.keys, c.addrs = append(c.keys, k), append(c.addrs, crypto.PubkeyToAddress(k.PublicKey))
		alloc[c.addrs[len(c.addrs)-1]] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))}
	}
	// The simulated backend does not expose its node's listener, so the port is picked here; a lost race
	// for it is retried.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		b, err := func() (b *simulated.Backend, err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("start simulated backend: %v", p)
				}
			}()
			return simulated.NewBackend(alloc, func(nc *node.Config, _ *ethconfig.Config) {
				nc.HTTPHost, nc.HTTPPort, nc.HTTPModules = "127.0.0.1", port, []string{"eth", "net", "web3"}
			}), nil
		}()
		if err != nil && attempt < 3 {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		c.backend, c.client, c.url = b, b.Client(), fmt.Sprintf("http://127.0.0.1:%d", port)
		break
	}
	t.Cleanup(func() { _ = c.backend.Close() })
	return c
}

// send signs and submits a dynamic-fee transaction from account i with the pending nonce.
func (c *simChain) send(i int, to *common.Address, value *big.Int, data []byte) common.Hash {
	c.t.Helper()
	ctx := context.Background()
	nonce, err := c.client.PendingNonceAt(ctx, c.addrs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	tip := big.NewInt(2e9)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, To: to, Value: value, Gas: 2_000_000,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip), Data: data})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(1337)), c.keys[i])
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.client.SendTransaction(ctx, signed); err != nil {
		c.t.Fatalf("send transaction: %v", err)
	}
	return signed.Hash()
}

// commit mines a block with the pending transactions, which must all succeed.
func (c *simChain) commit(txs ...common.Hash) {
	c.t.Helper()
	c.backend.Commit()
	for _, h := range txs {
		r, err := c.client.TransactionReceipt(context.Background(), h)
		if err != nil || r.Status != types.ReceiptStatusSuccessful {
			c.t.Fatalf("transaction %s: receipt %+v, %v", h, r, err)
		}
	}
}

func (c *simChain) block(n uint64) *types.Block {
	c.t.Helper()
	b, err := c.client.BlockByNumber(context.Background(), new(big.Int).SetUint64(n))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *simChain) head() uint64 {
	c.t.Helper()
	n, err := c.client.BlockNumber(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// wethEvent is a WETH9 event as the chain has it.
type wethEvent struct {
	Block    uint64
	LogIndex uint
	Name     string
	Amount   string
}

// wethEvents are the WETH9 events of the canonical chain in blocks 0..head.
func (c *simChain) wethEvents(a gethabi.ABI, addr common.Address) []wethEvent {
	c.t.Helper()
	var out []wethEvent
	for n := uint64(0); n <= c.head(); n++ {
		for _, tx := range c.block(n).Transactions() {
			r, err := c.client.TransactionReceipt(context.Background(), tx.Hash())
			if err != nil {
				c.t.Fatal(err)
			}
			for _, l := range r.Logs {
				if l.Address != addr {
					continue
				}
				ev, err := a.EventByID(l.Topics[0])
				if err != nil {
					c.t.Fatal(err)
				}
				// Every WETH9 event has the amount (wad) as its only data.
				out = append(out, wethEvent{n, l.Index, ev.Name, new(big.Int).SetBytes(l.Data).String()})
			}
		}
	}
	return out
}

func loadWETH(t *testing.T) (gethabi.ABI, []byte) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "contracts", "WETH9.json"))
	if err != nil {
		t.Fatal(err)
	}
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(raw, &art); err != nil {
		t.Fatal(err)
	}
	a, err := gethabi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		t.Fatal(err)
	}
	return a, common.FromHex(art.Bytecode)
}

// runBackfillCmd runs `chainsink backfill` to its end and returns its stdout, stderr and exit error.
func runBackfillCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"backfill", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "CHAINSINK_DATABASE_URL=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if os.Getenv("CHAINSINK_TEST_LOG") != "" {
		fmt.Fprintf(os.Stderr, "backfill %v:\n%s%s", args, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// TestBackfillToPostgres: a simulated chain with WETH9 → `chainsink backfill` → Kafka → `chainsink run` →
// Postgres; then a reorg, a second backfill over the range, and the orphaned blocks' rows replaced.
func TestBackfillToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newSimChain(t)
	a, bytecode := loadWETH(t)
	pack := func(method string, args ...any) []byte {
		data, err := a.Pack(method, args...)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	weth := crypto.CreateAddress(c.addrs[0], 0)
	c.commit(c.send(0, nil, big.NewInt(0), bytecode))
	c.commit(c.send(1, &weth, big.NewInt(5e17), pack("deposit")), c.send(2, &weth, big.NewInt(3e17), pack("deposit")))
	c.commit(c.send(1, &weth, big.NewInt(0), pack("transfer", c.addrs[2], big.NewInt(2e17))))
	c.commit()
	c.commit(c.send(2, &weth, big.NewInt(0), pack("transfer", c.addrs[0], big.NewInt(1e17))))
	c.commit(c.send(2, &weth, big.NewInt(0), pack("withdraw", big.NewInt(5e16))))
	c.commit()
	head := c.head()
	oldHead := c.block(head).Hash()

	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	base := []string{"--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks", "--database-url", cfg.DatabaseURL,
		"--schema", cfg.Schema, "--batch-size", "2", "--concurrency", "2"}
	out, errOut, err := runBackfillCmd(t, append(base, "--from", "0", "--to", "latest")...)
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("backfilled blocks 0-%d", head)) {
		t.Fatalf("backfill output: %q", out)
	}
	cp, ok, err := store.LoadCheckpoint(ctx, s.Pool(), "blocks:0-latest")
	if err != nil || !ok || cp.NextBlock != int64(head+1) {
		t.Fatalf("checkpoint %+v, %v, %v", cp, ok, err)
	}

	p := start(t, runArgs(cfg, b.Addr(), "backfill", "blocks:bundle")...)
	waitCaughtUp(t, s, b, "backfill", 60*time.Second, "blocks")
	checkChain(t, c, s, a, weth)
	if n := countEvents(t, s, "Deposit"); n != 2 {
		t.Fatalf("%d Deposit events", n)
	}

	// Reorg: fork below the last two blocks, and mine a longer chain with other transactions.
	forkAt := head - 2
	if err := c.backend.Fork(c.block(forkAt).Hash()); err != nil {
		t.Fatal(err)
	}
	// Receipts of the side chain are found only once it is canonical: check them after the last block.
	d1 := c.send(1, &weth, big.NewInt(7e17), pack("deposit"))
	c.backend.Commit()
	c.backend.Commit()
	d2 := c.send(0, &weth, big.NewInt(1e16), pack("deposit"))
	c.backend.Commit()
	c.commit(d1, d2)
	newHead := c.head()
	if newHead <= head || c.block(head).Hash() == oldHead {
		t.Fatalf("the fork did not become canonical: head %d, block %d %s", newHead, head, c.block(head).Hash())
	}
	_, errOut, err = runBackfillCmd(t, append(base, "--from", strconv.FormatUint(forkAt+1, 10), "--to", "latest")...)
	if err != nil {
		t.Fatalf("backfill after the reorg: %v\n%s", err, errOut)
	}
	waitCaughtUp(t, s, b, "backfill", 60*time.Second, "blocks")
	checkChain(t, c, s, a, weth)
	if n := countEvents(t, s, "Deposit"); n < 4 {
		t.Fatalf("%d Deposit events after the reorg, want the 2 of the new chain too", n)
	}
	t.Logf("reorg at %d: old head %d, new head %d", forkAt, head, newHead)
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
}

// checkChain compares the blocks table with the canonical chain's hashes and the events table with its WETH
// events.
func checkChain(t *testing.T, c *simChain, s *store.Store, a gethabi.ABI, weth common.Address) {
	t.Helper()
	ctx := context.Background()
	head := c.head()
	rows, err := s.Pool().Query(ctx, `SELECT number, hash FROM blocks ORDER BY number`)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for rows.Next() {
		var num int64
		var hash []byte
		if err := rows.Scan(&num, &hash); err != nil {
			t.Fatal(err)
		}
		if uint64(num) != n {
			t.Fatalf("blocks table has %d where %d was expected", num, n)
		}
		if want := c.block(n).Hash(); common.BytesToHash(hash) != want {
			t.Fatalf("block %d: stored hash %x, canonical %s", n, hash, want)
		}
		n++
	}
	if rows.Err() != nil || n != head+1 {
		t.Fatalf("blocks table has %d blocks, chain %d (%v)", n, head+1, rows.Err())
	}

	want := c.wethEvents(a, weth)
	rows, err = s.Pool().Query(ctx, `SELECT block_number, log_index, event_name, args FROM events
		WHERE address = $1 ORDER BY block_number, log_index`, weth.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []wethEvent
	for rows.Next() {
		var e wethEvent
		var args map[string]string
		if err := rows.Scan(&e.Block, &e.LogIndex, &e.Name, &args); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"wad", "value"} { // WETH9's own name, or ERC-20's for Transfer
			if v, ok := args[k]; ok {
				e.Amount = v
			}
		}
		got = append(got, e)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
	var transfers int
	for _, e := range want {
		if e.Name == "Transfer" {
			transfers++
		}
	}
	if transfers == 0 {
		t.Fatal("no Transfer events to compare")
	}
}

func countEvents(t *testing.T, s *store.Store, name string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// slowProxy forwards JSON-RPC requests to target after a delay, so that a backfill lasts long enough to be
// interrupted.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		resp, err := http.Post(target, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// topicKeys counts the messages of topic per key.
func topicKeys(t *testing.T, addr, topic string, total int64) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]int{}
	for got := int64(0); got < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages", got, total)
		}
		fs.EachRecord(func(r *kgo.Record) { out[string(r.Key)]++; got++ })
	}
	return out
}

// TestBackfillInterruptAndKill stops the real binary with SIGINT (it must checkpoint and say where it
// stopped) and with SIGKILL (it must continue from its last checkpoint), and checks that the re-runs leave
// every block of the range in the topic.
func TestBackfillInterruptAndKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newSimChain(t)
	for range 300 {
		c.backend.Commit()
	}
	head := c.head()
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 3})
	args := []string{"backfill", "--rpc", slowProxy(t, c.url, 100*time.Millisecond), "--brokers", b.Addr(),
		"--topic", "blocks", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema, "--log-format", "json",
		"--from", "0", "--to", strconv.FormatUint(head, 10), "--batch-size", "2", "--concurrency", "2"}
	job := fmt.Sprintf("blocks:0-%d", head)
	checkpoint := func() int64 {
		cp, _, err := store.LoadCheckpoint(ctx, s.Pool(), job)
		if err != nil {
			t.Fatal(err)
		}
		return cp.NextBlock
	}

	// SIGINT: the process drains, checkpoints and exits 1 naming the block to continue from.
	p := start(t, args...)
	waitFor(t, 60*time.Second, "the checkpoint to pass block 40", func() (bool, error) { return checkpoint() > 40, nil })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("after SIGINT: %v", p.err)
	}
	logs := strings.Join(p.logLines(), "\n")
	m := regexp.MustCompile(`interrupted at block (\d+); run the same command again to continue`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no interruption message in:\n%s", logs)
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n != checkpoint() || uint64(n) > head {
		t.Fatalf("interrupted at %d, checkpoint %d", n, checkpoint())
	}
	stoppedAt := checkpoint()

	// SIGKILL: nothing runs at the end; the next run starts from the last checkpoint written.
	p = start(t, args...)
	waitFor(t, 60*time.Second, "the checkpoint to advance", func() (bool, error) { return checkpoint() > stoppedAt+40, nil })
	p.kill()
	killedAt := checkpoint()
	if uint64(killedAt) > head {
		t.Fatalf("killed at %d, after the end %d: the test chain is too short to interrupt", killedAt, head)
	}

	out, errOut, err := runBackfillCmd(t, args[1:]...)
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("backfilled blocks %d-%d", killedAt, head)) {
		t.Fatalf("final run output %q, killed at %d", out, killedAt)
	}
	if n := checkpoint(); n != int64(head+1) {
		t.Fatalf("checkpoint %d at the end, want %d", n, head+1)
	}
	var total int64
	for _, hw := range b.HighWatermarks("blocks") {
		total += hw
	}
	keys := topicKeys(t, b.Addr(), "blocks", total)
	for n := uint64(0); n <= head; n++ {
		if keys[strconv.FormatUint(n, 10)] == 0 {
			t.Fatalf("block %d is missing from the topic", n)
		}
	}
	if len(keys) != int(head+1) {
		t.Fatalf("%d keys in the topic, want %d", len(keys), head+1)
	}
	t.Logf("SIGINT at %d, SIGKILL at %d, %d messages for %d blocks", stoppedAt, killedAt, total, head+1)
}
