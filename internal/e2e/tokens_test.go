package e2e

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
)

// TestTokensFromTheChain: two real ERC-20 contracts on a simulated chain (WETH9 and Uniswap v2-core's test
// token) → backfill → run → token_transfers; a token list names one of them wrongly; `chainsink tokens --rpc`
// reads both from the node and publishes token items, which run stores over the list's row; the scaled view
// then reads amounts in whole tokens. A second `tokens --rpc` finds nothing left to read.
func TestTokensFromTheChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, tc := newTokenChain(t)
	weth, tkn, wethABI, tknABI, pack := tc.weth, tc.tkn, tc.wethABI, tc.tknABI, tc.pack

	s, cfg := migratedStore(t)
	db := s.Pool()
	b := newBroker(t, map[string]int32{"blocks": 2, "tokens": 1})
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	if _, errOut, err := runBackfillCmd(t, append([]string{"--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--from", "0", "--to", "latest"}, dbArgs...)...); err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	p := start(t, runArgs(cfg, b.Addr(), "tokens", "blocks:bundle", "tokens:ethereum-etl")...)
	waitCaughtUp(t, s, b, "tokens", 60*time.Second, "blocks")

	// A list that has WETH under another name: what the chain says must replace it.
	list := filepath.Join(t.TempDir(), "list.json")
	if err := os.WriteFile(list, []byte(fmt.Sprintf(`{"name": "test", "tokens": [
		{"chainId": 1337, "address": %q, "name": "Listed", "symbol": "LISTED", "decimals": 9},
		{"chainId": 1, "address": %q, "name": "Other chain", "symbol": "NOPE", "decimals": 1}]}`, weth.Hex(), tkn.Hex())), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCmd(t, append([]string{"tokens", "--list", list, "--chain-id", "1337"}, dbArgs...)...)
	if err != nil || !strings.Contains(out, `token list "test": 1 tokens of chain 1337, 1 rows inserted or updated`) {
		t.Fatalf("tokens --list: %v\n%s%s", err, out, errOut)
	}
	if got := tokenRow(t, db, weth); got != "LISTED|Listed|9|-|erc20|-|token_list" {
		t.Fatalf("WETH after the list: %s", got)
	}

	rpcArgs := append([]string{"tokens", "--rpc", c.url, "--brokers", b.Addr(), "--topic", "tokens", "--batch-size", "1"}, dbArgs...)
	out, errOut, err = runCmd(t, rpcArgs...)
	head := c.head()
	if err != nil || !strings.Contains(out, fmt.Sprintf("read 2 tokens at block %d and published them to tokens", head)) {
		t.Fatalf("tokens --rpc: %v\n%s%s", err, out, errOut)
	}
	waitCaughtUp(t, s, b, "tokens", 60*time.Second, "blocks", "tokens")

	// What the contracts answer at that block, asked with go-ethereum's ABI codec.
	at := new(big.Int).SetUint64(head)
	call := func(a gethabi.ABI, to common.Address, method string) any {
		t.Helper()
		ret, err := c.client.CallContract(ctx, ethereum.CallMsg{To: &to, Data: pack(a, method)}, at)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := a.Unpack(method, ret)
		if err != nil {
			t.Fatal(err)
		}
		return vs[0]
	}
	for _, tok := range []struct {
		addr common.Address
		a    gethabi.ABI
	}{{weth, wethABI}, {tkn, tknABI}} {
		want := fmt.Sprintf("%s|%s|%d|%s|erc20|%d|chain", call(tok.a, tok.addr, "symbol"), call(tok.a, tok.addr, "name"),
			call(tok.a, tok.addr, "decimals"), call(tok.a, tok.addr, "totalSupply"), head)
		if got := tokenRow(t, db, tok.addr); got != want {
			t.Errorf("token %s: %s, the chain says %s", tok.addr, got, want)
		}
	}
	if got := tokenRow(t, db, weth); !strings.HasPrefix(got, "WETH|Wrapped Ether|18|3000000000000000000|") {
		t.Errorf("WETH stored as %s", got)
	}

	rows, err := db.Query(ctx, `SELECT symbol || ' ' || amount::text FROM token_transfers_scaled
		WHERE from_address IS NOT NULL AND from_address <> '\x0000000000000000000000000000000000000000'::bytea
		ORDER BY block_number, log_index`)
	if err != nil {
		t.Fatal(err)
	}
	amounts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(amounts, ", "); got != "WETH 1.250000000000000000, UNI-V2 0.000000000001234567" {
		t.Errorf("scaled transfers: %s", got)
	}

	out, errOut, err = runCmd(t, rpcArgs...)
	if err != nil || !strings.Contains(out, "read 0 tokens") {
		t.Fatalf("second tokens --rpc: %v\n%s%s", err, out, errOut)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
}

// tokenChain is a simulated chain with two ERC-20 contracts: block 1 deploys WETH9 and v2-core's test token
// (whose constructor mints, its first Transfer), block 2 wraps 3 ether, block 3 moves 1.25 WETH (WETH's
// first Transfer) and 1234567 units of the token.
type tokenChain struct {
	weth, tkn       common.Address
	wethABI, tknABI gethabi.ABI
	pack            func(a gethabi.ABI, method string, args ...any) []byte
}

func newTokenChain(t *testing.T) (*simChain, tokenChain) {
	t.Helper()
	c := newSimChain(t)
	return c, deployTokens(t, c)
}

// deployTokens makes c a tokenChain's blocks 1-3.
func deployTokens(t *testing.T, c *simChain) tokenChain {
	t.Helper()
	wethABI, wethCode := loadArtifact(t, "WETH9.json")
	tknABI, tknCode := loadArtifact(t, "ERC20.json")
	pack := packer(t)
	owner, other := c.addrs[0], c.addrs[1]
	weth, tkn := crypto.CreateAddress(owner, c.nonce(0)), crypto.CreateAddress(owner, c.nonce(0)+1)
	h1 := c.sendGas(0, nil, big.NewInt(0), wethCode, 3_000_000)
	h2 := c.sendGas(0, nil, big.NewInt(0), append(append([]byte{}, tknCode...), pack(tknABI, "", units(1_000_000))...), 3_000_000)
	c.commit(h1, h2)
	c.commit(c.send(1, &weth, big.NewInt(3e18), pack(wethABI, "deposit")))
	c.commit(c.send(1, &weth, big.NewInt(0), pack(wethABI, "transfer", owner, big.NewInt(125e16))),
		c.send(0, &tkn, big.NewInt(0), pack(tknABI, "transfer", other, big.NewInt(1234567))))
	return tokenChain{weth: weth, tkn: tkn, wethABI: wethABI, tknABI: tknABI, pack: pack}
}

// TestBackfillPublishesTokens: `backfill --tokens-topic` reads each token at the block of its first
// transfer (the token at its deployment, WETH two blocks later, when its supply was 3 ether) and publishes
// it with the blocks; run stores both topics; a second backfill of the range publishes no token again. One
// batch at a time, so that the count is exact: concurrent batches may both publish a token they both see
// first (tokens.Watcher), and the store keeps the lower block's.
func TestBackfillPublishesTokens(t *testing.T) {
	t.Parallel()
	c, tc := newTokenChain(t)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2, "tokens": 1})
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	backfill := func(job string) {
		t.Helper()
		if _, errOut, err := runBackfillCmd(t, append([]string{"--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
			"--tokens-topic", "tokens", "--from", "0", "--to", "3", "--batch-size", "2", "--concurrency", "1", "--job", job}, dbArgs...)...); err != nil {
			t.Fatalf("backfill --tokens-topic: %v\n%s", err, errOut)
		}
	}
	backfill("first")
	if hw := b.HighWatermarks("tokens")[0]; hw != 2 {
		t.Fatalf("%d token items published, want 2", hw)
	}
	p := start(t, runArgs(cfg, b.Addr(), "tokens", "blocks:bundle", "tokens:ethereum-etl")...)
	waitCaughtUp(t, s, b, "tokens", 60*time.Second, "blocks", "tokens")
	if got := tokenRow(t, s.Pool(), tc.tkn); got != "UNI-V2|Uniswap V2|18|1000000000000000000000000|erc20|1|chain" {
		t.Errorf("token: %s", got)
	}
	if got := tokenRow(t, s.Pool(), tc.weth); got != "WETH|Wrapped Ether|18|3000000000000000000|erc20|3|chain" {
		t.Errorf("WETH: %s", got)
	}
	backfill("again")
	if hw := b.HighWatermarks("tokens")[0]; hw != 2 {
		t.Errorf("the second backfill published %d token items, want none", hw-2)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
}

