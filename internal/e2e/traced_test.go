package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/tracers"
	_ "github.com/ethereum/go-ethereum/eth/tracers/native" // registers the callTracer
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"

	"github.com/chainsink/chainsink/internal/simchain"
)

// tracedBackend is the simulated backend's assembly (a node, the eth service, a simulated beacon that mines on
// Commit) with the debug API of go-ethereum's tracers registered, which simulated.NewBackend leaves out: the
// node then serves debug_traceBlockByNumber with the callTracer, as a geth archive node with --http.api debug.
type tracedBackend struct {
	stack  *node.Node
	beacon *catalyst.SimulatedBeacon
}

func (b *tracedBackend) Commit() common.Hash           { return b.beacon.Commit() }
func (b *tracedBackend) Fork(parent common.Hash) error { return b.beacon.Fork(parent) }
func (b *tracedBackend) Close() error {
	err := b.beacon.Stop()
	if cerr := b.stack.Close(); err == nil {
		err = cerr
	}
	return err
}

// newTracedChain is newSimChain on a node that also serves the debug API.
func newTracedChain(t *testing.T) *simChain {
	t.Helper()
	c := &simChain{t: t}
	alloc := core.SystemContractAllocs() // the dev chain's forks call these, as in simulated.NewBackend
	maps.Copy(alloc, c.fundedAccounts())
	b, port, err := simchain.OnFreePort(func(port int) (*tracedBackend, error) { return startTraced(alloc, port) })
	if err != nil {
		t.Fatal(err)
	}
	c.backend, c.client, c.url = b, ethclient.NewClient(b.stack.Attach()), fmt.Sprintf("http://127.0.0.1:%d", port)
	c.wsURL = fmt.Sprintf("ws://127.0.0.1:%d", port)
	t.Cleanup(func() { _ = c.backend.Close() })
	return c
}

func startTraced(alloc types.GenesisAlloc, port int) (*tracedBackend, error) {
	nc := node.DefaultConfig
	nc.DataDir, nc.P2P = "", p2p.Config{NoDiscovery: true}
	modules := []string{"eth", "net", "web3", "debug"}
	nc.HTTPHost, nc.HTTPPort, nc.HTTPModules = "127.0.0.1", port, modules
	nc.WSHost, nc.WSPort, nc.WSModules = "127.0.0.1", port, modules
	stack, err := node.New(&nc)
	if err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	ec := ethconfig.Defaults
	ec.Genesis = &core.Genesis{Config: params.AllDevChainProtocolChanges, GasLimit: ethconfig.Defaults.Miner.GasCeil, Alloc: alloc}
	ec.SyncMode = ethconfig.FullSync
	ec.TxPool.NoLocals = true
	backend, err := eth.New(stack, &ec)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("eth service: %w", err)
	}
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("simulated beacon: %w", err)
	}
	if err := beacon.Fork(backend.BlockChain().GetCanonicalHash(0)); err != nil {
		stack.Close()
		return nil, fmt.Errorf("simulated beacon: %w", err)
	}
	return &tracedBackend{stack: stack, beacon: beacon}, nil
}

