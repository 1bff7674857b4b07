package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// rawBlock17173049 is block 17173049 as ethereum-etl delivers it, decoded but not enriched: blocks,
// transactions and logs, no token transfers, events or calls.
func rawBlock17173049(t *testing.T) chain.Rows {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	items, err := fixtures.ETLItems(root)
	if err != nil {
		t.Fatal(err)
	}
	var rows chain.Rows
	for _, kind := range []string{"block", "transaction", "log"} {
		for _, line := range items[kind] {
			r, failure := format.Decode(format.EthereumETL, nil, line)
			if failure != nil {
				t.Fatalf("decode %s item: %v", kind, failure.Err)
			}
			rows.Add(&r)
		}
	}
	if len(rows.Blocks) != 1 || len(rows.Logs) != 271 || len(rows.Transactions) != 116 ||
		len(rows.TokenTransfers)+len(rows.Events)+len(rows.Calls) != 0 {
		t.Fatalf("fixture: %d blocks %d logs %d transactions %d derived", len(rows.Blocks), len(rows.Logs),
			len(rows.Transactions), len(rows.TokenTransfers)+len(rows.Events)+len(rows.Calls))
	}
	return rows
}

// derivedRows are the derived rows in a comparable form: primary-key order, UTC times, JSON args by meaning.
type derivedRows struct {
	TokenTransfers []chain.TokenTransfer
	Events         []chain.Event
	Calls          []chain.Call
}

func canonJSON(t *testing.T, j []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatalf("args %s: %v", j, err)
	}
	out, _ := json.Marshal(v)
	return out
}

func derivedOf(t *testing.T, r chain.Rows) derivedRows {
	t.Helper()
	d := derivedRows{TokenTransfers: slices.Clone(r.TokenTransfers), Events: slices.Clone(r.Events), Calls: slices.Clone(r.Calls)}
	for i := range d.TokenTransfers {
		d.TokenTransfers[i].BlockTimestamp = d.TokenTransfers[i].BlockTimestamp.UTC()
	}
	for i := range d.Events {
		d.Events[i].BlockTimestamp = d.Events[i].BlockTimestamp.UTC()
		d.Events[i].Args = canonJSON(t, d.Events[i].Args)
	}
	for i := range d.Calls {
		d.Calls[i].BlockTimestamp = d.Calls[i].BlockTimestamp.UTC()
		d.Calls[i].Args = canonJSON(t, d.Calls[i].Args)
	}
	slices.SortFunc(d.TokenTransfers, func(a, b chain.TokenTransfer) int {
		return cmp.Or(cmp.Compare(a.BlockNumber, b.BlockNumber), cmp.Compare(a.LogIndex, b.LogIndex), cmp.Compare(a.BatchIndex, b.BatchIndex))
	})
	slices.SortFunc(d.Events, func(a, b chain.Event) int {
		return cmp.Or(cmp.Compare(a.BlockNumber, b.BlockNumber), cmp.Compare(a.LogIndex, b.LogIndex))
	})
	slices.SortFunc(d.Calls, func(a, b chain.Call) int {
		return cmp.Or(cmp.Compare(a.BlockNumber, b.BlockNumber), cmp.Compare(a.TransactionIndex, b.TransactionIndex))
	})
	return d
}

func storedDerived(t *testing.T, ctx context.Context, db store.DB) derivedRows {
	t.Helper()
	r, err := pgtest.ReadRows(ctx, db, 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	return derivedOf(t, r)
}

func requireDerivedEqual(t *testing.T, got, want derivedRows) {
	t.Helper()
	if len(got.TokenTransfers) != len(want.TokenTransfers) || len(got.Events) != len(want.Events) || len(got.Calls) != len(want.Calls) {
		t.Fatalf("got %d token transfers, %d events, %d calls; want %d, %d, %d", len(got.TokenTransfers),
			len(got.Events), len(got.Calls), len(want.TokenTransfers), len(want.Events), len(want.Calls))
	}
	for i := range want.TokenTransfers {
		if !reflect.DeepEqual(got.TokenTransfers[i], want.TokenTransfers[i]) {
			t.Fatalf("token transfer %d:\n got %+v\nwant %+v", i, got.TokenTransfers[i], want.TokenTransfers[i])
		}
	}
	for i := range want.Events {
		if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, got.Events[i], want.Events[i])
		}
	}
	for i := range want.Calls {
		if !reflect.DeepEqual(got.Calls[i], want.Calls[i]) {
			t.Fatalf("call %d:\n got %+v\nwant %+v", i, got.Calls[i], want.Calls[i])
		}
	}
}

