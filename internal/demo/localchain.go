package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	_ "embed"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum"
	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/simchain"
	"github.com/chainsink/chainsink/store"
)

// localChainConfig is the configuration of the demo's local chain: Uniswap V2 pairs and V3 pools found
// through their factories, WETH and every ERC-20. Its addresses are the contracts that LocalChain deploys.
//
//go:embed local-chain.yaml
var localChainConfig []byte

// LocalChain is a go-ethereum simulated chain on which WETH9, an ERC-20 token (TKN), UniswapV2Factory,
// UniswapV3Factory (all from their published bytecode) and a V3 callee were deployed, a V2 pair and a V3 pool
// of WETH/TKN created through the factories, liquidity added and swaps made both ways in each. The demo's
// mainnet data holds swaps of many pools but not the factory events that created them years earlier, so
// factory discovery is shown here, on a chain whose whole history is at hand.
type LocalChain struct {
	*simchain.Node
	Head                 uint64
	WETH, TKN            common.Address
	V2Factory, V3Factory common.Address
	Pair, Pool           common.Address
	// Swaps are the swap transactions, in order: V2's and V3's alternately.
	Swaps []common.Hash
}

// demoKey is the demo's account i: fixed, so that the contracts have the addresses of local-chain.yaml.
func demoKey(i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("chainsink demo account %d", i))))
	if err != nil {
		panic(err) // a Keccak-256 hash fails to be a key with probability about 2^-128; these do not
	}
	return k
}

// chainBuilder sends the transactions of StartLocalChain, the first error sticking.
type chainBuilder struct {
	ctx  context.Context
	node *simchain.Node
	keys []*ecdsa.PrivateKey
	sent []common.Hash
	err  error
}

func (b *chainBuilder) send(from int, to *common.Address, gas uint64, a gethabi.ABI, method string, args ...any) common.Hash {
	if b.err != nil {
		return common.Hash{}
	}
	data, err := a.Pack(method, args...)
	if err != nil {
		b.err = fmt.Errorf("pack %s: %w", method, err)
		return common.Hash{}
	}
	return b.sendData(from, to, nil, gas, data)
}

func (b *chainBuilder) sendData(from int, to *common.Address, value *big.Int, gas uint64, data []byte) common.Hash {
	if b.err != nil {
		return common.Hash{}
	}
	if value == nil {
		value = new(big.Int)
	}
	h, err := simchain.Send(b.ctx, b.node.Client(), b.keys[from], to, value, data, gas)
	if err != nil {
		b.err = err
		return common.Hash{}
	}
	b.sent = append(b.sent, h)
	return h
}

func (b *chainBuilder) deploy(from int, art simchain.Artifact, args ...any) {
	if b.err != nil {
		return
	}
	ctor, err := art.ABI.Pack("", args...)
	if err != nil {
		b.err = fmt.Errorf("pack constructor: %w", err)
		return
	}
	b.sendData(from, nil, nil, 8_000_000, append(append([]byte{}, art.Code...), ctor...))
}

// mine commits a block with what was sent since the last one, every transaction of which must succeed.
func (b *chainBuilder) mine() {
	if b.err != nil {
		return
	}
	b.node.Commit()
	for _, h := range b.sent {
		r, err := b.node.Client().TransactionReceipt(b.ctx, h)
		if err != nil {
			b.err = fmt.Errorf("receipt of %s: %w", h, err)
			return
		}
		if r.Status != types.ReceiptStatusSuccessful {
			b.err = fmt.Errorf("transaction %s failed in block %d", h, r.BlockNumber)
			return
		}
	}
	b.sent = b.sent[:0]
}

// call is an eth_call of method at the head.
func (b *chainBuilder) call(to common.Address, a gethabi.ABI, method string, args ...any) []any {
	if b.err != nil {
		return nil
	}
	data, err := a.Pack(method, args...)
	if err == nil {
		data, err = b.node.Client().CallContract(b.ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	}
	var out []any
	if err == nil {
		out, err = a.Unpack(method, data)
	}
	if err != nil {
		b.err = fmt.Errorf("call %s of %s: %w", method, to, err)
	}
	return out
}

var (
	ether = big.NewInt(1e18)
	// The V3 pool's price limits (TickMath's MIN_SQRT_RATIO + 1 and MAX_SQRT_RATIO - 1): swap as far as the
	// amount goes.
	minSqrtLimit    = big.NewInt(4295128740)
	maxSqrtLimit, _ = new(big.Int).SetString("1461446703485210103287273052203988822378723970341", 10)
)

func units(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), ether) }

