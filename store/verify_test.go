package store_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

const (
	verifyFirst = 100
	verifyLast  = 109
)

// seedChain stores heights verifyFirst..verifyLast as renumbered copies of mainnet block 17173049, decoded
// with the built-in ABIs (transactions, logs, withdrawals, token transfers, events, calls), through the
// exactly-once write path: a consistent chain.
func seedChain(t *testing.T) *store.Store {
	t.Helper()
	s, _ := seedRange(t, verifyFirst, verifyLast)
	return s
}

// seedRange is seedChain of heights first..last, in a schema of its own.
func seedRange(t *testing.T, first, last uint64) (*store.Store, store.Config) {
	t.Helper()
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	key, value, err := fixtures.Bundle17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	base, failure := decode.New(reg, nil).Decode(format.Bundle, key, value)
	if failure != nil {
		t.Fatal(failure.Err)
	}
	if len(base.Withdrawals) == 0 || len(base.TokenTransfers) == 0 || len(base.Events) == 0 || len(base.Calls) == 0 {
		t.Fatalf("block 17173049 no longer has every kind of row: %d withdrawals, %d transfers, %d events, %d calls",
			len(base.Withdrawals), len(base.TokenTransfers), len(base.Events), len(base.Calls))
	}
	base.Traces = topFrames(base.Transactions)
	s, cfg := pgtest.Open(t)
	b := store.NewBatch("verify", "blocks", 0, 0, format.Bundle.Mode())
	for n := first; n <= last; n++ {
		b.Add(store.Message{Offset: int64(n - first), Rows: fixtures.RenumberRows(&base, n)})
	}
	if _, err := store.WriteBatch(ctx, s.Pool(), b); err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// topFrames are the traces a callTracer reports for transactions that call no other contract: each
// transaction's own frame, which is what the mainnet fixtures lack to fill the traces table.
func topFrames(txs []chain.Transaction) []chain.Trace {
	out := make([]chain.Trace, len(txs))
	for i, tx := range txs {
		typ := "call"
		to := tx.ToAddress
		if to == nil {
			typ, to = "create", tx.ContractAddress
		}
		status := int16(1)
		if tx.Status != nil {
			status = *tx.Status
		}
		gas := int64(tx.Gas)
		out[i] = chain.Trace{BlockNumber: tx.BlockNumber, TransactionIndex: tx.TransactionIndex, TraceAddress: []int32{},
			TransactionHash: tx.Hash, BlockTimestamp: tx.BlockTimestamp, Type: typ, TraceType: typ,
			FromAddress: tx.FromAddress, ToAddress: to, Value: tx.Value, Gas: &gas, GasUsed: tx.GasUsed,
			Input: tx.Input, Status: status}
	}
	return out
}

// failing is the checks of rep that found problems, with the heights they name.
func failing(rep store.VerifyReport) map[string][]int64 {
	out := map[string][]int64{}
	for _, c := range rep.Checks {
		if c.Problems > 0 {
			out[c.Name] = c.Heights
		}
	}
	return out
}

func ptr(n int64) *int64 { return &n }

// TestVerify: a consistent chain passes every check, in one round or in rounds of 3 heights; each kind of
// damage is found by its check and only by it, at the height where it was made; the range bounds what is
// checked.
func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("consistent", func(t *testing.T) {
		t.Parallel()
		s := seedChain(t)
		for _, chunk := range []int64{0, 3, 1} {
			rep, err := store.Verify(ctx, s.Pool(), store.VerifyOptions{Chunk: chunk})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.Empty || rep.From != verifyFirst || rep.To != verifyLast || rep.Blocks != 10 {
				t.Fatalf("chunk %d: %+v, failing %v", chunk, rep, failing(rep))
			}
			if len(rep.Checks) != 13 {
				t.Fatalf("%d checks ran", len(rep.Checks))
			}
		}
	})
	for _, tc := range []struct {
		name   string
		damage string
		want   map[string][]int64
	}{
		{"a block deleted", `DELETE FROM blocks WHERE number = 104`,
			map[string][]int64{"missing_blocks": {104}, "foreign_transactions": {104}, "foreign_logs": {104}}},
		{"a log of another block", `UPDATE logs SET block_hash = '\x05' WHERE block_number = 102 AND log_index = 3`,
			map[string][]int64{"foreign_logs": {102}}},
		{"a parent hash of another chain", `UPDATE blocks SET parent_hash = '\x00' WHERE number = 106`,
			map[string][]int64{"broken_parent": {106}}},
		{"a transaction of another block", `UPDATE transactions SET block_hash = '\x01'
			WHERE block_number = 102 AND transaction_index = 0`,
			map[string][]int64{"foreign_transactions": {102}}},
		{"a block that claims more transactions", `UPDATE blocks SET transaction_count = transaction_count + 1
			WHERE number = 103`,
			map[string][]int64{"transaction_count": {103}}},
		{"a withdrawal lost", `DELETE FROM withdrawals WHERE block_number = 105 AND position = 0`,
			map[string][]int64{"withdrawal_count": {105}}},
		{"a log pointing at no transaction", `UPDATE logs SET transaction_index = 9999
			WHERE block_number = 107 AND log_index = 0`,
			map[string][]int64{"logs_without_transaction": {107}}},
		{"a token transfer of another log", `UPDATE token_transfers SET transaction_hash = '\x03'
			WHERE block_number = 108 AND log_index = (SELECT min(log_index) FROM token_transfers WHERE block_number = 108)`,
			map[string][]int64{"token_transfers_without_log": {108}}},
		{"an event without its log", `UPDATE events SET log_index = 99999
			WHERE block_number = 101 AND log_index = (SELECT min(log_index) FROM events WHERE block_number = 101)`,
			map[string][]int64{"events_without_log": {101}}},
		{"a call of another transaction", `UPDATE calls SET transaction_hash = '\x04'
			WHERE block_number = 109 AND transaction_index = (SELECT min(transaction_index) FROM calls WHERE block_number = 109)`,
			map[string][]int64{"calls_without_transaction": {109}}},
		{"a trace of another transaction", `UPDATE traces SET transaction_hash = '\x05'
			WHERE block_number = 108 AND transaction_index = 1 AND trace_address = '{}'`,
			map[string][]int64{"traces_without_transaction": {108}}},
		{"a contract of another transaction", `INSERT INTO contracts (block_number, transaction_index, trace_address, address,
			transaction_hash, block_timestamp, deployer) VALUES (107, 2, '{0}', '\x01', '\x06', now(), '\x02')`,
			map[string][]int64{"contracts_without_transaction": {107}}},
		{"the orphaned transactions of a reorg to a smaller block", `
			UPDATE blocks SET hash = '\x0a', transaction_count = 1 WHERE number = 109;
			UPDATE transactions SET block_hash = '\x0a' WHERE block_number = 109 AND transaction_index = 0;
			UPDATE logs SET block_hash = '\x0a' WHERE block_number = 109 AND transaction_index = 0`,
			map[string][]int64{"foreign_transactions": {109}, "transaction_count": {109}, "foreign_logs": {109}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := seedChain(t)
			if _, err := s.Pool().Exec(ctx, tc.damage); err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int64{0, 4} {
				rep, err := store.Verify(ctx, s.Pool(), store.VerifyOptions{Chunk: chunk})
				if err != nil {
					t.Fatal(err)
				}
				got := failing(rep)
				if !maps.EqualFunc(got, tc.want, slices.Equal[[]int64]) {
					t.Fatalf("chunk %d: failing checks %v, want %v", chunk, got, tc.want)
				}
			}
		})
	}
	t.Run("range", func(t *testing.T) {
		t.Parallel()
		s := seedChain(t)
		if _, err := s.Pool().Exec(ctx, `UPDATE blocks SET parent_hash = '\x00' WHERE number IN (102, 106)`); err != nil {
			t.Fatal(err)
		}
		// The first height's parent is outside the range: not checked.
		rep, err := store.Verify(ctx, s.Pool(), store.VerifyOptions{From: ptr(106), To: ptr(109)})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Blocks != 4 {
			t.Fatalf("106-109: blocks %d, failing %v", rep.Blocks, failing(rep))
		}
		rep, err = store.Verify(ctx, s.Pool(), store.VerifyOptions{From: ptr(100), To: ptr(112)})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]int64{"broken_parent": {102, 106}, "missing_blocks": {110, 111, 112}}
		if got := failing(rep); !maps.EqualFunc(got, want, slices.Equal[[]int64]) {
			t.Fatalf("100-112: failing %v, want %v", got, want)
		}
		rep, err = store.Verify(ctx, s.Pool(), store.VerifyOptions{From: ptr(500), To: ptr(600)})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Empty || rep.OK() || rep.Checks[0].Problems != 101 {
			t.Fatalf("a range with nothing stored: %+v", rep)
		}
	})
	t.Run("empty database", func(t *testing.T) {
		t.Parallel()
		s, _ := pgtest.Open(t)
		rep, err := store.Verify(ctx, s.Pool(), store.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Empty || !rep.OK() {
			t.Fatalf("empty database: %+v", rep)
		}
	})
}