// storeRaw writes rows in one batch, as `chainsink run` would without ABIs.
func storeRaw(t *testing.T, ctx context.Context, db store.DB, rows chain.Rows) {
	t.Helper()
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 0, Value: []byte("block"), Rows: rows})
	writeBatch(t, ctx, db, b)
}

func TestRedecodeDerivesWhatALiveDecodeWould(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	raw := rawBlock17173049(t)
	storeRaw(t, ctx, s.Pool(), raw)

	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	enriched := raw
	decode.New(reg, nil).Enrich(&enriched)
	want := derivedOf(t, enriched)
	if len(want.TokenTransfers) != 114 || len(want.Events) == 0 || len(want.Calls) == 0 {
		t.Fatalf("reference decode: %d token transfers, %d events, %d calls", len(want.TokenTransfers),
			len(want.Events), len(want.Calls))
	}

	// A range around the block, in batches of 7 blocks: 15 batches, one of which holds the block.
	args := append([]string{"redecode", "--from", "17173000", "--to", "17173100", "--batch-blocks", "7"}, dbArgs(cfg)...)
	out, stderr, err := runCLI(ctx, args...)
	if err != nil {
		t.Fatalf("redecode: %v\n%s", err, stderr)
	}
	got := storedDerived(t, ctx, s.Pool())
	if len(got.TokenTransfers) != 114 {
		t.Fatalf("token transfers = %d, want 114", len(got.TokenTransfers))
	}
	requireDerivedEqual(t, got, want)
	if n := strings.Count(stderr, `"msg":"redecoded batch"`); n != 15 {
		t.Errorf("%d progress lines, want 15:\n%s", n, stderr)
	}
	for _, field := range []string{`"blocks_per_second":`, `"done_blocks":101`, `"total_blocks":101`, `"percent":100,`} {
		if !strings.Contains(stderr, field) {
			t.Errorf("progress lacks %s:\n%s", field, stderr)
		}
	}
	if !strings.Contains(out, "redecoded blocks 17173000 to 17173100 with all ABIs") ||
		!strings.Contains(out, "token_transfers 0 deleted, 114 written") {
		t.Errorf("summary: %s", out)
	}

	// A few rows exactly: the first ERC-20 transfer of the block and WETH's first Deposit, which is an event but
	// not a token transfer.
	tt := got.TokenTransfers[0]
	if tt.LogIndex != 0 || tt.Standard != "erc20" || tt.TokenAddress == nil ||
		"0x"+hex.EncodeToString(tt.TokenAddress) != "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" {
		t.Errorf("first token transfer = %+v", tt)
	}
	var deposit *chain.Event
	for i := range got.Events {
		if got.Events[i].ABIName == "WETH9" && got.Events[i].EventName == "Deposit" {
			deposit = &got.Events[i]
			break
		}
	}
	if deposit == nil || deposit.Signature != "Deposit(address,uint256)" || !bytes.Contains(deposit.Args, []byte(`"wad":"`)) {
		t.Errorf("WETH Deposit = %+v", deposit)
	}

	// Again: the very same rows.
	if _, stderr, err := runCLI(ctx, args...); err != nil {
		t.Fatalf("second redecode: %v\n%s", err, stderr)
	}
	requireDerivedEqual(t, storedDerived(t, ctx, s.Pool()), want)
}

// seaportABI is the one event of Seaport 1.x that block 17173049 holds (in a transaction that fills an order).
const seaportABI = `[{"anonymous":false,"name":"OrderFulfilled","type":"event","inputs":[
 {"indexed":false,"name":"orderHash","type":"bytes32"},
 {"indexed":true,"name":"offerer","type":"address"},
 {"indexed":true,"name":"zone","type":"address"},
 {"indexed":false,"name":"recipient","type":"address"},
 {"indexed":false,"name":"offer","type":"tuple[]","components":[
  {"name":"itemType","type":"uint8"},{"name":"token","type":"address"},
  {"name":"identifier","type":"uint256"},{"name":"amount","type":"uint256"}]},
 {"indexed":false,"name":"consideration","type":"tuple[]","components":[
  {"name":"itemType","type":"uint8"},{"name":"token","type":"address"},
  {"name":"identifier","type":"uint256"},{"name":"amount","type":"uint256"},{"name":"recipient","type":"address"}]}]}]`