// StartLocalChain starts the simulated chain and makes its history; Close stops it.
func StartLocalChain(ctx context.Context, testdata string) (*LocalChain, error) {
	arts := map[string]simchain.Artifact{}
	for _, f := range []string{"WETH9", "ERC20", "UniswapV2Factory", "UniswapV3Factory", "DemoV3Callee"} {
		a, err := simchain.LoadArtifact(filepath.Join(testdata, "contracts", f+".json"))
		if err != nil {
			return nil, err
		}
		arts[f] = a
	}
	// The pair's and the pool's ABIs are chainsink's built-in ones: the factories deploy them.
	pairABI, err := simchain.LoadABI(filepath.Join(testdata, "..", "abi", "abis", "UniswapV2Pair.json"))
	if err != nil {
		return nil, err
	}
	poolABI, err := simchain.LoadABI(filepath.Join(testdata, "..", "abi", "abis", "UniswapV3Pool.json"))
	if err != nil {
		return nil, err
	}
	keys := []*ecdsa.PrivateKey{demoKey(0), demoKey(1), demoKey(2)}
	alloc := types.GenesisAlloc{}
	for _, k := range keys {
		alloc[crypto.PubkeyToAddress(k.PublicKey)] = types.Account{Balance: units(1000)}
	}
	node, err := simchain.Start(alloc)
	if err != nil {
		return nil, err
	}
	lc := &LocalChain{Node: node}
	if err := lc.build(ctx, keys, arts, pairABI, poolABI); err != nil {
		node.Close()
		return nil, err
	}
	return lc, nil
}

