package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

const callsConfig = `contracts:
  - {name: tok, abi: ERC20, events: [], calls: [transfer]}
`

// transferCalls are a transaction that calls a token's transfer itself (index 0), and one whose contract
// calls it twice (index 1, frames {0} and {1,0}), as items: the transactions, and the frames apart.
func transferCalls(t *testing.T) (txs chain.Rows, frames []chain.Rows) {
	t.Helper()
	// transfer(0xbe00…, 1)
	input := append(append(common.FromHex("a9059cbb"), common.LeftPadBytes([]byte{0xbe}, 32)...), common.LeftPadBytes([]byte{1}, 32)...)
	ts := time.Unix(1_700_000_000, 0).UTC()
	token, sender, proxy := common.Address{0x70}, common.Address{0x5e}, common.Address{0xc0}
	ok := int16(1)
	txs.Transactions = []chain.Transaction{
		{BlockNumber: 900, TransactionIndex: 0, Hash: []byte{1}, BlockHash: []byte{9}, BlockTimestamp: ts, FromAddress: sender.Bytes(),
			ToAddress: token.Bytes(), Value: common.Big0, Input: input, Status: &ok},
		{BlockNumber: 900, TransactionIndex: 1, Hash: []byte{2}, BlockHash: []byte{9}, BlockTimestamp: ts, FromAddress: sender.Bytes(),
			ToAddress: proxy.Bytes(), Value: common.Big0, Input: []byte{1, 2, 3, 4}, Status: &ok},
	}
	for _, tr := range []chain.Trace{
		{TransactionIndex: 0, TraceAddress: []int32{}, Type: "call", FromAddress: sender.Bytes(), ToAddress: token.Bytes(), Input: input, Status: 1},
		{TransactionIndex: 1, TraceAddress: []int32{}, Type: "call", FromAddress: sender.Bytes(), ToAddress: proxy.Bytes(), Input: []byte{1, 2, 3, 4}, Status: 1},
		{TransactionIndex: 1, TraceAddress: []int32{0}, Type: "call", FromAddress: proxy.Bytes(), ToAddress: token.Bytes(), Input: input, Status: 1, Subtraces: 1},
		{TransactionIndex: 1, TraceAddress: []int32{0, 0}, Type: "staticcall", FromAddress: token.Bytes(), ToAddress: token.Bytes(), Input: input, Status: 1},
	} {
		tr.BlockNumber, tr.BlockTimestamp, tr.BlockHash, tr.TraceType = 900, ts, []byte{9}, "call"
		tr.TransactionHash = txs.Transactions[tr.TransactionIndex].Hash
		frames = append(frames, chain.Rows{Traces: []chain.Trace{tr}})
	}
	return txs, frames
}

// TestInternalCallsAsItemsInAnyOrder: with ethereum-etl items, a call table's row of a transaction's own
// call comes with the transaction item and the internal ones with their trace items; whichever arrives first,
// and when either is delivered again, the table holds the three calls once.
func TestInternalCallsAsItemsInAnyOrder(t *testing.T) {
	t.Parallel()
	txs, frames := transferCalls(t)
	calls := func(w *typedWorld) []string {
		rows, err := w.s.Pool().Query(context.Background(), `SELECT transaction_index || ' ' || trace_address::text FROM tok_call_transfer
			ORDER BY transaction_index, trace_address`)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	want := []string{"0 {}", "1 {0}", "1 {0,0}"}
	for name, order := range map[string][]chain.Rows{
		"transactions first":         append([]chain.Rows{txs}, frames...),
		"frames first":               append(slices.Clone(frames), txs),
		"transactions again at last": append(append([]chain.Rows{txs}, frames...), txs),
		"frames again at last":       append(append([]chain.Rows{txs}, frames...), frames...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newTypedWorld(t, callsConfig)
			for i, r := range order {
				b := store.NewBatch("g", "items", 0, int64(i), chain.ReplaceRows)
				w.dec.Enrich(&r)
				b.Add(store.Message{Offset: int64(i), Rows: r})
				if _, err := w.writer.Write(context.Background(), w.s.Pool(), b); err != nil {
					t.Fatal(err)
				}
			}
			if got := calls(w); !slices.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
		})
	}
}