const seaportSignature = "OrderFulfilled(bytes32,address,address,address,(uint8,address,uint256,uint256)[],(uint8,address,uint256,uint256,address)[])"

// chainlinkABI holds the two events of Chainlink's price feed aggregators, also in the block.
const chainlinkABI = `[
 {"anonymous":false,"name":"AnswerUpdated","type":"event","inputs":[
  {"indexed":true,"name":"current","type":"int256"},{"indexed":true,"name":"roundId","type":"uint256"},
  {"indexed":false,"name":"updatedAt","type":"uint256"}]},
 {"anonymous":false,"name":"NewRound","type":"event","inputs":[
  {"indexed":true,"name":"roundId","type":"uint256"},{"indexed":true,"name":"startedBy","type":"address"},
  {"indexed":false,"name":"startedAt","type":"uint256"}]}]`

func logsWithTopic0(rows chain.Rows, sig string) []chain.Log {
	topic0 := crypto.Keccak256([]byte(sig))
	var out []chain.Log
	for _, l := range rows.Logs {
		if len(l.Topics) > 0 && bytes.Equal(l.Topics[0], topic0) {
			out = append(out, l)
		}
	}
	return out
}

func eventsOf(d derivedRows, abiName string) []chain.Event {
	var out []chain.Event
	for _, e := range d.Events {
		if e.ABIName == abiName {
			out = append(out, e)
		}
	}
	return out
}