func (lc *LocalChain) build(ctx context.Context, keys []*ecdsa.PrivateKey, arts map[string]simchain.Artifact, pairABI, poolABI gethabi.ABI) error {
	b := &chainBuilder{ctx: ctx, node: lc.Node, keys: keys}
	const owner, lp, trader = 0, 1, 2
	addr := func(i int) common.Address { return crypto.PubkeyToAddress(keys[i].PublicKey) }
	weth, tkn, v2, v3, callee := arts["WETH9"], arts["ERC20"], arts["UniswapV2Factory"], arts["UniswapV3Factory"], arts["DemoV3Callee"]

	// Block 1: the contracts, from the owner's nonces 0-4 (so at the addresses of local-chain.yaml).
	lc.WETH, lc.TKN = crypto.CreateAddress(addr(owner), 0), crypto.CreateAddress(addr(owner), 1)
	lc.V2Factory, lc.V3Factory = crypto.CreateAddress(addr(owner), 2), crypto.CreateAddress(addr(owner), 3)
	calleeAddr := crypto.CreateAddress(addr(owner), 4)
	b.deploy(owner, weth)
	b.deploy(owner, tkn, units(10_000_000))
	b.deploy(owner, v2, addr(owner))
	b.deploy(owner, v3)
	b.deploy(owner, callee)
	b.mine()
	for _, a := range []common.Address{lc.WETH, lc.V2Factory, lc.V3Factory} {
		if b.err == nil && !bytes.Contains(localChainConfig, []byte(strings.ToLower(a.Hex()))) {
			return fmt.Errorf("the contract deployed at %s is not in local-chain.yaml", a)
		}
	}

	// Block 2: the WETH/TKN pair (V2) and pool (V3, 0.3 %), each through its factory; tokens for the
	// liquidity provider and the trader.
	b.send(owner, &lc.V2Factory, 6_000_000, v2.ABI, "createPair", lc.WETH, lc.TKN)
	b.send(owner, &lc.V3Factory, 6_000_000, v3.ABI, "createPool", lc.WETH, lc.TKN, big.NewInt(3000))
	for _, to := range []int{lp, trader} {
		b.send(owner, &lc.TKN, 200_000, tkn.ABI, "transfer", addr(to), units(1_000_000))
		b.sendData(to, &lc.WETH, units(100), 200_000, weth.ABI.Methods["deposit"].ID)
	}
	b.mine()
	if out := b.call(lc.V2Factory, v2.ABI, "getPair", lc.WETH, lc.TKN); out != nil {
		lc.Pair = out[0].(common.Address)
	}
	if out := b.call(lc.V3Factory, v3.ABI, "getPool", lc.WETH, lc.TKN, big.NewInt(3000)); out != nil {
		lc.Pool = out[0].(common.Address)
	}
	wethIsToken0 := bytes.Compare(lc.WETH.Bytes(), lc.TKN.Bytes()) < 0

	// Block 3: liquidity at 3,000 TKN a WETH. V2: both tokens into the pair, then mint. V3: the pool starts
	// at that price (sqrtPriceX96 = sqrt(token1/token0) · 2^96) and the provider mints ±6,000 ticks around
	// it through the callee, which pays the pool from the provider's approved balances.
	b.send(lp, &lc.WETH, 200_000, weth.ABI, "transfer", lc.Pair, units(20))
	b.send(lp, &lc.TKN, 200_000, tkn.ABI, "transfer", lc.Pair, units(60_000))
	b.send(lp, &lc.Pair, 2_000_000, pairABI, "mint", addr(lp))
	price := big.NewFloat(3000)
	if !wethIsToken0 {
		price.Quo(big.NewFloat(1), price)
	}
	sqrtPrice, _ := new(big.Float).Mul(new(big.Float).Sqrt(price), new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(1), 96))).Int(nil)
	b.send(lp, &lc.Pool, 1_000_000, poolABI, "initialize", sqrtPrice)
	for _, i := range []int{lp, trader} {
		for _, token := range []common.Address{lc.WETH, lc.TKN} {
			b.send(i, &token, 200_000, tkn.ABI, "approve", calleeAddr, units(1_000_000_000))
		}
	}
	b.mine()
	var tick int64
	if out := b.call(lc.Pool, poolABI, "slot0"); out != nil {
		tick = out[1].(*big.Int).Int64()
	}
	lower, upper := (tick-6000)/60*60, (tick+6000)/60*60
	b.send(lp, &calleeAddr, 3_000_000, callee.ABI, "mint", lc.Pool, big.NewInt(lower), big.NewInt(upper), units(500))
	b.mine()

	// Blocks 4-7: the trader swaps WETH for TKN and back, in the pair and in the pool.
	for _, s := range []struct {
		in     common.Address
		amount *big.Int
	}{{lc.WETH, units(1)}, {lc.TKN, units(1500)}, {lc.WETH, new(big.Int).Div(units(5), big.NewInt(2))}, {lc.TKN, units(4000)}} {
		r := b.call(lc.Pair, pairABI, "getReserves")
		if r == nil {
			break
		}
		// getAmountOut of UniswapV2Library: the amount out for amount in, after the 0.3 % fee.
		rIn, rOut := r[0].(*big.Int), r[1].(*big.Int)
		inIsToken0 := (s.in == lc.WETH) == wethIsToken0
		if !inIsToken0 {
			rIn, rOut = rOut, rIn
		}
		inFee := new(big.Int).Mul(s.amount, big.NewInt(997))
		out := new(big.Int).Div(new(big.Int).Mul(inFee, rOut), new(big.Int).Add(new(big.Int).Mul(rIn, big.NewInt(1000)), inFee))
		out0, out1 := new(big.Int), out
		if !inIsToken0 {
			out0, out1 = out, new(big.Int)
		}
		in := s.in
		b.send(trader, &in, 200_000, tkn.ABI, "transfer", lc.Pair, s.amount)
		lc.Swaps = append(lc.Swaps, b.send(trader, &lc.Pair, 2_000_000, pairABI, "swap", out0, out1, addr(trader), []byte{}))
		limit := minSqrtLimit
		if !inIsToken0 {
			limit = maxSqrtLimit
		}
		lc.Swaps = append(lc.Swaps, b.send(trader, &calleeAddr, 3_000_000, callee.ABI, "swap", lc.Pool, inIsToken0, s.amount, limit))
		b.mine()
	}
	if b.err != nil {
		return fmt.Errorf("make the local chain's history: %w", b.err)
	}
	head, err := lc.Client().BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("read the local chain's head: %w", err)
	}
	lc.Head = head
	return nil
}

