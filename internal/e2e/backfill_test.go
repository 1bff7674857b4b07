package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/simchain"
	"github.com/chainsink/chainsink/store"
)

// simChain is a go-ethereum simulated chain serving JSON-RPC over HTTP, with three funded accounts.
type simChain struct {
	t       *testing.T
	backend chainBackend
	client  simulated.Client
	url     string
	wsURL   string // the same node over WebSocket
	keys    []*ecdsa.PrivateKey
	addrs   []common.Address
}

// chainBackend mines the simulated chain's blocks: simulated.Backend, or tracedBackend.
type chainBackend interface {
	Commit() common.Hash
	Fork(parent common.Hash) error
	Close() error
}

// fundedAccounts are three new accounts with 1000 ether each in the genesis of c.
func (c *simChain) fundedAccounts() types.GenesisAlloc {
	c.t.Helper()
	alloc := types.GenesisAlloc{}
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			c.t.Fatal(err)
		}
		c.keys, c.addrs = append(c.keys, k), append(c.addrs, crypto.PubkeyToAddress(k.PublicKey))
		alloc[c.addrs[len(c.addrs)-1]] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))}
	}
	return alloc
}

func newSimChain(t *testing.T) *simChain {
	t.Helper()
	c := &simChain{t: t}
	n, err := simchain.Start(c.fundedAccounts())
	if err != nil {
		t.Fatal(err)
	}
	c.backend, c.client, c.url, c.wsURL = n, n.Client(), n.URL, n.WSURL
	t.Cleanup(func() { _ = c.backend.Close() })
	return c
}

// send signs and submits a dynamic-fee transaction from account i with the pending nonce and 2M gas.
func (c *simChain) send(i int, to *common.Address, value *big.Int, data []byte) common.Hash {
	c.t.Helper()
	return c.sendGas(i, to, value, data, 2_000_000)
}