// tokenRow is a tokens row as symbol|name|decimals|total_supply|standard|block_number|source, "-" for NULL.
func tokenRow(t *testing.T, db store.DB, addr common.Address) string {
	t.Helper()
	var got string
	if err := db.QueryRow(context.Background(), `SELECT concat_ws('|', coalesce(symbol, '-'), coalesce(name, '-'),
		coalesce(decimals::text, '-'), coalesce(total_supply::text, '-'), coalesce(standard, '-'),
		coalesce(block_number::text, '-'), source) FROM tokens WHERE address = $1`, addr.Bytes()).Scan(&got); err != nil {
		t.Fatalf("token %s: %v", addr, err)
	}
	return got
}

// TestFollowPublishesTokensAndTraces: `follow --tokens-topic --traces` on a node with the debug API: the
// follower publishes the two tokens of its blocks, read at their first transfers, and bundles with traces;
// run stores tokens, traces and contracts. A token transferred again in a later block is not published twice.
func TestFollowPublishesTokensAndTraces(t *testing.T) {
	t.Parallel()
	c := newTracedChain(t)
	tc := deployTokens(t, c)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1, "tokens": 1})
	follower := start(t, "follow", "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks", "--tokens-topic", "tokens",
		"--traces", "--poll-interval", "50ms", "--log-format", "json", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema)
	waitFor(t, 30*time.Second, "the follower to publish the chain", keptTipIs(s, c.head()))
	run := start(t, runArgs(cfg, b.Addr(), "follow-tokens", "blocks:bundle", "tokens:ethereum-etl")...)
	waitCaughtUp(t, s, b, "follow-tokens", 60*time.Second, "blocks", "tokens")
	if got := tokenRow(t, s.Pool(), tc.weth); got != "WETH|Wrapped Ether|18|3000000000000000000|erc20|3|chain" {
		t.Errorf("WETH: %s", got)
	}
	if got := tokenRow(t, s.Pool(), tc.tkn); got != "UNI-V2|Uniswap V2|18|1000000000000000000000000|erc20|1|chain" {
		t.Errorf("token: %s", got)
	}
	// Another WETH transfer: the follower publishes its block, and no second WETH item.
	c.commit(c.send(0, &tc.weth, big.NewInt(0), tc.pack(tc.wethABI, "transfer", c.addrs[2], big.NewInt(1))))
	waitFor(t, 30*time.Second, "the follower to publish the new block", keptTipIs(s, c.head()))
	waitCaughtUp(t, s, b, "follow-tokens", 60*time.Second, "blocks", "tokens")
	if hw := b.HighWatermarks("tokens")[0]; hw != 2 {
		t.Errorf("%d token items published, want 2", hw)
	}
	var traces, contracts int
	if err := s.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM contracts
		WHERE code_hash IS NOT NULL AND is_erc20)`).Scan(&traces, &contracts); err != nil {
		t.Fatal(err)
	}
	if traces < 5 || contracts != 2 {
		t.Errorf("%d traces and %d ERC-20 contracts with their code stored from the follower's bundles", traces, contracts)
	}
	if err := run.stop(t); err != nil {
		t.Errorf("chainsink run exited with %v", err)
	}
	_ = follower.cmd.Process.Signal(syscall.SIGTERM)
	<-follower.done
	if follower.err != nil {
		t.Errorf("follow exited with %v after SIGTERM", follower.err)
	}
}