// TestCallTablesOfAnEarlierChainsinkAreUpgraded: a call table created before internal calls (no
// trace_address, keyed by block and transaction) is reported upgradable, `run` refuses it like a pending
// table, and apply upgrades it in place: its rows stay, as the transactions' own calls, and it then has the
// columns, key and comments of a table created now.
func TestCallTablesOfAnEarlierChainsinkAreUpgraded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := typed.CompileYAML("c.yaml", []byte(callsConfig), reg)
	if err != nil {
		t.Fatal(err)
	}
	want := ts.Records()
	if len(want) != 1 || len(want[0].Upgrades) != 1 {
		t.Fatalf("records %+v", want)
	}
	s, cfg := pgtest.Open(t)
	db := s.Pool()
	// What chainsink recorded and created before: the upgrade's From DDL.
	old := want[0]
	old.DDL = old.Upgrades[0].From
	if strings.Contains(old.DDL, "trace_address") {
		t.Fatalf("the earlier DDL has trace_address:\n%s", old.DDL)
	}
	old.Upgrades = nil
	if _, err := store.ApplyTables(ctx, db, cfg.Schema, []store.TypedTable{old}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO tok_call_transfer (block_number, block_timestamp, transaction_hash, transaction_index,
		status, from_address, contract_address, to_, value) VALUES (5, now(), '\x01', 0, 1, '\x02', '\x03', '\x04', 7)`); err != nil {
		t.Fatal(err)
	}
	plan, err := store.PlanTables(ctx, db, want)
	if err != nil || len(plan) != 1 || plan[0].State != store.TableUpgradable {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	if err := store.CheckTables(ctx, db, want); !errors.Is(err, store.ErrTablesNotApplied) || !strings.Contains(err.Error(), "tables apply") {
		t.Fatalf("run's check: %v", err)
	}
	if got, err := store.ApplyTables(ctx, db, cfg.Schema, want); err != nil || len(got) != 1 {
		t.Fatalf("apply: %v, %v", got, err)
	}
	if err := store.CheckTables(ctx, db, want); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	var path string
	if err := db.QueryRow(ctx, `SELECT trace_address::text FROM tok_call_transfer WHERE block_number = 5`).Scan(&path); err != nil || path != "{}" {
		t.Errorf("the stored call: trace address %q, %v", path, err)
	}
	// An instance of before, still running in a rolling upgrade, writes rows without trace_address (its COPY
	// names the columns it knows): they are transactions' own calls.
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"tok_call_transfer"}, []string{"block_number", "block_timestamp",
		"transaction_hash", "transaction_index", "status", "from_address", "contract_address", "to_", "value"},
		pgx.CopyFromRows([][]any{{int64(6), time.Now(), []byte{1}, int32(0), int16(1), []byte{2}, []byte{3}, []byte{4}, "7"}})); err != nil {
		t.Errorf("a write of before, without trace_address: %v", err)
	} else if err := db.QueryRow(ctx, `SELECT trace_address::text FROM tok_call_transfer WHERE block_number = 6`).Scan(&path); err != nil || path != "{}" {
		t.Errorf("the call written without trace_address: %q, %v", path, err)
	}

	// The same table created now, in another schema: the catalogs must agree.
	fresh, freshCfg := pgtest.Open(t)
	if _, err := store.ApplyTables(ctx, fresh.Pool(), freshCfg.Schema, want); err != nil {
		t.Fatal(err)
	}
	describe := func(db store.DB, schema string) string {
		var out string
		if err := db.QueryRow(ctx, `SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
			CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || CASE WHEN a.atthasdef THEN ' default' ELSE '' END ||
			' ' || coalesce(col_description(c.oid, a.attnum), ''), E'\n' ORDER BY a.attnum)
			|| E'\n' || (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
			|| E'\n' || obj_description(c.oid, 'pg_class')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE n.nspname = $1 AND c.relname = 'tok_call_transfer' AND a.attnum > 0 AND NOT a.attisdropped
			GROUP BY c.oid`, schema).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if up, now := describe(db, cfg.Schema), describe(fresh.Pool(), freshCfg.Schema); up != now {
		t.Errorf("upgraded:\n%s\ncreated now:\n%s", up, now)
	}
}

// TestRedecodeFillsInternalCalls: a call table added after its blocks were stored is filled from the stored
// transactions and traces, internal calls included, as `redecode --config --typed-only` does.
func TestRedecodeFillsInternalCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newTypedWorld(t, callsConfig)
	txs, frames := transferCalls(t)
	raw := txs
	for _, f := range frames {
		raw.Traces = append(raw.Traces, f.Traces...)
	}
	raw.Blocks = []chain.Block{{Number: 900, Hash: []byte{9}, Timestamp: raw.Transactions[0].BlockTimestamp,
		ParentHash: make([]byte, 32), Miner: make([]byte, 20)}}
	// Stored before the set existed: no typed rows.
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 0, Rows: raw})
	if _, err := store.WriteBatch(ctx, w.s.Pool(), b); err != nil {
		t.Fatal(err)
	}
	if n := count(t, w.s, `SELECT count(*) FROM tok_call_transfer`); n != 0 {
		t.Fatalf("%d calls before the redecode", n)
	}
	res, err := store.ReplaceDerivedWith(ctx, w.s.Pool(), 900, 900, store.DeriveOptions{Typed: w.schema, TypedOnly: true},
		func(r *chain.Rows) { w.tables.Derive(r) })
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, w.s, `SELECT count(*) FROM tok_call_transfer`); n != 3 || res.Written["tok_call_transfer"] != 3 {
		t.Errorf("%d calls after the redecode (%d written), want the transaction's own and the 2 internal ones", n, res.Written["tok_call_transfer"])
	}
}

// withHash is rows with every block hash set to h: the same items in another block at the same height.
func withHash(r chain.Rows, h []byte) chain.Rows {
	r.Transactions = slices.Clone(r.Transactions)
	for i := range r.Transactions {
		r.Transactions[i].BlockHash = h
	}
	r.Traces = slices.Clone(r.Traces)
	for i := range r.Traces {
		r.Traces[i].BlockHash = h
	}
	return r
}

// TestInternalCallsOfAReorg: a reorg's block item removes the call-table rows of the orphaned block, the
// transactions' own calls with their transactions and the internal ones with their traces, and keeps the
// new block's internal calls that were stored before it.
func TestInternalCallsOfAReorg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	txs, frames := transferCalls(t)
	w := newTypedWorld(t, callsConfig)
	off := int64(0)
	write := func(rows ...chain.Rows) {
		t.Helper()
		for _, r := range rows {
			b := store.NewBatch("g", "items", 0, off, chain.ReplaceRows)
			w.dec.Enrich(&r)
			b.Add(store.Message{Offset: off, Rows: r})
			off++
			if _, err := w.writer.Write(ctx, w.s.Pool(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() (top, internal int64) {
		t.Helper()
		if err := w.s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE trace_address = '{}'),
			count(*) FILTER (WHERE trace_address <> '{}') FROM tok_call_transfer`).Scan(&top, &internal); err != nil {
			t.Fatal(err)
		}
		return top, internal
	}
	block := func(hash []byte) chain.Rows {
		return chain.Rows{Blocks: []chain.Block{{Number: 900, Hash: hash, ParentHash: make([]byte, 32), Miner: make([]byte, 20),
			Timestamp: txs.Transactions[0].BlockTimestamp, TransactionCount: 2}}}
	}
	old, repl := []byte{9}, []byte{10}
	write(append([]chain.Rows{block(old), txs}, frames...)...)
	if top, internal := count(); top != 1 || internal != 2 {
		t.Fatalf("the old block: %d own calls, %d internal", top, internal)
	}
	// In the new block transaction 1's contract calls the token once ({0}, no {0,0}): that frame arrives
	// first, then the block item, the transactions later.
	write(withHash(frames[2], repl))
	write(block(repl))
	if top, internal := count(); top != 0 || internal != 1 {
		t.Errorf("after the new block item: %d own calls (want the orphan's gone), %d internal (want the new block's {0} only)", top, internal)
	}
	var traces int64
	if err := w.s.Pool().QueryRow(ctx, `SELECT count(*) FROM traces`).Scan(&traces); err != nil || traces != 1 {
		t.Errorf("%d traces, want the new block's one, %v", traces, err)
	}
	write(withHash(txs, repl))
	if top, internal := count(); top != 1 || internal != 1 {
		t.Errorf("after the new transactions: %d own calls, %d internal", top, internal)
	}
}
