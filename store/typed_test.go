package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// The Uniswap V2 factory and the WETH/USDT pair it created on mainnet (block 10093341). Mainnet block
// 17173049 holds 2 Swap and 2 Sync logs of the pair, and Swaps of 19 other V2-style pairs.
var (
	v2Factory = common.HexToAddress("0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f")
	v2Pair    = common.HexToAddress("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852")
	weth      = common.HexToAddress("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
	usdt      = common.HexToAddress("0xdac17f958d2ee523a2206206994597c13d831ec7")
)

const factoryConfig = `contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory: {address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", abi: UniswapV2Factory, event: PairCreated, parameter: pair}
    events: [Swap, Sync, Mint, Burn]
`

type typedWorld struct {
	s      *store.Store
	cfg    store.Config
	tables *typed.Tables
	schema chain.Schema // the typed tables and factory_children
	writer *store.Writer
	dec    *decode.Decoder
}

// newTypedWorld is a migrated schema with the typed tables of yaml created, and a writer and decoder of them.
func newTypedWorld(t *testing.T, yaml string) *typedWorld {
	t.Helper()
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := typed.CompileYAML("c.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatal(err)
	}
	s, cfg := pgtest.Open(t)
	if _, err := store.ApplyTables(context.Background(), s.Pool(), cfg.Schema, ts.Records()); err != nil {
		t.Fatal(err)
	}
	schema := ts.WriteSchema()
	all, err := chain.CoreTables.With(schema...)
	if err != nil {
		t.Fatal(err)
	}
	return &typedWorld{s: s, cfg: cfg, tables: ts, schema: schema, dec: decode.New(reg, nil).WithTables(ts),
		writer: store.NewWriter(all).WithDiscovery(ts.Discovery()).WithUntyped(store.Untyped{Events: ts.UntypedEvents, Calls: ts.UntypedCalls})}
}

// creationBlock is a block at height n (block 17173049's header) holding only the factory's PairCreated
// log for the pair.
func creationBlock(t *testing.T, n uint64) chain.Rows {
	t.Helper()
	b := swapBlock(t, n).Blocks[0]
	data := append(common.LeftPadBytes(v2Pair.Bytes(), 32), common.LeftPadBytes([]byte{1}, 32)...)
	return chain.Rows{
		Blocks: []chain.Block{b},
		Logs: []chain.Log{{BlockNumber: n, LogIndex: 0, TransactionHash: b.Hash, TransactionIndex: 0, BlockTimestamp: b.Timestamp,
			Address: v2Factory.Bytes(), BlockHash: b.Hash,
			Topics: [][]byte{common.HexToHash("0x0d3648bd0f6ba80134a33ba9275ac585d9d315f0ad8355cddefde31afa28d0e9").Bytes(),
				common.LeftPadBytes(weth.Bytes(), 32), common.LeftPadBytes(usdt.Bytes(), 32)},
			Data: data}},
	}
}

// swapBlock is mainnet block 17173049 moved to height n.
func swapBlock(t *testing.T, n uint64) chain.Rows {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := fixtures.Rows17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	return fixtures.RenumberRows(&rows, n)
}

// write stores rows as the next message of a partition of topic "blocks".
func (w *typedWorld) write(t *testing.T, db store.DB, partition int32, offset int64, rows ...chain.Rows) {
	t.Helper()
	b := store.NewBatch("g", "blocks", partition, offset, chain.ReplaceBlocks)
	for i, r := range rows {
		w.dec.Enrich(&r)
		b.Add(store.Message{Offset: offset + int64(i), Rows: r})
	}
	res, err := w.writer.Write(context.Background(), db, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) > 0 {
		t.Fatalf("dead letters: %+v", res.DeadLetters)
	}
}

func (w *typedWorld) contents(t *testing.T) map[string]string {
	t.Helper()
	out, err := pgtest.ChecksumsOf(context.Background(), w.s.Pool(), w.cfg.Schema, w.schema)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rowsOf counts the rows of a typed table per contract address.
func (w *typedWorld) rowsOf(t *testing.T, table string) map[common.Address]int {
	t.Helper()
	rows, err := w.s.Pool().Query(context.Background(), `SELECT contract_address, count(*) FROM `+table+` GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[common.Address]int{}
	for rows.Next() {
		var a []byte
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			t.Fatal(err)
		}
		out[common.BytesToAddress(a)] = n
	}
	return out
}

// TestFactoryChildrenInAnyCommitOrder: the pair's creation (height 99, partition 0) and its swaps (height 100,
// partition 1) commit in either order, or in one batch: the univ2 tables end up the same, holding exactly the
// pair's 2 Swap and 2 Sync rows and none of the 19 other pairs' in the same block, which no factory of the
// configuration created. The same block at height 97 (partition 2), below the creation, before or after the
// rest, adds nothing: a contract has no logs before it exists.
func TestFactoryChildrenInAnyCommitOrder(t *testing.T) {
	t.Parallel()
	swaps := swapBlock(t, 100)
	var want map[string]string
	for _, order := range []string{"creation first", "swaps first", "one batch", "swaps first, creation redelivered"} {
		w := newTypedWorld(t, factoryConfig)
		early := len(order)%2 == 0
		if early {
			w.write(t, w.s.Pool(), 2, 0, swapBlock(t, 97))
		}
		switch order {
		case "creation first":
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99))
			w.write(t, w.s.Pool(), 1, 0, swaps)
		case "swaps first":
			w.write(t, w.s.Pool(), 1, 0, swaps)
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99))
		case "one batch":
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99), swaps)
		case "swaps first, creation redelivered":
			w.write(t, w.s.Pool(), 1, 0, swaps)
			w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99))
			w.write(t, w.s.Pool(), 0, 1, creationBlock(t, 99))
			w.write(t, w.s.Pool(), 1, 1, swaps)
		}
		if !early {
			w.write(t, w.s.Pool(), 2, 0, swapBlock(t, 97))
		}
		for table, n := range map[string]int{"univ2_evt_swap": 2, "univ2_evt_sync": 2} {
			if got := w.rowsOf(t, table); len(got) != 1 || got[v2Pair] != n {
				t.Errorf("%s: %s holds %v, want %d rows of the pair only", order, table, got, n)
			}
		}
		got := w.contents(t)
		if want == nil {
			want = got
			continue
		}
		for table, sum := range want {
			if got[table] != sum {
				t.Errorf("%s: %s is %s, after the creation first %s", order, table, got[table], sum)
			}
		}
	}
}

// TestFactoryRegistrationWaitsForOpenCandidates: a batch of the pair's swaps is in an open transaction,
// past its gate (which found no child), when the batch that registers the pair arrives. The registration
// must wait for it (the discovery lock), and then derive the swaps it committed; without the wait it would
// read the stored logs before the swaps commit, and the pair's rows would be lost for good.
func TestFactoryRegistrationWaitsForOpenCandidates(t *testing.T) {
	t.Parallel()
	w := newTypedWorld(t, factoryConfig)
	ctx := context.Background()
	tx, err := w.s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)                  //nolint:errcheck
	w.write(t, tx, 1, 0, swapBlock(t, 100)) // a savepoint of tx: written, not committed
	registrar := w.cfg
	registrar.DatabaseURL += "&application_name=registrar"
	rs, err := store.Open(ctx, registrar)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	creation := creationBlock(t, 99)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.write(t, rs.Pool(), 0, 0, creation)
	}()
	pgtest.WaitForLockWait(t, w.s.Pool(), "registrar")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if got := w.rowsOf(t, "univ2_evt_swap"); got[v2Pair] != 2 {
		t.Fatalf("univ2_evt_swap holds %v after the registration, want the pair's 2 swaps", got)
	}
}

// TestTypedRowsFollowTheirBlock: typed rows are replaced with their block (a redelivery leaves one copy), go
// with a tombstone of their height, and leave the other heights alone.
func TestTypedRowsFollowTheirBlock(t *testing.T) {
	t.Parallel()
	w := newTypedWorld(t, `contracts:
  - {name: erc20, abi: ERC20, events: [Transfer]}
  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"}
`)
	w.write(t, w.s.Pool(), 0, 0, swapBlock(t, 100), swapBlock(t, 101))
	once := w.contents(t)
	if once["erc20_evt_transfer"] == "0 rows, md5 " || once["weth_evt_deposit"] == "0 rows, md5 " {
		t.Fatalf("nothing written: %v", once)
	}
	w.write(t, w.s.Pool(), 0, 2, swapBlock(t, 101), swapBlock(t, 100))
	if again := w.contents(t); again["erc20_evt_transfer"] != once["erc20_evt_transfer"] || again["weth_evt_deposit"] != once["weth_evt_deposit"] {
		t.Fatalf("redelivery changed the typed tables: %v, before %v", again, once)
	}
	w.write(t, w.s.Pool(), 0, 4, chain.Rows{Tombstones: []uint64{101}})
	var left, gone int
	if err := w.s.Pool().QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE block_number = 100),
		count(*) FILTER (WHERE block_number = 101) FROM erc20_evt_transfer`).Scan(&left, &gone); err != nil {
		t.Fatal(err)
	}
	if left == 0 || gone != 0 {
		t.Fatalf("after the tombstone of 101: %d rows of 100, %d of 101", left, gone)
	}
}

// TestVerifyTypedTables: verify holds every typed row and registration to its log or transaction, of the same
// transaction and contract.
func TestVerifyTypedTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newTypedWorld(t, factoryConfig+`  - {name: weth, abi: WETH9, address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", calls: ["*"]}
`)
	w.write(t, w.s.Pool(), 0, 0, creationBlock(t, 99), swapBlock(t, 100))
	check := func(damage string, want []int64) {
		t.Helper()
		if damage != "" {
			if _, err := w.s.Pool().Exec(ctx, damage); err != nil {
				t.Fatal(err)
			}
		}
		from := int64(99)
		rep, err := store.Verify(ctx, w.s.Pool(), store.VerifyOptions{From: &from})
		if err != nil {
			t.Fatal(err)
		}
		c := rep.Checks[len(rep.Checks)-1]
		if c.Name != "typed_without_parent" || !strings.Contains(c.Description, fmt.Sprintf("the %d typed tables", len(w.tables.All))) {
			t.Fatalf("last check %+v", c)
		}
		if fmt.Sprint(c.Heights) != fmt.Sprint(want) {
			t.Fatalf("after %q: typed_without_parent at %v (%d problems), want %v", damage, c.Heights, c.Problems, want)
		}
	}
	check("", nil)
	check(`UPDATE univ2_evt_swap SET contract_address = '\x00' WHERE log_index = (SELECT min(log_index) FROM univ2_evt_swap)`, []int64{100})
	check(`DELETE FROM univ2_evt_swap`, nil)
	check(`DELETE FROM transactions WHERE (block_number, transaction_index) IN (SELECT block_number, transaction_index FROM weth_call_approve)`, []int64{100})
	check(`DELETE FROM weth_call_approve`, nil)
	// An internal call needs its frame in traces, not a transaction to the contract.
	check(`INSERT INTO weth_call_approve VALUES (100, now(), '\x05', 7, 1, '\x01', '\xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2',
		'\x02', 1, '{0}')`, []int64{100})
	check(`INSERT INTO traces (block_number, transaction_index, trace_address, transaction_hash, block_timestamp, type, trace_type,
		from_address, to_address, status, subtraces) SELECT block_number, 7, '{0}', transaction_hash, block_timestamp, 'call', 'call',
		'\x01', contract_address, 1, 0 FROM weth_call_approve`, nil)
	check(`DELETE FROM logs WHERE block_number = 99`, []int64{99})
}
