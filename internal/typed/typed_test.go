package typed_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/config"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store/chain"
)

func compile(t testing.TB, yaml string) *typed.Tables {
	t.Helper()
	ts, err := typed.CompileYAML("c.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"PairCreated": "pair_created", "amount0In": "amount0_in", "sqrtPriceX96": "sqrt_price_x96",
		"tokenURI": "token_uri", "URIChanged": "uri_changed", "_from": "from", "wad": "wad", "ERC20Token": "erc20_token",
		"TransferSingle": "transfer_single", "__a__b": "a_b", "amount-0": "amount_0", "": "", "_": "", "ID": "id",
		"isApprovedForAll": "is_approved_for_all", "safeTransferFrom": "safe_transfer_from",
	} {
		if got := typed.SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func columnsOf(tb *typed.Table) string {
	var out []string
	for _, c := range tb.Columns {
		out = append(out, c.Name+" "+c.Type)
	}
	return strings.Join(out, ", ")
}

func table(t *testing.T, ts *typed.Tables, name string) *typed.Table {
	t.Helper()
	for _, tb := range ts.All {
		if tb.Name == name {
			return tb
		}
	}
	var names []string
	for _, tb := range ts.All {
		names = append(names, tb.Name)
	}
	t.Fatalf("no table %s among %v", name, names)
	return nil
}

func TestTablesOfRealABIs(t *testing.T) {
	ts := compile(t, `contracts:
  - {name: univ2, abi: UniswapV2Pair, events: [Swap, Sync], calls: [swap]}
  - {name: univ3, abi: UniswapV3Pool, events: [Swap]}
  - {name: erc20, abi: ERC20}
  - {name: nft, abi: ERC721, calls: ["*"]}
`)
	for name, want := range map[string]string{
		"univ2_evt_swap": "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
			"log_index integer, contract_address bytea, sender bytea, amount0_in numeric(78,0), amount1_in numeric(78,0), " +
			"amount0_out numeric(78,0), amount1_out numeric(78,0), to_ bytea",
		"univ2_evt_sync": "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
			"log_index integer, contract_address bytea, reserve0 numeric(78,0), reserve1 numeric(78,0)",
		// int24 fits bigint; uint160, uint128 and int256 do not.
		"univ3_evt_swap": "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
			"log_index integer, contract_address bytea, sender bytea, recipient bytea, amount0 numeric(78,0), amount1 numeric(78,0), " +
			"sqrt_price_x96 numeric(78,0), liquidity numeric(78,0), tick bigint",
		"univ2_call_swap": "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
			"status smallint, from_address bytea, contract_address bytea, amount0_out numeric(78,0), amount1_out numeric(78,0), to_ bytea, data bytea, " +
			"trace_address integer[]",
		"erc20_evt_transfer": "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
			"log_index integer, contract_address bytea, from_ bytea, to_ bytea, value numeric(78,0)",
	} {
		if got := columnsOf(table(t, ts, name)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	// ERC-721's overloaded safeTransferFrom gets one table per overload, suffixed with its selector.
	table(t, ts, "nft_call_safe_transfer_from_42842e0e")
	table(t, ts, "nft_call_safe_transfer_from_b88d4fde")
	for _, tb := range ts.All {
		if strings.HasPrefix(tb.Name, "nft_call_transfer_from_") {
			t.Errorf("%s: transferFrom is not overloaded and takes no suffix", tb.Name)
		}
	}
	ddl := table(t, ts, "univ2_evt_swap").DDL()
	for _, want := range []string{
		"PRIMARY KEY (block_number, log_index)",
		"CREATE INDEX univ2_evt_swap_contract_block_idx ON univ2_evt_swap (contract_address, block_number);",
		"COMMENT ON TABLE univ2_evt_swap IS 'event Swap(address,uint256,uint256,uint256,uint256,address) (topic0 0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822) of ABI UniswapV2Pair, contract set univ2';",
		"COMMENT ON COLUMN univ2_evt_swap.sender IS 'address indexed sender';",
		"COMMENT ON COLUMN univ2_evt_swap.to_ IS 'address indexed to';",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q:\n%s", want, ddl)
		}
	}
}

func TestCompileErrorsPointAtTheLine(t *testing.T) {
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown abi", "contracts:\n  - name: a\n    abi: UniswapV9\n", `c.yaml:3: set a: no ABI named "UniswapV9"`},
		{"unknown event", "contracts:\n  - name: a\n    abi: UniswapV2Pair\n    events: [Swapp]\n", `c.yaml:4: set a: ABI UniswapV2Pair has no event "Swapp"`},
		{"unknown function", "contracts:\n  - name: a\n    abi: UniswapV2Pair\n    calls: [swapp]\n", `c.yaml:4: set a: ABI UniswapV2Pair has no function "swapp"`},
		{"factory event", "contracts:\n  - name: a\n    abi: UniswapV2Pair\n    factory:\n      address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n      abi: UniswapV2Factory\n      event: PoolCreated\n      parameter: pair\n",
			`c.yaml:7: set a: factory ABI UniswapV2Factory has 0 events named "PoolCreated"`},
		{"factory parameter", "contracts:\n  - name: a\n    abi: UniswapV2Pair\n    factory:\n      address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n      abi: UniswapV2Factory\n      event: PairCreated\n      parameter: token9\n",
			`c.yaml:8: set a: factory event PairCreated(address,address,address,uint256) has no parameter "token9"`},
		{"factory parameter not an address", "contracts:\n  - name: a\n    abi: UniswapV2Pair\n    factory:\n      address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n      abi: UniswapV2Factory\n      event: PairCreated\n      parameter: arg3\n",
			`c.yaml:8: set a: factory parameter arg3 is uint256, not an address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("c.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = typed.Compile(f, reg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Column names never need quoting: reserved words get a trailing _, and a parameter named like a position
// column, or like an earlier parameter, gets _N.
func TestColumnNamingRules(t *testing.T) {
	reg := abi.NewRegistry()
	if err := reg.Add("Odd", []byte(`[{"type":"event","name":"Odd","inputs":[
		{"name":"block_number","type":"uint256","indexed":false},
		{"name":"order","type":"uint8","indexed":false},
		{"name":"","type":"bool","indexed":false},
		{"name":"amountIn","type":"int64","indexed":false},
		{"name":"amount_in","type":"int72","indexed":false},
		{"name":"2x","type":"string","indexed":true},
		{"name":"path","type":"address[]","indexed":false},
		{"name":"pair","type":"tuple","components":[{"name":"a","type":"uint256"},{"name":"b","type":"bytes4"}],"indexed":false}]}]`)); err != nil {
		t.Fatal(err)
	}
	ts, err := typed.CompileYAML("c.yaml", []byte("contracts:\n  - {name: o, abi: Odd}\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	want := "block_number bigint, block_timestamp timestamptz, transaction_hash bytea, transaction_index integer, " +
		"log_index integer, contract_address bytea, block_number_0 numeric(78,0), order_ bigint, arg2 boolean, " +
		"amount_in bigint, amount_in_4 numeric(78,0), arg_2x bytea, path jsonb, pair jsonb"
	if got := columnsOf(ts.All[0]); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

// expectedEvent is a line of testdata/abi-expected/block_17173049_events.jsonl: the events table's decoding
// of the block's logs, itself checked against TrueBlocks (abi's golden tests).
type expectedEvent struct {
	LogIndex int32                      `json:"log_index"`
	ABI      string                     `json:"abi"`
	Name     string                     `json:"name"`
	Args     map[string]json.RawMessage `json:"args"`
}

// render writes a typed value the way the events table's JSON does, so that the two decodings compare.
func render(v any) string {
	switch x := v.(type) {
	case *big.Int:
		return `"` + x.String() + `"`
	case int64:
		return fmt.Sprintf(`"%d"`, x)
	case []byte:
		return `"0x` + hex.EncodeToString(x) + `"`
	case bool:
		return fmt.Sprint(x)
	case string:
		b, _ := json.Marshal(x)
		return string(b)
	case json.RawMessage:
		return string(x)
	}
	return fmt.Sprintf("unexpected %T", v)
}

// Block 17173049's logs decode into typed rows that carry, column for column, what the events table carries
// as JSON for the same logs, and only for the logs of each set's contracts.
func TestTypedRowsOfBlock17173049(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := fixtures.Rows17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	ts := compile(t, `contracts:
  - {name: univ2, abi: UniswapV2Pair, events: [Swap, Mint, Burn, Sync]}
  - {name: univ3, abi: UniswapV3Pool}
  - {name: erc20, abi: ERC20}
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", events: [Deposit, Withdrawal]}
`)
	if bad := ts.Derive(&rows); bad != 0 {
		t.Fatalf("%d logs did not decode", bad)
	}
	f, err := os.Open(filepath.Join(root, "abi-expected", "block_17173049_events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]map[int32]expectedEvent{} // table → log index → event
	setOf := map[string]string{"UniswapV2Pair": "univ2", "UniswapV3Pool": "univ3", "ERC20": "erc20", "WETH9": "weth"}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e expectedEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		set, ok := setOf[e.ABI]
		if !ok || (set == "weth" && e.Name != "Deposit" && e.Name != "Withdrawal") {
			continue
		}
		name := set + "_evt_" + typed.SnakeCase(e.Name)
		if want[name] == nil {
			want[name] = map[int32]expectedEvent{}
		}
		want[name][e.LogIndex] = e
	}
	total := 0
	for _, tb := range ts.All {
		got := rows.Typed[tb.Table]
		if len(got) != len(want[tb.Name]) {
			t.Errorf("%s: %d rows, want %d", tb.Name, len(got), len(want[tb.Name]))
		}
		for _, row := range got {
			li := row[4].(int32)
			e, ok := want[tb.Name][li]
			if !ok {
				t.Errorf("%s: a row for log %d, which the events table decodes otherwise", tb.Name, li)
				continue
			}
			lg := rows.Logs[li]
			if row[0] != int64(lg.BlockNumber) || row[1] != lg.BlockTimestamp ||
				string(row[5].([]byte)) != string(lg.Address) || string(row[2].([]byte)) != string(lg.TransactionHash) {
				t.Errorf("%s log %d: position %v", tb.Name, li, row[:6])
			}
			for i, c := range tb.Columns[6:] {
				arg := strings.TrimSuffix(c.Name, "_")
				if arg == "" {
					continue
				}
				wantArg, ok := e.Args[arg]
				if !ok {
					// the ABI's own name, for names the column rule changed (amount0In → amount0_in)
					for k, v := range e.Args {
						if typed.SnakeCase(k) == arg {
							wantArg, ok = v, true
						}
					}
				}
				if !ok {
					t.Errorf("%s log %d: column %s has no argument in %v", tb.Name, li, c.Name, e.Args)
					continue
				}
				if got := render(row[6+i]); got != string(wantArg) {
					t.Errorf("%s log %d column %s = %s, want %s", tb.Name, li, c.Name, got, wantArg)
				}
			}
			total++
		}
	}
	if total < 150 {
		t.Fatalf("only %d typed rows compared", total)
	}
	t.Logf("%d typed rows equal the events table's decoding", total)
}

// An upgraded proxy's ABI versions: each table holds the rows of the blocks in which a version that has its
// entry is in force. V1 (from 0) and V2 (from 100) have Ping(address indexed, uint256); V2 adds Pong; V3
// (from 200) indexes Ping's value too, which makes another table of the same signature.
func TestABIVersions(t *testing.T) {
	reg := abi.NewRegistry()
	ping := `{"type":"event","name":"Ping","inputs":[{"name":"caller","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":%s}]}`
	pong := `{"type":"event","name":"Pong","inputs":[{"name":"n","type":"uint64","indexed":false}]}`
	for name, js := range map[string]string{
		"V1": "[" + fmt.Sprintf(ping, "false") + "]",
		"V2": "[" + fmt.Sprintf(ping, "false") + "," + pong + "]",
		"V3": "[" + fmt.Sprintf(ping, "true") + "]",
	} {
		if err := reg.Add(name, []byte(js)); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := typed.CompileYAML("c.yaml", []byte(`contracts:
  - name: proxy
    address: "0x00000000000000000000000000000000000000aa"
    abi:
      - {from_block: 0, name: V1}
      - {from_block: 100, name: V2}
      - {from_block: 200, name: V3}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range ts.All {
		names = append(names, tb.Name+"("+tb.Contract.Name+")")
	}
	if got := strings.Join(names, " "); got != "proxy_evt_ping_fd8d0c1d_i10(V1) proxy_evt_pong(V2) proxy_evt_ping_fd8d0c1d_i11(V3)" {
		t.Fatalf("tables %s", got)
	}
	proxy := common.HexToAddress("0xaa")
	caller := common.BytesToHash(common.HexToAddress("0x01").Bytes())
	pingTopic := crypto.Keccak256Hash([]byte("Ping(address,uint256)"))
	pongTopic := crypto.Keccak256Hash([]byte("Pong(uint64)"))
	word := common.BigToHash(big.NewInt(7)).Bytes()
	var rows chain.Rows
	for i, l := range []struct {
		block  uint64
		topics []common.Hash
	}{
		{50, []common.Hash{pingTopic, caller}}, {50, []common.Hash{pongTopic}}, {50, []common.Hash{pingTopic, caller, common.BigToHash(big.NewInt(7))}},
		{150, []common.Hash{pingTopic, caller}}, {150, []common.Hash{pongTopic}},
		{250, []common.Hash{pingTopic, caller}}, {250, []common.Hash{pongTopic}}, {250, []common.Hash{pingTopic, caller, common.BigToHash(big.NewInt(7))}},
	} {
		lg := chain.Log{BlockNumber: l.block, LogIndex: int32(i), Address: proxy.Bytes(), Data: word}
		if len(l.topics) == 3 {
			lg.Data = nil
		}
		for _, tp := range l.topics {
			lg.Topics = append(lg.Topics, tp.Bytes())
		}
		rows.Logs = append(rows.Logs, lg)
	}
	ts.Derive(&rows)
	got := map[string][]int64{}
	for _, tb := range ts.All {
		for _, r := range rows.Typed[tb.Table] {
			got[tb.Name] = append(got[tb.Name], r[0].(int64))
		}
	}
	want := map[string][]int64{"proxy_evt_ping_fd8d0c1d_i10": {50, 150}, "proxy_evt_pong": {150}, "proxy_evt_ping_fd8d0c1d_i11": {250}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows by block %v, want %v", got, want)
	}
}

// TestInternalCalls: a call table holds the transaction's own call at trace address {} (from the
// transaction) and the internal calls of its function (from the traces): call and staticcall frames, with
// the frame's caller and status. The frame is real: an ERC-20 transfer made by a contract on mainnet (block
// 2295104, go-ethereum's call_tracer/inner_throw_outer_revert.json) that failed with its parent.
func TestInternalCalls(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "go-ethereum/eth/tracers/internal/tracetest/testdata/call_tracer/inner_throw_outer_revert.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Result struct {
			From, To, Input string
			Calls           []struct{ From, To, Input, Error string }
		}
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	inner := fx.Result.Calls[0]
	token, caller := common.HexToAddress(inner.To), common.HexToAddress(inner.From)
	ts := compile(t, `contracts:
  - {name: tok, abi: ERC20, events: [], calls: [transfer]}
`)
	ts0 := time.Unix(1513681256, 0).UTC()
	frame := func(typ string, path []int32, status int16, to common.Address) chain.Trace {
		return chain.Trace{BlockNumber: 2295104, TransactionIndex: 3, TraceAddress: path, TransactionHash: []byte{7},
			BlockTimestamp: ts0, Type: typ, TraceType: "call", FromAddress: caller.Bytes(), ToAddress: to.Bytes(),
			Input: common.FromHex(inner.Input), Status: status, Error: inner.Error}
	}
	ok := int16(1)
	rows := chain.Rows{
		// The same transfer as a transaction of its own, at index 2, to see the two kinds side by side.
		Transactions: []chain.Transaction{{BlockNumber: 2295104, TransactionIndex: 2, Hash: []byte{6}, BlockTimestamp: ts0,
			FromAddress: caller.Bytes(), ToAddress: token.Bytes(), Input: common.FromHex(inner.Input), Status: &ok}},
		Traces: []chain.Trace{
			frame("call", []int32{}, 1, token),                 // a transaction's own frame: the transaction gives its row
			frame("call", []int32{0}, 0, token),                // the real internal call, failed under its reverted parent
			frame("staticcall", []int32{1, 0}, 1, token),       // a staticcall is a call of the token too
			frame("delegatecall", []int32{2}, 1, token),        // the token's code for the caller: not a call of the token
			frame("callcode", []int32{3}, 1, token),            // likewise
			frame("call", []int32{4}, 1, common.Address{0x01}), // another contract's transfer is one too (the set is any address)
		},
	}
	rows.Traces[5].Input = rows.Traces[5].Input[:4+32] // a transfer whose calldata does not decode
	if bad := ts.Derive(&rows); bad != 1 {
		t.Errorf("%d undecodable, want the truncated transfer", bad)
	}
	var got []string
	for _, r := range rows.Typed[table(t, ts, "tok_call_transfer").Table] {
		status := "-"
		if s, _ := r[4].(*int16); s != nil {
			status = fmt.Sprint(*s)
		}
		got = append(got, fmt.Sprintf("%d %s from %x to %x: %x %v", r[3], chain.FrameText(r[len(r)-1].([]int32)), r[5], r[6],
			r[7], r[8]))
		got[len(got)-1] += " status " + status
	}
	want := []string{
		fmt.Sprintf("2 {} from %x to %x: %x 756 status 1", caller, token, common.HexToAddress("0xd4fcab9f0a6dc0493af47c864f6f17a8a5e2e826")),
		fmt.Sprintf("3 {0} from %x to %x: %x 756 status 0", caller, token, common.HexToAddress("0xd4fcab9f0a6dc0493af47c864f6f17a8a5e2e826")),
		fmt.Sprintf("3 {1,0} from %x to %x: %x 756 status 1", caller, token, common.HexToAddress("0xd4fcab9f0a6dc0493af47c864f6f17a8a5e2e826")),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
