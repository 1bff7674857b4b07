package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

var (
	maxU256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	ts      = time.Unix(1683029999, 0).UTC()
)

func b(n int, fill byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = fill
	}
	return out
}

func i64(v int64) *int64 { return &v }
func i32(v int32) *int32 { return &v }
func i16(v int16) *int16 { return &v }

// sampleRows covers the edges each column can take: max uint256 and zero, NULL and empty bytea, a contract
// creation, a pre-Byzantium receipt, a blob transaction, logs with 0 and 4 topics, all three token standards.
func sampleRows(block uint64) chain.Rows {
	return chain.Rows{
		Blocks: []chain.Block{{
			Number: block, Hash: b(32, 1), ParentHash: b(32, 2), Timestamp: ts, Miner: b(20, 3), GasUsed: 0,
			GasLimit: 30_000_000, BaseFeePerGas: maxU256, TransactionCount: 3, Size: i64(40573), Nonce: b(8, 0),
			Difficulty: big.NewInt(0), TotalDifficulty: new(big.Int).Lsh(big.NewInt(58750003716598352), 10), ExtraData: []byte{},
			MixHash: b(32, 4), Sha3Uncles: b(32, 5), LogsBloom: b(256, 6), TransactionsRoot: b(32, 7),
			StateRoot: b(32, 8), ReceiptsRoot: b(32, 9), WithdrawalsRoot: b(32, 10), WithdrawalCount: i32(1),
			BlobGasUsed: i64(131072), ExcessBlobGas: i64(0), ParentBeaconBlockRoot: b(32, 11),
		}},
		Withdrawals: []chain.Withdrawal{{BlockNumber: block, Index: 1_000_000, Position: 0, ValidatorIndex: 42,
			Address: b(20, 12), AmountGwei: big.NewInt(12_345_678)}},
		Transactions: []chain.Transaction{
			{ // contract creation, empty input, zero value
				BlockNumber: block, TransactionIndex: 0, Hash: b(32, 20), BlockHash: b(32, 1), BlockTimestamp: ts,
				FromAddress: b(20, 21), ToAddress: nil, Value: big.NewInt(0), Gas: 21000, GasPrice: big.NewInt(1),
				Type: 0, Nonce: 0, Input: []byte{}, Status: i16(1), GasUsed: i64(21000), CumulativeGasUsed: i64(21000),
				EffectiveGasPrice: big.NewInt(1), ContractAddress: b(20, 22),
			},
			{ // pre-Byzantium receipt: root, no status; max uint256 value
				BlockNumber: block, TransactionIndex: 1, Hash: b(32, 23), BlockHash: b(32, 1), BlockTimestamp: ts,
				FromAddress: b(20, 24), ToAddress: b(20, 25), Value: maxU256, Gas: 90000, GasPrice: big.NewInt(50e9),
				Type: 0, Nonce: 1<<63 - 1, Input: []byte{0xa9, 0x05, 0x9c, 0xbb, 1, 2}, Root: b(32, 26),
				GasUsed: i64(50000), CumulativeGasUsed: i64(71000), EffectiveGasPrice: big.NewInt(50e9),
			},
			{ // blob transaction, failed
				BlockNumber: block, TransactionIndex: 2, Hash: b(32, 27), BlockHash: b(32, 1), BlockTimestamp: ts,
				FromAddress: b(20, 28), ToAddress: b(20, 29), Value: big.NewInt(1), Gas: 100000,
				GasPrice: big.NewInt(3), MaxFeePerGas: big.NewInt(10), MaxPriorityFeePerGas: big.NewInt(2),
				MaxFeePerBlobGas: big.NewInt(7), Type: 3, Nonce: 9, Input: []byte{1, 2, 3}, Status: i16(0),
				GasUsed: i64(1), CumulativeGasUsed: i64(71001), EffectiveGasPrice: big.NewInt(3),
				BlobGasUsed: i64(131072), BlobGasPrice: big.NewInt(1),
			},
		},
		Logs: []chain.Log{
			{BlockNumber: block, LogIndex: 0, TransactionHash: b(32, 23), TransactionIndex: 1, BlockTimestamp: ts,
				Address: b(20, 30), Topics: nil, Data: []byte{}},
			{BlockNumber: block, LogIndex: 1, TransactionHash: b(32, 23), TransactionIndex: 1, BlockTimestamp: ts,
				Address: b(20, 31), Topics: [][]byte{b(32, 32), b(32, 33), b(32, 34), b(32, 35)}, Data: b(64, 36)},
		},
		TokenTransfers: []chain.TokenTransfer{
			{BlockNumber: block, LogIndex: 1, BatchIndex: 0, TransactionHash: b(32, 23), BlockTimestamp: ts,
				TokenAddress: b(20, 31), FromAddress: b(20, 0), ToAddress: b(20, 40), Value: maxU256, Standard: "erc20"},
			{BlockNumber: block, LogIndex: 2, BatchIndex: 0, TransactionHash: b(32, 23), BlockTimestamp: ts,
				TokenAddress: b(20, 41), FromAddress: b(20, 42), ToAddress: b(20, 43), TokenID: maxU256,
				Value: big.NewInt(1), Standard: "erc721"},
			{BlockNumber: block, LogIndex: 3, BatchIndex: 1, TransactionHash: b(32, 23), BlockTimestamp: ts,
				TokenAddress: b(20, 44), FromAddress: b(20, 45), ToAddress: b(20, 46), TokenID: big.NewInt(0),
				Value: big.NewInt(0), Standard: "erc1155"},
		},
		Events: []chain.Event{{BlockNumber: block, LogIndex: 1, TransactionHash: b(32, 23), BlockTimestamp: ts,
			Address: b(20, 31), EventName: "Transfer", Signature: "Transfer(address,address,uint256)", ABIName: "ERC20",
			Args: []byte(`{"from":"0x0000000000000000000000000000000000000000","to":"0x2828282828282828282828282828282828282828","value":"` + maxU256.String() + `"}`)}},
		Calls: []chain.Call{{BlockNumber: block, TransactionIndex: 1, TransactionHash: b(32, 23), BlockTimestamp: ts,
			ToAddress: b(20, 25), MethodName: "transfer", Signature: "transfer(address,uint256)", ABIName: "ERC20",
			Args: []byte(`{"to":"0x2525252525252525252525252525252525252525","value":"0","nested":[{"a":[1,2]}]}`)}},
		Traces: []chain.Trace{
			{ // the creation, which deployed code
				BlockNumber: block, TransactionIndex: 0, TraceAddress: []int32{}, TransactionHash: b(32, 20), BlockTimestamp: ts,
				Type: "create", TraceType: "create", FromAddress: b(20, 21), ToAddress: b(20, 22), Value: big.NewInt(0),
				Gas: i64(21000), GasUsed: i64(21000), Input: []byte{}, Output: []byte{0x60, 0x80}, Status: 1},
			{ // the transfer, with a delegatecall that moved no value and a failed subcall of it
				BlockNumber: block, TransactionIndex: 1, TraceAddress: []int32{}, TransactionHash: b(32, 23), BlockTimestamp: ts,
				Type: "call", TraceType: "call", FromAddress: b(20, 24), ToAddress: b(20, 25), Value: maxU256,
				Gas: i64(90000), GasUsed: i64(50000), Input: []byte{0xa9, 0x05, 0x9c, 0xbb, 1, 2}, Output: []byte{},
				Status: 1, Subtraces: 1},
			{BlockNumber: block, TransactionIndex: 1, TraceAddress: []int32{0}, TransactionHash: b(32, 23), BlockTimestamp: ts,
				Type: "delegatecall", TraceType: "call", FromAddress: b(20, 25), ToAddress: b(20, 47),
				Gas: i64(80000), GasUsed: i64(30000), Input: []byte{1}, Status: 1, Subtraces: 1},
			{BlockNumber: block, TransactionIndex: 1, TraceAddress: []int32{0, 0}, TransactionHash: b(32, 23), BlockTimestamp: ts,
				Type: "selfdestruct", TraceType: "suicide", FromAddress: b(20, 47), ToAddress: b(20, 48), Value: big.NewInt(0),
				Error: "invalid opcode: INVALID \u00e9", Status: 0},
		},
		Contracts: []chain.Contract{
			{BlockNumber: block, TransactionIndex: 0, TraceAddress: []int32{}, Address: b(20, 22), TransactionHash: b(32, 20),
				BlockTimestamp: ts, Deployer: b(20, 21), CodeHash: b(32, 49), CodeSize: i32(2), IsERC20: boolp(false),
				IsERC721: boolp(true), IsERC1155: boolp(false)},
			{BlockNumber: block, TransactionIndex: 1, TraceAddress: []int32{0, 3}, Address: b(20, 50), TransactionHash: b(32, 23),
				BlockTimestamp: ts, Deployer: b(20, 47)}, // code not known
		},
	}
}