// "Add an ABI and fill the history": a redecode with --abi adds the new ABI's events to blocks indexed before it
// existed, and leaves every other row alone.
func TestRedecodeWithNewABIFillsHistoryAndLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	raw := rawBlock17173049(t)

	// The live decode with the built-in ABIs: it does not know Seaport's or Chainlink's events.
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	live := raw
	decode.New(reg, nil).Enrich(&live)
	seaportLogs := logsWithTopic0(raw, seaportSignature)
	answerLogs := logsWithTopic0(raw, "AnswerUpdated(int256,uint256,uint256)")
	roundLogs := logsWithTopic0(raw, "NewRound(uint256,address,uint256)")
	if len(seaportLogs) != 1 || len(answerLogs) != 2 || len(roundLogs) != 2 {
		t.Fatalf("fixture: %d Seaport, %d AnswerUpdated, %d NewRound logs", len(seaportLogs), len(answerLogs), len(roundLogs))
	}
	for _, e := range live.Events {
		for _, l := range append(append(slices.Clone(seaportLogs), answerLogs...), roundLogs...) {
			if e.LogIndex == l.LogIndex {
				t.Fatalf("the built-in ABIs already decode log %d as %s", l.LogIndex, e.Signature)
			}
		}
	}
	storeRaw(t, ctx, s.Pool(), live)

	// Rows that prove what is left alone and what is replaced: an ERC20 event changed by hand must stay changed
	// (it is not rewritten), and a stale Seaport row on a log that Seaport does not decode must go.
	var erc20Log int32
	if err := s.Pool().QueryRow(ctx, `UPDATE events SET args = '{"edited": true}'
		WHERE (block_number, log_index) = (SELECT block_number, min(log_index) FROM events WHERE abi_name = 'ERC20' GROUP BY 1)
		RETURNING log_index`).Scan(&erc20Log); err != nil {
		t.Fatal(err)
	}
	stale := answerLogs[0]
	if _, err := s.Pool().Exec(ctx, `INSERT INTO events VALUES ($1, $2, $3, $4, $5, 'Stale', 'Stale()', 'Seaport', '{}')`,
		int64(stale.BlockNumber), stale.LogIndex, stale.TransactionHash, stale.BlockTimestamp, stale.Address); err != nil {
		t.Fatal(err)
	}
	before := storedDerived(t, ctx, s.Pool())

	dir := t.TempDir()
	for name, text := range map[string]string{"Seaport.json": seaportABI, "Chainlink.json": chainlinkABI} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"redecode", "--from", "17173049", "--to", "17173049", "--abi-dir", dir, "--abi", "Seaport"},
		dbArgs(cfg)...)
	out, stderr, err := runCLI(ctx, args...)
	if err != nil {
		t.Fatalf("redecode --abi Seaport: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "with ABIs Seaport") || !strings.Contains(out, "events 1 deleted, 1 written") {
		t.Errorf("summary: %s", out)
	}
	after := storedDerived(t, ctx, s.Pool())

	// Exactly one new event, Seaport's OrderFulfilled on its log; the stale Seaport row is gone.
	seaport := eventsOf(after, "Seaport")
	if len(seaport) != 1 {
		t.Fatalf("Seaport events = %+v", seaport)
	}
	e, l := seaport[0], seaportLogs[0]
	if e.LogIndex != l.LogIndex || e.EventName != "OrderFulfilled" || e.Signature != seaportSignature ||
		!bytes.Equal(e.Address, l.Address) || !bytes.Equal(e.TransactionHash, l.TransactionHash) {
		t.Fatalf("Seaport event = %+v, log %d", e, l.LogIndex)
	}
	var args0 map[string]any
	if err := json.Unmarshal(e.Args, &args0); err != nil {
		t.Fatal(err)
	}
	offerer := "0x" + hex.EncodeToString(l.Topics[1][12:])
	if args0["offerer"] != offerer || len(args0) != 6 || args0["offer"] == nil || args0["consideration"] == nil {
		t.Fatalf("Seaport args = %s (offerer topic %s)", e.Args, offerer)
	}
	// Everything else is as it was, the hand-edited ERC20 row included; Chainlink was not asked for.
	want := before
	want.Events = slices.DeleteFunc(slices.Clone(before.Events), func(x chain.Event) bool { return x.ABIName == "Seaport" })
	want.Events = append(want.Events, e)
	want = derivedOf(t, chain.Rows{TokenTransfers: want.TokenTransfers, Events: want.Events, Calls: want.Calls})
	requireDerivedEqual(t, after, want)
	for _, x := range after.Events {
		if x.LogIndex == erc20Log && string(x.Args) != `{"edited":true}` {
			t.Fatalf("the ERC20 row was rewritten: %s", x.Args)
		}
	}
	if len(eventsOf(after, "Chainlink")) != 0 {
		t.Fatal("Chainlink events were written without --abi Chainlink")
	}

	// Then Chainlink's, with --abi given twice in one flag: four more events, Seaport's untouched.
	args = append([]string{"redecode", "--from", "17173049", "--to", "17173049", "--abi-dir", dir, "--abi", "Chainlink,Seaport"},
		dbArgs(cfg)...)
	if _, stderr, err := runCLI(ctx, args...); err != nil {
		t.Fatalf("redecode --abi Chainlink,Seaport: %v\n%s", err, stderr)
	}
	final := storedDerived(t, ctx, s.Pool())
	if n := len(eventsOf(final, "Chainlink")); n != 4 {
		t.Fatalf("Chainlink events = %d, want 4", n)
	}
	if len(final.Events) != len(after.Events)+4 || !reflect.DeepEqual(eventsOf(final, "Seaport"), seaport) {
		t.Fatalf("events %d, want %d; Seaport %+v", len(final.Events), len(after.Events)+4, eventsOf(final, "Seaport"))
	}
}

func TestRedecodeValidatesFlags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cfg := pgtest.EmptySchema(t) // never migrated: every case must fail before touching it
	db := dbArgs(cfg)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "5"}, `"from"`},
		{[]string{"--from", "5"}, `"to"`},
		{[]string{"--from", "6", "--to", "5"}, "--from 6 is above --to 5"},
		{[]string{"--from", "1", "--to", "5", "--batch-blocks", "0"}, "--batch-blocks"},
		{[]string{"--from", "1", "--to", "18446744073709551615"}, "bigint"},
		{[]string{"--from", "1", "--to", "5", "--abi", "NoSuchABI"}, "known ABIs: ERC20"},
		{[]string{"--from", "1", "--to", "5", "--abi", "ERC20,ERC20"}, "given twice"},
		{[]string{"--from", "1", "--to", "5", "--abi-dir", "/nonexistent"}, "load ABIs from /nonexistent"},
	} {
		_, _, err := runCLI(ctx, append(append([]string{"redecode"}, c.args...), db...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %s", c.args, err, c.want)
		}
	}
	// Valid flags reach the database, which is not migrated.
	_, _, err := runCLI(ctx, append([]string{"redecode", "--from", "1", "--to", "5"}, db...)...)
	if err == nil || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("unmigrated schema: err = %v", err)
	}
}