// sendGas is send with a gas limit.
func (c *simChain) sendGas(i int, to *common.Address, value *big.Int, data []byte, gas uint64) common.Hash {
	c.t.Helper()
	h, err := simchain.Send(context.Background(), c.client, c.keys[i], to, value, data, gas)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

// nonce is account i's pending nonce.
func (c *simChain) nonce(i int) uint64 {
	c.t.Helper()
	n, err := c.client.PendingNonceAt(context.Background(), c.addrs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	return n
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

// deployWETH deploys WETH9 from account 0 in a block of its own; pack encodes a call of it.
func deployWETH(t *testing.T, c *simChain) (a gethabi.ABI, pack func(method string, args ...any) []byte, weth common.Address) {
	t.Helper()
	a, bytecode := loadWETH(t)
	pack = func(method string, args ...any) []byte {
		data, err := a.Pack(method, args...)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	weth = crypto.CreateAddress(c.addrs[0], c.nonce(0))
	c.commit(c.send(0, nil, big.NewInt(0), bytecode))
	return a, pack, weth
}

func loadWETH(t *testing.T) (gethabi.ABI, []byte) {
	t.Helper()
	return loadArtifact(t, "WETH9.json")
}

// loadArtifact reads the ABI and creation bytecode of a build artifact in testdata/contracts.
func loadArtifact(t *testing.T, file string) (gethabi.ABI, []byte) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	art, err := simchain.LoadArtifact(filepath.Join(root, "contracts", file))
	if err != nil {
		t.Fatal(err)
	}
	return art.ABI, art.Code
}

// loadBuiltinABI is one of the ABIs built into chainsink (abi/abis), for contracts that a factory deploys.
func loadBuiltinABI(t *testing.T, name string) gethabi.ABI {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	a, err := simchain.LoadABI(filepath.Join(root, "..", "abi", "abis", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadPairABI is the UniswapV2Pair ABI built into chainsink (the factory's bytecode deploys the pair).
func loadPairABI(t *testing.T) gethabi.ABI { return loadBuiltinABI(t, "UniswapV2Pair") }

// packer returns an encoder of calls (or, with method "", constructor arguments) that fails t on a mistake.
func packer(t *testing.T) func(a gethabi.ABI, method string, args ...any) []byte {
	return func(a gethabi.ABI, method string, args ...any) []byte {
		t.Helper()
		data, err := a.Pack(method, args...)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
}

// runBackfillCmd runs `chainsink backfill` to its end and returns its stdout, stderr and exit error.
func runBackfillCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(t, append([]string{"backfill", "--log-format", "json"}, args...)...)
}

// runCmd runs the binary with args to its end (at most 2 minutes) and returns its stdout, stderr and exit
// error.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "CHAINSINK_DATABASE_URL=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if os.Getenv("CHAINSINK_TEST_LOG") != "" {
		fmt.Fprintf(os.Stderr, "%v:\n%s%s", args, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// TestBackfillToPostgres: a simulated chain with WETH9 → `chainsink backfill` → Kafka → `chainsink run` →
// Postgres; then a reorg, a second backfill over the range, and the orphaned blocks' rows replaced.
func TestBackfillToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newSimChain(t)
	a, pack, weth := deployWETH(t, c)
	c.commit(c.send(1, &weth, big.NewInt(5e17), pack("deposit")), c.send(2, &weth, big.NewInt(3e17), pack("deposit")))
	c.commit(c.send(1, &weth, big.NewInt(0), pack("transfer", c.addrs[2], big.NewInt(2e17))))
	c.commit()
	c.commit(c.send(2, &weth, big.NewInt(0), pack("transfer", c.addrs[0], big.NewInt(1e17))))
	// The block the reorg orphans holds more transactions and logs than its replacement, so that rows left
	// behind would show in every table.
	c.commit(c.send(2, &weth, big.NewInt(0), pack("withdraw", big.NewInt(5e16))),
		c.send(1, &weth, big.NewInt(0), pack("transfer", c.addrs[2], big.NewInt(1e16))),
		c.send(0, &weth, big.NewInt(0), pack("transfer", c.addrs[1], big.NewInt(1e16))))
	c.commit()
	head := c.head()
	oldHead := c.block(head).Hash()
	if n := len(c.block(head - 1).Transactions()); n != 3 {
		t.Fatalf("block %d has %d transactions, want 3", head-1, n)
	}

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
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	requireVerified(t, dbArgs, c.url, int64(head)+1, nil)

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
	// What is stored is whole and consistent, but no longer the node's chain above the fork.
	var orphaned []int64
	for n := forkAt + 1; n <= head; n++ {
		orphaned = append(orphaned, int64(n))
	}
	requireVerified(t, dbArgs, c.url, int64(head)+1, map[string][]int64{"not_canonical": orphaned})
	_, errOut, err = runBackfillCmd(t, append(base, "--from", strconv.FormatUint(forkAt+1, 10), "--to", "latest")...)
	if err != nil {
		t.Fatalf("backfill after the reorg: %v\n%s", err, errOut)
	}
	waitCaughtUp(t, s, b, "backfill", 60*time.Second, "blocks")
	checkChain(t, c, s, a, weth)
	checkEveryTable(t, c, s)
	requireVerified(t, dbArgs, c.url, int64(newHead)+1, nil)
	if n := countEvents(t, s, "Deposit"); n < 4 {
		t.Fatalf("%d Deposit events after the reorg, want the 2 of the new chain too", n)
	}
	t.Logf("reorg at %d: old head %d, new head %d", forkAt, head, newHead)
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
}

// requireVerified runs `chainsink verify --rpc node --json` and requires blocks stored, exactly the failing
// checks of want (with their first heights), and exit status 1 when want is not empty, 0 otherwise.
func requireVerified(t *testing.T, dbArgs []string, node string, blocks int64, want map[string][]int64) {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"verify", "--log-format", "json", "--json", "--rpc", node}, dbArgs...)...)
	var rep struct {
		OK     bool  `json:"ok"`
		Blocks int64 `json:"blocks"`
		Checks []struct {
			Name     string  `json:"name"`
			Problems int64   `json:"problems"`
			Heights  []int64 `json:"heights"`
		} `json:"checks"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("verify: %v, output %q: %v\n%s", err, out, jerr, errOut)
	}
	got := map[string][]int64{}
	for _, c := range rep.Checks {
		if c.Problems > 0 {
			got[c.Name] = c.Heights
		}
	}
	if len(rep.Checks) != 15 {
		t.Errorf("verify --rpc ran %d checks, want the 13 of SQL and the 2 against the node", len(rep.Checks))
	}
	if rep.Blocks != blocks || !maps.EqualFunc(got, want, slices.Equal[[]int64]) || rep.OK != (len(want) == 0) {
		t.Fatalf("verify: %d blocks, failing %v (ok %v); want %d blocks, failing %v\n%s", rep.Blocks, got, rep.OK, blocks, want, out)
	}
	if (err == nil) != (len(want) == 0) {
		t.Fatalf("verify exited with %v; want status 1 exactly when a check fails\n%s", err, errOut)
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
	defer rows.Close() // a Fatalf mid-loop must not leave the connection taken: the pool's Close would wait for it
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
	defer rows.Close()
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

// checkEveryTable compares the transactions and logs of every stored block with the canonical chain's, and
// requires every derived row (token transfers, events, calls) to belong to a stored log or transaction of the
// same transaction hash: no row of an orphaned block survives anywhere.
func checkEveryTable(t *testing.T, c *simChain, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	strs := func(q string, args ...any) []string {
		t.Helper()
		return queryStrings(t, s.Pool(), q, args...)
	}
	head := c.head()
	for n := uint64(0); n <= head; n++ {
		blk := c.block(n)
		var wantTxs, wantLogs []string
		for _, tx := range blk.Transactions() {
			wantTxs = append(wantTxs, tx.Hash().Hex())
			r, err := c.client.TransactionReceipt(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range r.Logs {
				wantLogs = append(wantLogs, fmt.Sprintf("%d %s %s", l.Index, l.TxHash.Hex(), strings.ToLower(l.Address.Hex())))
			}
		}
		gotTxs := strs(`SELECT '0x' || encode(hash, 'hex') FROM transactions WHERE block_number = $1 ORDER BY transaction_index`, int64(n))
		gotLogs := strs(`SELECT log_index || ' 0x' || encode(transaction_hash, 'hex') || ' 0x' || encode(address, 'hex')
			FROM logs WHERE block_number = $1 ORDER BY log_index`, int64(n))
		if !strings.EqualFold(fmt.Sprint(gotTxs), fmt.Sprint(wantTxs)) {
			t.Fatalf("block %d transactions:\n got %v\nwant %v", n, gotTxs, wantTxs)
		}
		if !strings.EqualFold(fmt.Sprint(gotLogs), fmt.Sprint(wantLogs)) {
			t.Fatalf("block %d logs:\n got %v\nwant %v", n, gotLogs, wantLogs)
		}
	}
	for _, q := range []string{
		`SELECT 'token_transfers ' || d.block_number || '/' || d.log_index FROM token_transfers d LEFT JOIN logs l
			ON l.block_number = d.block_number AND l.log_index = d.log_index AND l.transaction_hash = d.transaction_hash
			WHERE l.log_index IS NULL`,
		`SELECT 'events ' || d.block_number || '/' || d.log_index FROM events d LEFT JOIN logs l
			ON l.block_number = d.block_number AND l.log_index = d.log_index AND l.transaction_hash = d.transaction_hash
			WHERE l.log_index IS NULL`,
		`SELECT 'calls ' || d.block_number || '/' || d.transaction_index FROM calls d LEFT JOIN transactions x
			ON x.block_number = d.block_number AND x.transaction_index = d.transaction_index AND x.hash = d.transaction_hash
			WHERE x.hash IS NULL`,
		`SELECT 'blocks above the head ' || number FROM blocks WHERE number > ` + strconv.FormatUint(head, 10),
	} {
		if orphans := strs(q); len(orphans) > 0 {
			t.Fatalf("rows of no canonical log or transaction: %v", orphans)
		}
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

// pgEvent is a decoded event (or call) as the test expects it and as the events (calls) table has it.
type pgEvent struct {
	Address common.Address
	Name    string
	ABI     string
	Args    map[string]string
}

func (e pgEvent) String() string {
	keys := make([]string, 0, len(e.Args))
	for k := range e.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s.%s(", strings.ToLower(e.Address.Hex()), e.ABI, e.Name)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", k, e.Args[k])
	}
	return b.String() + ")"
}

// hexAddr is an address as chainsink's JSON writes it: lowercase 0x-hex.
func hexAddr(a common.Address) string { return strings.ToLower(a.Hex()) }

// units is n·10^18.
func units(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

// uniswapV2 is a simulated chain where WETH9 (canonical-weth), v2-core's ERC20 test token and
// UniswapV2Factory (@uniswap/v2-core@1.0.1) were deployed from their published bytecode, a pair created,
// liquidity added and two swaps made; with what each transaction must have stored.
type uniswapV2 struct {
	c                               *simChain
	weth, tkn, factory, pair, owner common.Address
	token0, token1                  common.Address
	head                            uint64
	sent                            []common.Hash // every transaction, in order
	wantEvents                      map[common.Hash][]pgEvent
	wantCalls                       map[common.Hash]*pgEvent
	reserves                        func(pair common.Address, block *big.Int) (*big.Int, *big.Int)
}

// uniswapV2Tables is the configuration of the pair's tables, found through the factory that created it,
// and WETH's.
func (u *uniswapV2) tables() string {
	return fmt.Sprintf(`contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "%s", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync, Mint]
    calls: [swap, mint]
  - name: weth
    abi: WETH9
    address: "%s"
    events: [Deposit, Transfer]
`, hexAddr(u.factory), hexAddr(u.weth))
}

// typedTables is what each table of tables() must hold.
func (u *uniswapV2) typedTables() map[string]typedOf {
	return map[string]typedOf{
		"univ2_evt_swap": {u.pair, "Swap", false, nil}, "univ2_evt_sync": {u.pair, "Sync", false, nil}, "univ2_evt_mint": {u.pair, "Mint", false, nil},
		"univ2_call_swap": {u.pair, "swap", true, nil}, "univ2_call_mint": {u.pair, "mint", true, nil},
		// The events table decodes WETH's Transfer with the ERC20 ABI (from, to, value); its typed table is
		// WETH9's own (src, dst, wad).
		"weth_evt_deposit":  {u.weth, "Deposit", false, nil},
		"weth_evt_transfer": {u.weth, "Transfer", false, map[string]string{"from": "src", "to": "dst", "value": "wad"}},
	}
}

func newUniswapV2(t *testing.T) *uniswapV2 {
	t.Helper()
	ctx := context.Background()
	c := newSimChain(t)
	wethABI, wethCode := loadArtifact(t, "WETH9.json")
	tknABI, tknCode := loadArtifact(t, "ERC20.json")
	factoryABI, factoryCode := loadArtifact(t, "UniswapV2Factory.json")
	pairABI := loadPairABI(t)
	pack := packer(t)
	call := func(a gethabi.ABI, to common.Address, block *big.Int, method string, args ...any) []any {
		t.Helper()
		out, err := c.client.CallContract(ctx, ethereum.CallMsg{To: &to, Data: pack(a, method, args...)}, block)
		if err != nil {
			t.Fatalf("%s at %v: %v", method, block, err)
		}
		vs, err := a.Unpack(method, out)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return vs
	}
	reserves := func(pair common.Address, block *big.Int) (*big.Int, *big.Int) {
		t.Helper()
		vs := call(pairABI, pair, block, "getReserves")
		return vs[0].(*big.Int), vs[1].(*big.Int)
	}

	// What the test did: the events each transaction emits and the call it decodes to (none for a
	// deployment), in the contracts' emission order.
	wantEvents := map[common.Hash][]pgEvent{}
	wantCalls := map[common.Hash]*pgEvent{}
	var sent []common.Hash
	expect := func(h common.Hash, cl *pgEvent, evs ...pgEvent) {
		sent = append(sent, h)
		wantCalls[h], wantEvents[h] = cl, evs
	}
	zero := common.Address{}
	transferEv := func(token, from, to common.Address, v *big.Int) pgEvent {
		// Transfer(address,address,uint256) with 3 topics is ERC20's for every unbound address: WETH9's
		// (src, dst, wad) and the pair's LP token alike.
		return pgEvent{token, "Transfer", "ERC20", map[string]string{"from": hexAddr(from), "to": hexAddr(to), "value": v.String()}}
	}
	transferCall := func(token, to common.Address, v *big.Int) *pgEvent {
		return &pgEvent{token, "transfer", "ERC20", map[string]string{"to": hexAddr(to), "value": v.String()}}
	}
	owner, lp, trader := c.addrs[0], c.addrs[1], c.addrs[2]

	// Block 1: the three contracts, from their artifacts' creation bytecode.
	weth := crypto.CreateAddress(owner, 0)
	tkn := crypto.CreateAddress(owner, 1)
	factory := crypto.CreateAddress(owner, 2)
	supply := units(1_000_000)
	h1 := c.sendGas(0, nil, big.NewInt(0), wethCode, 3_000_000)
	h2 := c.sendGas(0, nil, big.NewInt(0), append(append([]byte{}, tknCode...), pack(tknABI, "", supply)...), 3_000_000)
	h3 := c.sendGas(0, nil, big.NewInt(0), append(append([]byte{}, factoryCode...), pack(factoryABI, "", owner)...), 6_000_000)
	c.commit(h1, h2, h3)
	expect(h1, nil)
	expect(h2, nil, transferEv(tkn, zero, owner, supply))
	expect(h3, nil)
	if got := call(tknABI, tkn, nil, "balanceOf", owner)[0].(*big.Int); got.Cmp(supply) != 0 {
		t.Fatalf("TKN balance of the deployer %s, want %s", got, supply)
	}

	// Block 2: the WETH/TKN pair.
	h := c.sendGas(0, &factory, big.NewInt(0), pack(factoryABI, "createPair", weth, tkn), 6_000_000)
	c.commit(h)
	pair := call(factoryABI, factory, nil, "getPair", weth, tkn)[0].(common.Address)
	token0, token1 := weth, tkn
	if bytes.Compare(tkn.Bytes(), weth.Bytes()) < 0 {
		token0, token1 = tkn, weth
	}
	if got := call(pairABI, pair, nil, "token0")[0].(common.Address); got != token0 {
		t.Fatalf("token0 %s, want the lower address %s", got, token0)
	}
	expect(h, &pgEvent{factory, "createPair", "UniswapV2Factory", map[string]string{"tokenA": hexAddr(weth), "tokenB": hexAddr(tkn)}},
		// PairCreated(address indexed token0, address indexed token1, address pair, uint): the unnamed uint
		// is arg3.
		pgEvent{factory, "PairCreated", "UniswapV2Factory", map[string]string{"token0": hexAddr(token0), "token1": hexAddr(token1),
			"pair": hexAddr(pair), "arg3": "1"}})
	// amounts maps (WETH, TKN) amounts to (token0, token1) ones.
	amounts := func(w, k *big.Int) (*big.Int, *big.Int) {
		if token0 == weth {
			return w, k
		}
		return k, w
	}

	// Block 3: the liquidity provider wraps ether and gets TKN.
	wethIn, tknIn := units(10), units(30_000)
	h = c.sendGas(1, &weth, wethIn, pack(wethABI, "deposit"), 200_000)
	expect(h, &pgEvent{weth, "deposit", "WETH9", map[string]string{}},
		pgEvent{weth, "Deposit", "WETH9", map[string]string{"dst": hexAddr(lp), "wad": wethIn.String()}})
	h2 = c.sendGas(0, &tkn, big.NewInt(0), pack(tknABI, "transfer", lp, units(40_000)), 200_000)
	expect(h2, transferCall(tkn, lp, units(40_000)), transferEv(tkn, owner, lp, units(40_000)))
	c.commit(h, h2)

	// Block 4: both tokens into the pair, then mint: MINIMUM_LIQUIDITY to address(0), the rest to the
	// provider, Sync, Mint.
	h = c.sendGas(1, &weth, big.NewInt(0), pack(wethABI, "transfer", pair, wethIn), 200_000)
	expect(h, transferCall(weth, pair, wethIn), transferEv(weth, lp, pair, wethIn))
	h2 = c.sendGas(1, &tkn, big.NewInt(0), pack(tknABI, "transfer", pair, tknIn), 200_000)
	expect(h2, transferCall(tkn, pair, tknIn), transferEv(tkn, lp, pair, tknIn))
	h3 = c.sendGas(1, &pair, big.NewInt(0), pack(pairABI, "mint", lp), 2_000_000)
	c.commit(h, h2, h3)
	a0, a1 := amounts(wethIn, tknIn)
	minimum := big.NewInt(1000)
	liquidity := new(big.Int).Sub(new(big.Int).Sqrt(new(big.Int).Mul(a0, a1)), minimum)
	expect(h3, &pgEvent{pair, "mint", "UniswapV2Pair", map[string]string{"to": hexAddr(lp)}},
		transferEv(pair, zero, zero, minimum),
		transferEv(pair, zero, lp, liquidity),
		pgEvent{pair, "Sync", "UniswapV2Pair", map[string]string{"reserve0": a0.String(), "reserve1": a1.String()}},
		pgEvent{pair, "Mint", "UniswapV2Pair", map[string]string{"sender": hexAddr(lp), "amount0": a0.String(), "amount1": a1.String()}})
	if got := call(pairABI, pair, nil, "balanceOf", lp)[0].(*big.Int); got.Cmp(liquidity) != 0 {
		t.Fatalf("LP balance %s, want %s", got, liquidity)
	}

	// swap sends amountIn of token `in` to the pair and swaps it, in one block, from account i for the
	// other token, to `to`, with the amount out getAmountOut gives (0.3% fee).
	swap := func(i int, in common.Address, amountIn *big.Int, to common.Address) {
		t.Helper()
		r0, r1 := reserves(pair, nil)
		rIn, rOut := r0, r1
		if in != token0 {
			rIn, rOut = r1, r0
		}
		inWithFee := new(big.Int).Mul(amountIn, big.NewInt(997))
		out := new(big.Int).Div(new(big.Int).Mul(inWithFee, rOut), new(big.Int).Add(new(big.Int).Mul(rIn, big.NewInt(1000)), inWithFee))
		zeroAmt := big.NewInt(0)
		amount0In, amount1In, amount0Out, amount1Out := amountIn, zeroAmt, zeroAmt, out
		outToken := token1
		if in != token0 {
			amount0In, amount1In, amount0Out, amount1Out = zeroAmt, amountIn, out, zeroAmt
			outToken = token0
		}
		from := c.addrs[i]
		ht := c.sendGas(i, &in, big.NewInt(0), pack(tknABI, "transfer", pair, amountIn), 200_000)
		expect(ht, transferCall(in, pair, amountIn), transferEv(in, from, pair, amountIn))
		hs := c.sendGas(i, &pair, big.NewInt(0), pack(pairABI, "swap", amount0Out, amount1Out, to, []byte{}), 2_000_000)
		c.commit(ht, hs)
		n0, n1 := new(big.Int).Sub(new(big.Int).Add(r0, amount0In), amount0Out), new(big.Int).Sub(new(big.Int).Add(r1, amount1In), amount1Out)
		expect(hs, &pgEvent{pair, "swap", "UniswapV2Pair", map[string]string{"amount0Out": amount0Out.String(),
			"amount1Out": amount1Out.String(), "to": hexAddr(to), "data": "0x"}},
			transferEv(outToken, pair, to, out),
			pgEvent{pair, "Sync", "UniswapV2Pair", map[string]string{"reserve0": n0.String(), "reserve1": n1.String()}},
			pgEvent{pair, "Swap", "UniswapV2Pair", map[string]string{"sender": hexAddr(from), "amount0In": amount0In.String(),
				"amount1In": amount1In.String(), "amount0Out": amount0Out.String(), "amount1Out": amount1Out.String(), "to": hexAddr(to)}})
		if g0, g1 := reserves(pair, nil); g0.Cmp(n0) != 0 || g1.Cmp(n1) != 0 {
			t.Fatalf("reserves after the swap (%s, %s), want (%s, %s)", g0, g1, n0, n1)
		}
		t.Logf("swap %s of %s for %s of %s", amountIn, in, out, outToken)
	}
	// Block 5: the owner swaps 1000 TKN for WETH, sent to the trader. Block 6: the trader swaps half of it
	// back for TKN.
	swap(0, tkn, units(1000), trader)
	got := call(wethABI, weth, nil, "balanceOf", trader)[0].(*big.Int)
	swap(2, weth, new(big.Int).Div(got, big.NewInt(2)), trader)
	head := c.head()
	return &uniswapV2{c: c, weth: weth, tkn: tkn, factory: factory, pair: pair, owner: owner, token0: token0, token1: token1,
		head: head, sent: sent, wantEvents: wantEvents, wantCalls: wantCalls, reserves: reserves}
}

// TestBackfillUniswapV2: WETH9 (canonical-weth), v2-core's ERC20 test token and UniswapV2Factory
// (@uniswap/v2-core@1.0.1), deployed from their published bytecode on a simulated chain; a pair created,
// liquidity added, two swaps; then `chainsink backfill` → Kafka → `chainsink run` → Postgres. Every decoded
// event, token transfer and call in Postgres must equal what the test did, and every Sync the pair's
// getReserves at its block.
func TestBackfillUniswapV2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newUniswapV2(t)
	c, weth, tkn, factory, pair, owner, head := u.c, u.weth, u.tkn, u.factory, u.pair, u.owner, u.head
	sent, wantEvents, wantCalls, reserves, token0, token1 := u.sent, u.wantEvents, u.wantCalls, u.reserves, u.token0, u.token1

	// Backfill and index.
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	out, errOut, err := runBackfillCmd(t, "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema, "--batch-size", "2", "--concurrency", "2",
		"--from", "0", "--to", "latest")
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("backfilled blocks 0-%d", head)) {
		t.Fatalf("backfill output: %q", out)
	}
	// Typed tables: the pair's, found through the factory that created it, and WETH's. Block 2 (the
	// creation) and blocks 4-6 (the pair's events) may be on either partition and commit in any order.
	conf := writeTables(t, cfg, u.tables())
	p := start(t, append(runArgs(cfg, b.Addr(), "uniswap", "blocks:bundle"), "--config", conf)...)
	waitCaughtUp(t, s, b, "uniswap", 60*time.Second, "blocks")
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
	checkTyped(t, s, sent, wantEvents, wantCalls, u.typedTables())

	// contracts, without traces: the three that transactions created, from their receipts, with no code; the
	// pair, created inside the factory, needs traces (TestTracesOfUniswapV2).
	var created string
	if err := s.Pool().QueryRow(ctx, `SELECT string_agg(hex(address) || ' ' || hex(deployer) || ' ' ||
		coalesce(hex(code_hash), '-') || ' ' || coalesce(is_erc20::text, '-'), ', ' ORDER BY block_number, transaction_index)
		FROM contracts`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s %s - -, %s %s - -, %s %s - -", hexAddr(weth), hexAddr(owner), hexAddr(tkn), hexAddr(owner),
		hexAddr(factory), hexAddr(owner)); created != want {
		t.Errorf("contracts from receipts: %s, want %s", created, want)
	}

	// events: every row, grouped by transaction in log order, equals what the test expects.
	rows, err := s.Pool().Query(ctx, `SELECT block_number, transaction_hash, address, event_name, abi_name, args
		FROM events ORDER BY block_number, log_index`)
	if err != nil {
		t.Fatal(err)
	}
	gotEvents := map[common.Hash][]pgEvent{}
	type syncRow struct {
		block    int64
		reserves [2]string
	}
	var syncs []syncRow
	counts := map[string]int{}
	for rows.Next() {
		var block int64
		var txh, addr []byte
		var e pgEvent
		var args map[string]any
		if err := rows.Scan(&block, &txh, &addr, &e.Name, &e.ABI, &args); err != nil {
			t.Fatal(err)
		}
		e.Address, e.Args = common.BytesToAddress(addr), jsonStrings(t, args)
		gotEvents[common.BytesToHash(txh)] = append(gotEvents[common.BytesToHash(txh)], e)
		counts[e.ABI+"."+e.Name]++
		if e.Name == "Sync" {
			syncs = append(syncs, syncRow{block, [2]string{e.Args["reserve0"], e.Args["reserve1"]}})
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	compareByTx(t, "events", sent, wantEvents, gotEvents)
	for name, n := range map[string]int{"UniswapV2Pair.Swap": 2, "UniswapV2Pair.Sync": 3, "UniswapV2Pair.Mint": 1,
		"WETH9.Deposit": 1, "ERC20.Transfer": 10, "UniswapV2Factory.PairCreated": 1} {
		if counts[name] != n {
			t.Errorf("%d %s events, want %d (all: %v)", counts[name], name, n, counts)
		}
	}

	// Every Sync holds the pair's reserves at the end of its block (one pair-changing transaction a block).
	for _, sy := range syncs {
		r0, r1 := reserves(pair, big.NewInt(sy.block))
		if sy.reserves != [2]string{r0.String(), r1.String()} {
			t.Errorf("Sync in block %d: %v, getReserves (%s, %s)", sy.block, sy.reserves, r0, r1)
		}
	}

	// token_transfers: the ERC-20 Transfer events (the LP mint, TKN and WETH legs), and nothing else: WETH9's
	// Deposit is not a transfer.
	wantTransfers := map[common.Hash][]pgEvent{}
	for h, evs := range wantEvents {
		for _, e := range evs {
			if e.Name == "Transfer" {
				wantTransfers[h] = append(wantTransfers[h], pgEvent{e.Address, "erc20", "",
					map[string]string{"from": e.Args["from"], "to": e.Args["to"], "value": e.Args["value"]}})
			}
		}
	}
	rows, err = s.Pool().Query(ctx, `SELECT transaction_hash, token_address, from_address, to_address, value::text, standard,
		token_id IS NULL FROM token_transfers ORDER BY block_number, log_index, batch_index`)
	if err != nil {
		t.Fatal(err)
	}
	gotTransfers := map[common.Hash][]pgEvent{}
	for rows.Next() {
		var txh, token, from, to []byte
		var value, standard string
		var noID bool
		if err := rows.Scan(&txh, &token, &from, &to, &value, &standard, &noID); err != nil {
			t.Fatal(err)
		}
		if !noID {
			t.Errorf("ERC-20 transfer in %x has a token_id", txh)
		}
		gotTransfers[common.BytesToHash(txh)] = append(gotTransfers[common.BytesToHash(txh)], pgEvent{common.BytesToAddress(token),
			standard, "", map[string]string{"from": hexAddr(common.BytesToAddress(from)), "to": hexAddr(common.BytesToAddress(to)), "value": value}})
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	compareByTx(t, "token_transfers", sent, wantTransfers, gotTransfers)

	// calls: one row per transaction whose selector an ABI knows (none for the deployments), status 1.
	rows, err = s.Pool().Query(ctx, `SELECT transaction_hash, to_address, status, method_name, abi_name, args FROM calls
		ORDER BY block_number, transaction_index`)
	if err != nil {
		t.Fatal(err)
	}
	gotCalls := map[common.Hash][]pgEvent{}
	for rows.Next() {
		var txh, to []byte
		var status *int16
		var e pgEvent
		var args map[string]any
		if err := rows.Scan(&txh, &to, &status, &e.Name, &e.ABI, &args); err != nil {
			t.Fatal(err)
		}
		if status == nil || *status != 1 {
			t.Errorf("call in %x: status %v", txh, status)
		}
		e.Address, e.Args = common.BytesToAddress(to), jsonStrings(t, args)
		gotCalls[common.BytesToHash(txh)] = append(gotCalls[common.BytesToHash(txh)], e)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	wantCallRows := map[common.Hash][]pgEvent{}
	for h, cl := range wantCalls {
		if cl != nil {
			wantCallRows[h] = []pgEvent{*cl}
		}
	}
	compareByTx(t, "calls", sent, wantCallRows, gotCalls)
	t.Logf("pair %s (token0 %s, token1 %s), %d transactions in blocks 1-%d", pair, token0, token1, len(sent), head)
}

// typedOf says what a typed table holds: the rows of one event (or, call, one function) of one contract.
type typedOf struct {
	contract common.Address
	name     string
	call     bool
	// rename maps an argument of the expected event to its column, where the table's ABI names it otherwise.
	rename map[string]string
}

// checkTyped compares every typed table with the events and calls the test expects of its contract, column
// by column: each ABI argument is the column of its snake_case name (to becomes to_), numbers are exact and
// addresses and bytes 0x-hex.
func checkTyped(t *testing.T, s *store.Store, sent []common.Hash, wantEvents map[common.Hash][]pgEvent,
	wantCalls map[common.Hash]*pgEvent, tables map[string]typedOf) {
	t.Helper()
	column := map[string]string{"to": "to_", "amount0In": "amount0_in", "amount1In": "amount1_in",
		"amount0Out": "amount0_out", "amount1Out": "amount1_out", "wad": "wad", "dst": "dst", "src": "src", "guy": "guy"}
	for table, of := range tables {
		want := map[common.Hash][]pgEvent{}
		for h, evs := range wantEvents {
			if of.call {
				if c := wantCalls[h]; c != nil && c.Address == of.contract && c.Name == of.name {
					want[h] = []pgEvent{*c}
				}
				continue
			}
			for _, e := range evs {
				if e.Address == of.contract && e.Name == of.name {
					want[h] = append(want[h], e)
				}
			}
		}
		order := "log_index"
		if of.call {
			order = "transaction_index"
		}
		rows, err := s.Pool().Query(context.Background(), `SELECT transaction_hash, contract_address, to_jsonb(t)
			FROM `+table+` t ORDER BY block_number, `+order)
		if err != nil {
			t.Fatal(err)
		}
		got := map[common.Hash][]pgEvent{}
		n := 0
		for rows.Next() {
			var txh, addr []byte
			var doc []byte
			if err := rows.Scan(&txh, &addr, &doc); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(doc))
			dec.UseNumber()
			var cols map[string]any
			if err := dec.Decode(&cols); err != nil {
				t.Fatal(err)
			}
			h := common.BytesToHash(txh)
			e := pgEvent{Address: common.BytesToAddress(addr), Name: of.name, ABI: "", Args: map[string]string{}}
			// The expected arguments, read from the columns their names map to.
			var exp *pgEvent
			if w := want[h]; len(got[h]) < len(w) {
				exp = &w[len(got[h])]
			}
			if exp != nil {
				e.ABI = exp.ABI
				for arg := range exp.Args {
					c, ok := of.rename[arg]
					if !ok {
						if c, ok = column[arg]; !ok {
							c = arg
						}
					}
					switch v := cols[c].(type) {
					case json.Number:
						e.Args[arg] = v.String()
					case string:
						e.Args[arg] = strings.Replace(v, `\x`, "0x", 1)
					default:
						e.Args[arg] = fmt.Sprintf("column %s: %v", c, cols[c])
					}
				}
			}
			got[h] = append(got[h], e)
			n++
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		total := 0
		for _, w := range want {
			total += len(w)
		}
		if n != total || total == 0 {
			t.Errorf("%s: %d rows, want %d", table, n, total)
		}
		compareByTx(t, table, sent, want, got)
	}
}

// jsonStrings converts decoded jsonb args, whose values here are all strings (integers are decimal strings,
// addresses and bytes 0x-hex).
func jsonStrings(t *testing.T, args map[string]any) map[string]string {
	t.Helper()
	out := make(map[string]string, len(args))
	for k, v := range args {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("arg %s is %T %v, want a string", k, v, v)
		}
		out[k] = s
	}
	return out
}

// compareByTx checks that got has exactly the rows of want, transaction by transaction, in order.
func compareByTx(t *testing.T, table string, sent []common.Hash, want, got map[common.Hash][]pgEvent) {
	t.Helper()
	for _, h := range sent {
		if fmt.Sprint(got[h]) != fmt.Sprint(want[h]) {
			t.Errorf("%s of transaction %s:\n got %v\nwant %v", table, h, got[h], want[h])
		}
	}
	known := map[common.Hash]bool{}
	for _, h := range sent {
		known[h] = true
	}
	for h, rows := range got {
		if !known[h] {
			t.Errorf("%s has rows of a transaction the test did not send, %s: %v", table, h, rows)
		}
	}
}

// TestBackfillRefusals holds what docs/backfill.md promises about failures, through the real binary: a node
// that answers null for a block is retried --max-attempts times and then fails the backfill with nothing
// published; the RPC URL's path and query (where hosted nodes keep their API keys) and its password never
// appear in the output or the logs, only its host; and a job's --topic and --from are fixed.
func TestBackfillRefusals(t *testing.T) {
	t.Parallel()
	c := newSimChain(t)
	c.commit(c.send(0, &c.addrs[1], big.NewInt(1e15), nil))
	_, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1, "other": 1})

	// A node that knows its head but answers null for every block (a pruned or lagging replica).
	var nulls atomic.Int64
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var calls []struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		batch := strings.HasPrefix(strings.TrimSpace(string(body)), "[")
		if batch {
			_ = json.Unmarshal(body, &calls)
		} else {
			calls = make([]struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}, 1)
			_ = json.Unmarshal(body, &calls[0])
		}
		var out []string
		for _, call := range calls {
			result := "null"
			switch call.Method {
			case "eth_blockNumber":
				result = `"0x1"`
			case "eth_chainId":
				result = `"0x539"`
			default:
				nulls.Add(1)
			}
			out = append(out, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, call.ID, result))
		}
		w.Header().Set("Content-Type", "application/json")
		if batch {
			fmt.Fprintf(w, "[%s]", strings.Join(out, ","))
		} else {
			fmt.Fprint(w, out[0])
		}
	}))
	defer node.Close()
	secret := strings.Replace(node.URL, "http://", "http://user:hunter2@", 1) + "/v3/KEY0123456789abcdef?apikey=SECRETQUERY"
	db := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	out, errOut, err := runBackfillCmd(t, append([]string{"--rpc", secret, "--brokers", b.Addr(), "--topic", "blocks",
		"--from", "0", "--to", "1", "--max-attempts", "3", "--request-timeout", "2s"}, db...)...)
	if err == nil {
		t.Fatalf("a node answering null did not fail the backfill:\n%s", out)
	}
	if !strings.Contains(out+errOut, "null") || nulls.Load() < 3 {
		t.Fatalf("the failure does not say the node answered null (%d null answers):\n%s%s", nulls.Load(), out, errOut)
	}
	for _, leak := range []string{"hunter2", "KEY0123456789abcdef", "SECRETQUERY"} {
		if strings.Contains(out+errOut, leak) {
			t.Errorf("output or logs contain %q:\n%s%s", leak, out, errOut)
		}
	}
	if host := strings.TrimPrefix(node.URL, "http://"); !strings.Contains(out+errOut, host) {
		t.Errorf("output and logs do not name the node's host %s:\n%s%s", host, out, errOut)
	}
	if hw := b.HighWatermarks("blocks"); hw[0] != 0 {
		t.Errorf("a failed backfill published %d messages", hw[0])
	}

	// The job "fixed" ran from 0 into blocks; the same job into another topic, or from another block, is refused.
	job := append([]string{"--rpc", c.url, "--brokers", b.Addr(), "--job", "fixed", "--to", "1"}, db...)
	if _, errOut, err := runBackfillCmd(t, append(job, "--topic", "blocks", "--from", "0")...); err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	for _, changed := range [][]string{{"--topic", "other", "--from", "0"}, {"--topic", "blocks", "--from", "1"}} {
		out, errOut, err := runBackfillCmd(t, append(job, changed...)...)
		if err == nil || !strings.Contains(out+errOut, "was started with --topic blocks --from 0") {
			t.Fatalf("job fixed with %v: %v\n%s%s", changed, err, out, errOut)
		}
	}

	// --traces against a node without the debug API fails at the first attempt, saying what it needs.
	out, errOut, err = runBackfillCmd(t, append([]string{"--rpc", c.url, "--brokers", b.Addr(), "--topic", "other",
		"--from", "1", "--to", "1", "--traces"}, db...)...)
	if err == nil || !strings.Contains(out+errOut, "does not serve the debug API") || strings.Contains(out+errOut, "retrying") {
		t.Fatalf("--traces without the debug API: %v\n%s%s", err, out, errOut)
	}
}