func boolp(v bool) *bool { return &v }

// normalize makes rows read back comparable: times in UTC, JSON compacted by its meaning.
func msg(offset int64, rows chain.Rows) store.Message {
	return store.Message{Offset: offset, Key: []byte("k"), Value: []byte("v"), Rows: rows}
}

func TestRoundTripEveryTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	want := sampleRows(17173049)
	batch := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	batch.Add(msg(0, want))
	res, err := store.WriteBatch(ctx, s.Pool(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Rows["transactions"]; got != 3 {
		t.Fatalf("transactions written = %d, want 3", got)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, want)

	// method_id is derived: NULL for input shorter than 4 bytes, the selector otherwise; hex()/unhex() round-trip.
	var nullCount int
	var selector, hexHash string
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE method_id IS NULL),
		max(hex(method_id)) FILTER (WHERE transaction_index = 1),
		(SELECT hex(hash) FROM transactions WHERE hash = unhex('0x' || repeat('14', 32)))
		FROM transactions`).Scan(&nullCount, &selector, &hexHash); err != nil {
		t.Fatal(err)
	}
	if nullCount != 2 || selector != "0xa9059cbb" || hexHash != "0x"+strings.Repeat("14", 32) {
		t.Fatalf("method_id/hex helpers: null=%d selector=%s hash=%s", nullCount, selector, hexHash)
	}
}

func TestFenceOneOfTwoConcurrentWritersCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	cfg.ApplicationName = fmt.Sprintf("chainsink-second-owner-%d", time.Now().UnixNano())
	second, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// Both writers believe they own partition 3 from offset 0; each writes a different block. The first holds
	// its transaction open at COMMIT until the second is seen waiting on the offset row's lock, so the two
	// overlap for sure rather than by luck of scheduling.
	batches := []*store.Batch{
		store.NewBatch("g", "blocks", 3, 0, chain.ReplaceBlocks),
		store.NewBatch("g", "blocks", 3, 0, chain.ReplaceBlocks),
	}
	batches[0].Add(msg(0, sampleRows(100)))
	batches[1].Add(msg(0, sampleRows(200)))

	hold := &holdDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errs[0] = store.WriteBatch(ctx, hold, batches[0])
	}()
	<-hold.entered
	go func() {
		defer wg.Done()
		_, errs[1] = store.WriteBatch(ctx, second.Pool(), batches[1])
	}()
	pgtest.WaitForLockWait(t, s.Pool(), cfg.ApplicationName)
	close(hold.release)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatal("both writers committed")
			}
			winner = i
		case errors.Is(err, store.ErrFenced):
		default:
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner != 0 {
		t.Fatalf("writer %d committed, want the one that held the lock (0)", winner)
	}
	loserBlock := []uint64{200, 100}[winner]
	rows, err := pgtest.ReadRows(ctx, s.Pool(), loserBlock, loserBlock)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Len() != 0 {
		t.Fatalf("fenced writer left %d rows behind", rows.Len())
	}
	offs, err := store.NextOffsets(ctx, s.Pool(), "g", "blocks", []int32{3})
	if err != nil {
		t.Fatal(err)
	}
	if offs[3] != 1 {
		t.Fatalf("next offset = %d, want 1", offs[3])
	}

	// A stale owner that is still at offset 0 after the commit is fenced too, and writes nothing.
	stale := store.NewBatch("g", "blocks", 3, 0, chain.ReplaceBlocks)
	stale.Add(msg(0, sampleRows(300)))
	if _, err := store.WriteBatch(ctx, s.Pool(), stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale owner: err = %v, want ErrFenced", err)
	}
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != 1 {
		t.Fatalf("blocks = %d, want 1", counts["blocks"])
	}
}

func TestReplaceBlocksNewestWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	old := sampleRows(10)
	b1 := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b1.Add(msg(0, old))
	b1.Add(msg(1, sampleRows(11)))
	if _, err := store.WriteBatch(ctx, s.Pool(), b1); err != nil {
		t.Fatal(err)
	}
	// A reorged block 10 with one transaction and no logs, delivered twice in one batch and once more later.
	reorg := sampleRows(10)
	reorg.Blocks[0].Hash = b(32, 0xee)
	reorg.Transactions = reorg.Transactions[:1]
	reorg.Logs, reorg.TokenTransfers, reorg.Events, reorg.Calls = nil, nil, nil, nil
	b2 := store.NewBatch("g", "blocks", 0, 2, chain.ReplaceBlocks)
	b2.Add(msg(2, sampleRows(10)))
	b2.Add(msg(5, reorg))
	if b2.Rows() != reorg.Len() {
		t.Fatalf("batch rows = %d, want %d: the superseded message must not count", b2.Rows(), reorg.Len())
	}
	if _, err := store.WriteBatch(ctx, s.Pool(), b2); err != nil {
		t.Fatal(err)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, reorg)
	other, err := pgtest.ReadRows(ctx, s.Pool(), 11, 11)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, other, sampleRows(11))
}

// TestReplaceBlocksWhereverTheHeightIsHeld: a bundle replaces its heights in every table that holds them, also
// where one table alone does (an item stored before, a set merged later), with no block row to say so: the
// batch's probe of which tables hold its heights must find each of them.
func TestReplaceBlocksWhereverTheHeightIsHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	alone := map[string]func(r chain.Rows) chain.Rows{
		"transactions":    func(r chain.Rows) chain.Rows { return chain.Rows{Transactions: r.Transactions} },
		"logs":            func(r chain.Rows) chain.Rows { return chain.Rows{Logs: r.Logs} },
		"traces":          func(r chain.Rows) chain.Rows { return chain.Rows{Traces: r.Traces} },
		"contracts":       func(r chain.Rows) chain.Rows { return chain.Rows{Contracts: r.Contracts} },
		"events":          func(r chain.Rows) chain.Rows { return chain.Rows{Events: r.Events} },
		"token_transfers": func(r chain.Rows) chain.Rows { return chain.Rows{TokenTransfers: r.TokenTransfers} },
		"calls":           func(r chain.Rows) chain.Rows { return chain.Rows{Calls: r.Calls} },
	}
	height, off := uint64(30), int64(0)
	var heights []uint64
	for table, part := range alone {
		rows := part(sampleRows(height))
		if rows.Len() == 0 {
			t.Fatalf("sampleRows has no %s", table)
		}
		bt := store.NewBatch("g", "items", 0, off, chain.ReplaceRows)
		bt.Add(msg(off, rows))
		if _, err := store.WriteBatch(ctx, s.Pool(), bt); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		heights = append(heights, height)
		height++
		off++
	}
	heights = append(heights, height) // and one height that nothing holds
	bt := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	for i, h := range heights {
		bt.Add(msg(int64(i), sampleRows(h)))
	}
	res, err := store.WriteBatch(ctx, s.Pool(), bt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 0 {
		t.Fatalf("%d messages dead-lettered: a held height was not replaced (%+v)", len(res.DeadLetters), res.DeadLetters[0])
	}
	for _, h := range heights {
		got, err := pgtest.ReadRows(ctx, s.Pool(), h, h)
		if err != nil {
			t.Fatal(err)
		}
		pgtest.RequireRowsEqual(t, got, sampleRows(h))
	}
}

// oneItemEach splits full into single items, one per message, as ethereum-etl publishes them: the block with
// its withdrawals, each transaction with its traces and contracts (the calls with transaction 1), each log (the
// events and the first token transfer with log 1).
func oneItemEach(full chain.Rows) []chain.Rows {
	out := []chain.Rows{{Blocks: full.Blocks, Withdrawals: full.Withdrawals}}
	for i := range full.Transactions {
		r := chain.Rows{Transactions: full.Transactions[i : i+1]}
		for _, tr := range full.Traces {
			if tr.TransactionIndex == int32(i) {
				r.Traces = append(r.Traces, tr)
			}
		}
		for _, c := range full.Contracts {
			if c.TransactionIndex == int32(i) {
				r.Contracts = append(r.Contracts, c)
			}
		}
		if i == 1 {
			r.Calls = full.Calls
		}
		out = append(out, r)
	}
	for i := range full.Logs {
		r := chain.Rows{Logs: full.Logs[i : i+1]}
		if i == 1 {
			r.Events = full.Events
			r.TokenTransfers = full.TokenTransfers[:1]
		}
		out = append(out, r)
	}
	return out
}

func TestReplaceRowsDedupesItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	full := sampleRows(7)
	// The whole stream is delivered twice.
	items := oneItemEach(full)
	off := int64(0)
	for round := 0; round < 2; round++ {
		bt := store.NewBatch("g", "logs", 0, off, chain.ReplaceRows)
		for _, it := range items {
			bt.Add(msg(off, it))
			off++
		}
		bt.Add(msg(off, items[2])) // a duplicate inside the batch as well
		off++
		if _, err := store.WriteBatch(ctx, s.Pool(), bt); err != nil {
			t.Fatal(err)
		}
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 7, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.TokenTransfers = full.TokenTransfers[:1]
	pgtest.RequireRowsEqual(t, got, want)
}

// TestFreshItemsAreNotLookedUpByKey: items none of whose keys is stored are copied in without a lookup per
// key and table (writeRows), and items that are stored still replace what their keys hold, also in the
// tables where they bring nothing this time.
func TestFreshItemsAreNotLookedUpByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	full := sampleRows(7)
	off := int64(0)
	// write stores items in one batch and returns how many index scans Postgres started on the tables
	// (the offsets' aside), read from the transaction's own statistics before it commits.
	write := func(items []chain.Rows) (keys int, scans int64) {
		t.Helper()
		bt := store.NewBatch("g", "items", 0, off, chain.ReplaceRows)
		for _, it := range items {
			keys += len(it.Keys(nil, chain.ReplaceRows))
			bt.Add(msg(off, it))
			off++
		}
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		if _, err := store.WriteBatch(ctx, tx, bt); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_xact_user_tables
			WHERE schemaname = current_schema() AND relname NOT LIKE 'kafka_offsets%'`).Scan(&scans); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return keys, scans
	}

	// Without the block item, whose reorg check reads each parent table by its height.
	items := oneItemEach(full)[1:]
	keys, scans := write(items)
	t.Logf("fresh: %d keys, %d index scans", keys, scans)
	if scans != 0 {
		t.Errorf("%d fresh keys cost %d index scans, want none", keys, scans)
	}
	// The block, which is new, and log 1 again without its event and token transfer: copied in after the
	// block, the log collides, and then its key removes the event and the token transfer.
	again := oneItemEach(full)
	log1 := again[len(again)-1]
	log1.Events, log1.TokenTransfers = nil, nil
	write([]chain.Rows{again[0], log1})
	got, err := pgtest.ReadRows(ctx, s.Pool(), 7, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.Events, want.TokenTransfers = nil, nil
	pgtest.RequireRowsEqual(t, got, want)
}

func TestRejectedMessageIsBisectedIntoDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	bt := store.NewBatch("g", "blocks", 1, 0, chain.ReplaceBlocks)
	for i := 0; i < 9; i++ {
		rows := sampleRows(uint64(1000 + i))
		if i == 5 {
			// jsonb refuses \u0000: Postgres rejects this message's rows, not the batch.
			rows.Events[0].Args = []byte(`{"name":"bad\u0000name"}`)
		}
		bt.Add(msg(int64(i), rows))
	}
	bt.Add(store.Message{Offset: 9, Value: []byte("{not json"), Failure: &chain.Failure{Reason: "invalid_json", Err: errors.New("invalid character 'n'")}})
	res, err := store.WriteBatch(ctx, s.Pool(), bt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 2 {
		t.Fatalf("dead letters = %+v, want 2", res.DeadLetters)
	}
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != 8 || counts["transactions"] != 24 {
		t.Fatalf("counts = %v, want 8 blocks and 24 transactions", counts)
	}
	var reasons []string
	rows, err := s.Pool().Query(ctx, `SELECT reason || ':' || "offset" FROM dead_letters ORDER BY "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, r)
	}
	if strings.Join(reasons, ",") != "rejected_by_postgres:5,invalid_json:9" {
		t.Fatalf("dead letters = %v", reasons)
	}
	offs, err := store.NextOffsets(ctx, s.Pool(), "g", "blocks", []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	if offs[1] != 10 {
		t.Fatalf("next offset = %d, want 10", offs[1])
	}
}

func TestTransientClassification(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, store.Config{DatabaseURL: "postgres://nobody@127.0.0.1:1/x"})
	if err == nil {
		t.Fatal("connecting to port 1 succeeded")
	}
	if !store.IsTransient(err) {
		t.Fatalf("connection refused should be transient: %v", err)
	}
	if store.IsTransient(context.Canceled) {
		t.Fatal("cancellation is not transient")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db?password=s3cret":             "postgres://u@h/db?password=xxxxx",
		"host=h user=u password=s3cret dbname=db":       "host=h user=u password=xxxxx dbname=db",
		"host=h password='s3 cret' dbname=db":           "host=h password=xxxxx dbname=db",
	} {
		if got := store.Redact(in); got != want || strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// holdDB holds the outer transaction of a write open at COMMIT until released.
type holdDB struct {
	store.DB
	entered chan struct{}
	release chan struct{}
}

func (d *holdDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := d.DB.Begin(ctx)
	return &holdTx{Tx: tx, d: d}, err
}

type holdTx struct {
	pgx.Tx
	d *holdDB
}

func (t *holdTx) Commit(ctx context.Context) error {
	close(t.d.entered)
	<-t.d.release
	return t.Tx.Commit(ctx)
}

// TestSameHeightFromTwoPartitionsIsSerialized: two versions of block 10 arrive on two partitions at once (a
// producer's re-export, a replay group). The first holds its transaction open after its COPY; the second used
// to delete nothing, then fail on the primary key once the first committed, and its valid message became a
// dead letter. Now the second waits for the first and replaces its block whole.
func TestSameHeightFromTwoPartitionsIsSerialized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := pgtest.Open(t)
	cfg.ApplicationName = fmt.Sprintf("chainsink-second-writer-%d", time.Now().UnixNano())
	second, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	v1, v2 := sampleRows(10), sampleRows(10)
	v2.Blocks[0].Hash = b(32, 0xee)
	v2.Transactions = v2.Transactions[:1]
	v2.Logs, v2.TokenTransfers, v2.Events, v2.Calls = nil, nil, nil, nil
	first := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	first.Add(msg(0, v1))
	later := store.NewBatch("g", "blocks", 1, 0, chain.ReplaceBlocks)
	later.Add(msg(0, v2))

	hold := &holdDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	firstErr := make(chan error, 1)
	go func() {
		_, err := store.WriteBatch(ctx, hold, first)
		firstErr <- err
	}()
	<-hold.entered // the first has fenced, deleted and copied, and not committed
	type result struct {
		res store.Result
		err error
	}
	laterDone := make(chan result, 1)
	go func() {
		r, err := store.WriteBatch(ctx, second.Pool(), later)
		laterDone <- result{r, err}
	}()
	pgtest.WaitForLockWait(t, s.Pool(), cfg.ApplicationName)
	close(hold.release)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	r := <-laterDone
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.res.DeadLetters) != 0 {
		t.Fatalf("a valid message was dead-lettered: %+v", r.res.DeadLetters)
	}
	got, err := pgtest.ReadRows(ctx, s.Pool(), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.RequireRowsEqual(t, got, v2)
}

// TestCancelledStatementStopsOnTheServer: a statement whose ctx is cancelled (a stop, a lost partition) must not
// go on in its backend, holding its locks (a zombie's fence row). pgx's default context watcher already sees
// to it: it fails the statement with a socket deadline, and the close that follows sends a cancel request
// first (pgconn's asyncClose). This test holds that, so a pgx upgrade or a custom watcher cannot lose it.
func TestCancelledStatementStopsOnTheServer(t *testing.T) {
	t.Parallel()
	s, cfg := pgtest.Open(t)
	cfg.ApplicationName = fmt.Sprintf("chainsink-cancel-%d", time.Now().UnixNano())
	victim, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := victim.Pool().Exec(ctx, `SELECT pg_sleep(60)`)
		done <- err
	}()
	running := func() (bool, error) {
		var n int
		err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`, cfg.ApplicationName).Scan(&n)
		return n > 0, err
	}
	waitUntilTrue(t, context.Background(), running)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled statement succeeded")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	waitUntilTrue(t, wctx, func() (bool, error) {
		r, err := running()
		return !r, err
	})
}

// TestFenceDoesNotWaitForAFrozenZombie: a zombie frozen with its batch's transaction open (here: held at
// COMMIT) keeps the partition's offset row locked until idle_in_transaction_session_timeout ends it. The new
// owner's write used to wait on it for its whole statement timeout; now the fence gives up after its lock
// timeout with a transient error, which the worker retries with backoff.
func TestFenceDoesNotWaitForAFrozenZombie(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	zombie := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	zombie.Add(msg(0, sampleRows(10)))
	hold := &holdDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	zombieErr := make(chan error, 1)
	go func() {
		_, err := store.WriteBatch(ctx, hold, zombie)
		zombieErr <- err
	}()
	<-hold.entered
	owner := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	owner.Add(msg(0, sampleRows(11)))
	began := time.Now()
	_, err := store.WriteBatch(ctx, s.Pool(), owner)
	took := time.Since(began)
	close(hold.release)
	if err == nil || !store.IsTransient(err) {
		t.Fatalf("the new owner's write = %v, want a transient lock timeout", err)
	}
	if took > 20*time.Second {
		t.Fatalf("the fence waited %v for the zombie's lock", took)
	}
	if err := <-zombieErr; err != nil {
		t.Fatal(err)
	}
}