// TestTracesOfUniswapV2: on a node that serves the callTracer, the Uniswap V2 factory creates a pair (a
// CREATE2 from the factory), liquidity is minted (the pair reads both balances with staticcalls), a swap
// sends tokens out of the pair (an internal call of the token), WETH is unwrapped (an internal ether
// transfer), and a swap that breaks the invariant reverts after its token transfer succeeded. backfill
// --traces → run → the traces table holds, for every transaction, its own frame equal to the transaction
// and these internal frames with the statuses the chain gave them; verify passes.
func TestTracesOfUniswapV2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newTracedChain(t)
	wethABI, wethCode := loadArtifact(t, "WETH9.json")
	tknABI, tknCode := loadArtifact(t, "ERC20.json")
	factoryABI, factoryCode := loadArtifact(t, "UniswapV2Factory.json")
	pairABI := loadPairABI(t)
	pack := packer(t)
	owner, lp, trader := c.addrs[0], c.addrs[1], c.addrs[2]
	weth, tkn, factory := crypto.CreateAddress(owner, 0), crypto.CreateAddress(owner, 1), crypto.CreateAddress(owner, 2)
	c.commit(c.sendGas(0, nil, big.NewInt(0), wethCode, 3_000_000),
		c.sendGas(0, nil, big.NewInt(0), append(append([]byte{}, tknCode...), pack(tknABI, "", units(1_000_000))...), 3_000_000),
		c.sendGas(0, nil, big.NewInt(0), append(append([]byte{}, factoryCode...), pack(factoryABI, "", owner)...), 6_000_000))
	createPair := c.sendGas(0, &factory, big.NewInt(0), pack(factoryABI, "createPair", weth, tkn), 6_000_000)
	c.commit(createPair)
	pairOut, err := c.client.CallContract(ctx, ethereum.CallMsg{To: &factory, Data: pack(factoryABI, "getPair", weth, tkn)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair := common.BytesToAddress(pairOut)
	c.commit(c.sendGas(1, &weth, units(10), pack(wethABI, "deposit"), 200_000),
		c.sendGas(0, &tkn, big.NewInt(0), pack(tknABI, "transfer", lp, units(40_000)), 200_000))
	wethToPair := c.sendGas(1, &weth, big.NewInt(0), pack(wethABI, "transfer", pair, units(10)), 200_000)
	c.commit(wethToPair, c.sendGas(1, &tkn, big.NewInt(0), pack(tknABI, "transfer", pair, units(30_000)), 200_000))
	mint := c.sendGas(1, &pair, big.NewInt(0), pack(pairABI, "mint", lp), 2_000_000)
	c.commit(mint)

	// A swap of 1000 TKN for WETH, to the trader; amounts by getAmountOut.
	wethIsToken0 := bytes.Compare(weth.Bytes(), tkn.Bytes()) < 0
	in, rIn, rOut := units(1000), units(30_000), units(10)
	out := new(big.Int).Div(new(big.Int).Mul(new(big.Int).Mul(in, big.NewInt(997)), rOut),
		new(big.Int).Add(new(big.Int).Mul(rIn, big.NewInt(1000)), new(big.Int).Mul(in, big.NewInt(997))))
	amount0Out, amount1Out := out, big.NewInt(0)
	if !wethIsToken0 {
		amount0Out, amount1Out = big.NewInt(0), out
	}
	c.commit(c.sendGas(0, &tkn, big.NewInt(0), pack(tknABI, "transfer", pair, in), 200_000))
	swap := c.sendGas(0, &pair, big.NewInt(0), pack(pairABI, "swap", amount0Out, amount1Out, trader, []byte{}), 2_000_000)
	c.commit(swap)
	// The trader unwraps what it got: WETH sends the ether back with an internal call.
	withdraw := c.sendGas(2, &weth, big.NewInt(0), pack(wethABI, "withdraw", out), 200_000)
	c.commit(withdraw)
	// The same swap again with nothing paid in: the pair transfers the WETH out, then the K check reverts it.
	failed := c.sendGas(0, &pair, big.NewInt(0), pack(pairABI, "swap", amount0Out, amount1Out, trader, []byte{}), 2_000_000)
	c.backend.Commit()
	if r, err := c.client.TransactionReceipt(ctx, failed); err != nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("the unpaid swap: receipt %+v, %v", r, err)
	}
	head := c.head()

	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	if _, errOut, err := runBackfillCmd(t, append([]string{"--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--from", "0", "--to", "latest", "--traces", "--batch-size", "3"}, dbArgs...)...); err != nil {
		t.Fatalf("backfill --traces: %v\n%s", err, errOut)
	}
	// Typed call tables of the pair's functions (the factory's children) and of WETH's transfer: they take
	// the transactions' own calls and the internal ones from the traces.
	conf := writeTables(t, cfg, fmt.Sprintf(`contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "%s", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap]
    calls: [initialize, swap]
  - name: weth
    abi: WETH9
    address: "%s"
    events: [Withdrawal]
    calls: [transfer]
`, hexAddr(factory), hexAddr(weth)))
	p := start(t, append(runArgs(cfg, b.Addr(), "traces", "blocks:bundle"), "--config", conf)...)
	waitCaughtUp(t, s, b, "traces", 60*time.Second, "blocks")
	if err := p.stop(t); err != nil {
		t.Fatalf("chainsink run exited with %v", err)
	}
	db := s.Pool()

	// Every transaction has exactly one frame of its own, equal to it.
	var txs, tops, mismatched int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM transactions),
		(SELECT count(*) FROM traces WHERE trace_address = '{}'),
		(SELECT count(*) FROM transactions t JOIN traces x ON x.block_number = t.block_number
			AND x.transaction_index = t.transaction_index AND x.trace_address = '{}'
		 WHERE x.transaction_hash <> t.hash OR x.from_address <> t.from_address
			OR x.to_address IS DISTINCT FROM coalesce(t.to_address, t.contract_address)
			OR x.value <> t.value OR x.input <> t.input OR x.status <> t.status
			OR x.type <> CASE WHEN t.to_address IS NULL THEN 'create' ELSE 'call' END)`).Scan(&txs, &tops, &mismatched); err != nil {
		t.Fatal(err)
	}
	if txs < 12 || tops != txs || mismatched != 0 {
		t.Errorf("%d transactions, %d top frames, %d that differ from their transaction", txs, tops, mismatched)
	}

	frames := func(h common.Hash) []string {
		t.Helper()
		return queryStrings(t, db, `SELECT array_to_string(trace_address, '.') || ' ' || type || ' ' || hex(from_address) || '>' ||
			coalesce(hex(to_address), '-') || ' ' || coalesce(value::text, '-') || ' ' || coalesce(hex(substring(input from 1 for 4)), '-') ||
			' ' || status || coalesce(' ' || error, '')
			FROM traces WHERE transaction_hash = $1 ORDER BY trace_address`, h.Bytes())
	}
	hx := func(a common.Address) string { return strings.ToLower(a.Hex()) }
	sel := func(a gethabi.ABI, m string) string { return "0x" + common.Bytes2Hex(a.Methods[m].ID) }
	contains := func(what string, got []string, want string) {
		t.Helper()
		if !slices.Contains(got, want) {
			t.Errorf("%s: no frame %q among\n  %s", what, want, strings.Join(got, "\n  "))
		}
	}
	// createPair: the factory deploys the pair with CREATE2.
	got := frames(createPair)
	// (its input is the pair's init code, which solc starts with 0x60806040; then the factory initializes it)
	contains("createPair", got, fmt.Sprintf("0 create2 %s>%s 0 0x60806040 1", hx(factory), hx(pair)))
	contains("createPair", got, fmt.Sprintf("1 call %s>%s 0 %s 1", hx(factory), hx(pair), sel(pairABI, "initialize")))
	var code []byte
	if err := db.QueryRow(ctx, `SELECT output FROM traces WHERE transaction_hash = $1 AND type = 'create2'`, createPair.Bytes()).Scan(&code); err != nil {
		t.Fatal(err)
	}
	if onChain, err := c.client.CodeAt(ctx, pair, nil); err != nil || !bytes.Equal(code, onChain) {
		t.Errorf("the create2 frame's output (%d bytes) is not the pair's code (%d bytes, %v)", len(code), len(onChain), err)
	}
	// mint reads both balances with staticcalls.
	got = frames(mint)
	contains("mint", got, fmt.Sprintf("0 staticcall %s>%s - %s 1", hx(pair), hx(token(wethIsToken0, weth, tkn)), sel(tknABI, "balanceOf")))
	// swap: the pair transfers the WETH out to the trader.
	got = frames(swap)
	contains("swap", got, fmt.Sprintf("0 call %s>%s 0 %s 1", hx(pair), hx(weth), sel(wethABI, "transfer")))
	// withdraw: WETH sends the ether to the trader.
	got = frames(withdraw)
	contains("withdraw", got, fmt.Sprintf("0 call %s>%s %s 0x 1", hx(weth), hx(trader), out))
	// The reverted swap: its transfer succeeded on its own, and is failed with its parent.
	got = frames(failed)
	contains("failed swap", got, fmt.Sprintf(" call %s>%s 0 %s 0 execution reverted", hx(owner), hx(pair), sel(pairABI, "swap")))
	contains("failed swap", got, fmt.Sprintf("0 call %s>%s 0 %s 0", hx(pair), hx(weth), sel(wethABI, "transfer")))

	// contracts: the three the owner deployed and the pair the factory created, each with the code the node
	// has for it and the standards that code dispatches.
	rows, err := db.Query(ctx, `SELECT hex(address), array_to_string(trace_address, '.'), hex(deployer), code_hash,
		is_erc20, is_erc721, is_erc1155 FROM contracts ORDER BY block_number, transaction_index, trace_address`)
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for rows.Next() {
		var addr, path, deployer string
		var hash []byte
		var erc20, erc721, erc1155 bool
		if err := rows.Scan(&addr, &path, &deployer, &hash, &erc20, &erc721, &erc1155); err != nil {
			t.Fatal(err)
		}
		code, err := c.client.CodeAt(ctx, common.HexToAddress(addr), nil)
		if err != nil || len(code) == 0 || !bytes.Equal(hash, crypto.Keccak256(code)) {
			t.Errorf("contract %s: code hash %x, the node's code %d bytes (%v)", addr, hash, len(code), err)
		}
		created = append(created, fmt.Sprintf("%s %s %s %v %v %v", addr, path, deployer, erc20, erc721, erc1155))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	wantCreated := []string{
		fmt.Sprintf("%s  %s true false false", hx(weth), hx(owner)),
		fmt.Sprintf("%s  %s true false false", hx(tkn), hx(owner)),
		fmt.Sprintf("%s  %s false false false", hx(factory), hx(owner)), // its code embeds the pair's, whose selectors are not its own
		fmt.Sprintf("%s 0 %s true false false", hx(pair), hx(factory)),  // the pair is its own LP token
	}
	if !slices.Equal(created, wantCreated) {
		t.Errorf("contracts:\n  %s\nwant\n  %s", strings.Join(created, "\n  "), strings.Join(wantCreated, "\n  "))
	}

	// docs/queries.md's internal ether transfers find the withdrawal.
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM traces WHERE trace_address <> '{}' AND value > 0 AND status = 1
		AND to_address = $1`, trader.Bytes()).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d internal ether transfers to the trader, %v", n, err)
	}
	// The call tables: the factory's internal call of initialize on the pair it created; the two swaps sent
	// to the pair; WETH's transfer sent by the LP, and the pair's internal transfers of WETH out, the second
	// one failed with the swap that made it.
	calls := func(table string) []string {
		t.Helper()
		return queryStrings(t, db, `SELECT encode(transaction_hash, 'hex') || ' ' || trace_address::text || ' ' ||
			hex(from_address) || '>' || hex(contract_address) || ' ' || coalesce(status::text, '-')
			FROM `+table+` ORDER BY block_number, transaction_index, trace_address`)
	}
	h := func(x common.Hash) string { return common.Bytes2Hex(x.Bytes()) }
	for table, want := range map[string][]string{
		"univ2_call_initialize": {fmt.Sprintf("%s {1} %s>%s 1", h(createPair), hx(factory), hx(pair))},
		"univ2_call_swap": {fmt.Sprintf("%s {} %s>%s 1", h(swap), hx(owner), hx(pair)),
			fmt.Sprintf("%s {} %s>%s 0", h(failed), hx(owner), hx(pair))},
		"weth_call_transfer": {fmt.Sprintf("%s {} %s>%s 1", h(wethToPair), hx(lp), hx(weth)),
			fmt.Sprintf("%s {0} %s>%s 1", h(swap), hx(pair), hx(weth)),
			fmt.Sprintf("%s {0} %s>%s 0", h(failed), hx(pair), hx(weth))},
	} {
		if got := calls(table); !slices.Equal(got, want) {
			t.Errorf("%s:\n  %s\nwant\n  %s", table, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	requireVerified(t, dbArgs, c.url, int64(head)+1, nil)
	t.Run("docs/queries.md", func(t *testing.T) { checkTraceQueries(t, s) })
}

func token(first bool, a, b common.Address) common.Address {
	if first {
		return a
	}
	return b
}