// localSchema holds the local chain's tables, apart from the mainnet data in public.
const localSchema = "local_chain"

// IndexLocalChain is the demo's second part, on lc: the chain backfilled into a topic of broker named schema
// (`chainsink backfill`), stored by `chainsink run` with local-chain.yaml (factory sets) into schema of
// dbURL (created if need be), checked with `chainsink verify --rpc`, and a summary of what factory discovery
// stored written to out.
func IndexLocalChain(ctx context.Context, o Options, lc *LocalChain, broker *localkafka.Broker, dbURL, schema string, out io.Writer) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	step("local chain (go-ethereum's simulated backend) at %s: WETH9, an ERC-20, UniswapV2Factory and UniswapV3Factory "+
		"deployed, a WETH/TKN pair (V2, %s) and pool (V3, %s) created through them, liquidity added, %d swaps: blocks 0-%d",
		lc.URL, strings.ToLower(lc.Pair.Hex()), strings.ToLower(lc.Pool.Hex()), len(lc.Swaps), lc.Head)

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", store.Redact(dbURL), err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	db := []string{"--database-url", dbURL, "--schema", schema}
	if err := runBinary(ctx, o.Binary, io.Discard, append([]string{"migrate", "up"}, db...)...); err != nil {
		return err
	}
	configPath := filepath.Join(filepath.Dir(o.Binary), "demo-local-chain.yaml")
	if err := os.WriteFile(configPath, localChainConfig, 0o644); err != nil {
		return fmt.Errorf("write the local chain's config: %w", err)
	}
	var applied strings.Builder
	if err := runBinary(ctx, o.Binary, &applied, append([]string{"tables", "apply", "--config", configPath}, db...)...); err != nil {
		return err
	}
	step("schema %s migrated, typed tables of %s applied: %d created", schema, configPath,
		strings.Count("\n"+applied.String(), "\ncreated "))

	var backfilled strings.Builder
	if err := runBinary(ctx, o.Binary, &backfilled, append([]string{"backfill", "--rpc", lc.URL, "--from", "0", "--to", "latest",
		"--brokers", broker.Addr(), "--topic", schema, "--log-format", "text"}, db...)...); err != nil {
		return err
	}
	step("chainsink backfill --rpc %s --from 0 --to latest --topic %s: %s", lc.URL, schema, strings.TrimSpace(backfilled.String()))
	if _, err := runUntilCaughtUp(ctx, o, step, broker, run{dbURL: dbURL, schema: schema,
		group: "demo-local-" + time.Now().UTC().Format("20060102T150405"), topics: schema + ":bundle",
		config: configPath, log: "demo-local-run.log"}); err != nil {
		return err
	}
	var verified strings.Builder
	if err := runBinary(ctx, o.Binary, &verified, append([]string{"verify", "--rpc", lc.URL}, db...)...); err != nil {
		return err
	}
	step("chainsink verify --rpc %s --schema %s: %s", lc.URL, schema, lastLine(verified.String()))

	st, err := store.Open(ctx, store.Config{DatabaseURL: dbURL, Schema: schema})
	if err != nil {
		return err
	}
	defer st.Close()
	children, err := FactoryChildren(ctx, st.Pool())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nChildren registered from the factories' creation events: SELECT … FROM %s.factory_children\n", schema)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  SET\tCHILD\tFACTORY\tBLOCK\n")
	for _, c := range children {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", c.Set, c.Child, c.Factory, c.BlockNumber)
	}
	_ = tw.Flush()
	typed, err := TypedTables(ctx, st.Pool())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTyped tables of %s with rows\n", schema)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  TABLE\tFROM\tCOUNT\n")
	for _, r := range typed {
		if r.Count > 0 {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", r.Label, r.Extra, r.Count)
		}
	}
	_ = tw.Flush()
	swaps, err := Swaps(ctx, st.Pool(), 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nSwaps of the factories' children: univ2_evt_swap and univ3_evt_swap of %s (amounts into the pool, negative = out)\n", schema)
	printSwaps(out, swaps)
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
