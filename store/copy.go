package store

import (
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// table describes how one row type is copied. Rows are streamed from the messages' typed slices through a
// reused []any, so a batch never exists a second time as [][]any.
type table[T any] struct {
	name    string
	columns []string
	pick    func(*Rows) []T
	values  func(*T, []any)
}

func (t *table[T]) count(msgs []Message) int {
	n := 0
	for i := range msgs {
		n += len(t.pick(&msgs[i].Rows))
	}
	return n
}

func (t *table[T]) source(msgs []Message) *rowSource[T] {
	return &rowSource[T]{t: t, msgs: msgs, ri: -1, vals: make([]any, len(t.columns))}
}

type rowSource[T any] struct {
	t    *table[T]
	msgs []Message
	mi   int
	ri   int
	cur  []T
	vals []any
}

func (s *rowSource[T]) Next() bool {
	for {
		if s.ri+1 < len(s.cur) {
			s.ri++
			return true
		}
		if s.mi >= len(s.msgs) {
			return false
		}
		s.cur = s.t.pick(&s.msgs[s.mi].Rows)
		s.mi++
		s.ri = -1
	}
}

func (s *rowSource[T]) Values() ([]any, error) {
	s.t.values(&s.cur[s.ri], s.vals)
	return s.vals, nil
}

func (s *rowSource[T]) Err() error { return nil }

var _ pgx.CopyFromSource = (*rowSource[Block])(nil)

// num encodes a 256-bit integer for numeric(78,0); nil is NULL.
func num(v *big.Int) any {
	if v == nil {
		return nil
	}
	return pgtype.Numeric{Int: v, Valid: true}
}

func topic(ts [][]byte, i int) []byte {
	if i < len(ts) {
		return ts[i]
	}
	return nil
}

var blocksTable = &table[Block]{
	name: "blocks",
	columns: []string{"number", "hash", "parent_hash", "timestamp", "miner", "gas_used", "gas_limit",
		"base_fee_per_gas", "transaction_count", "size", "nonce", "difficulty", "total_difficulty", "extra_data",
		"mix_hash", "sha3_uncles", "logs_bloom", "transactions_root", "state_root", "receipts_root",
		"withdrawals_root", "withdrawal_count", "blob_gas_used", "excess_blob_gas", "parent_beacon_block_root",
		"requests_hash"},
	pick: func(r *Rows) []Block { return r.Blocks },
	values: func(b *Block, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5], v[6] = b.Number, b.Hash, b.ParentHash, b.Timestamp, b.Miner, b.GasUsed, b.GasLimit
		v[7], v[8], v[9], v[10], v[11], v[12], v[13] = num(b.BaseFeePerGas), b.TransactionCount, b.Size, b.Nonce,
			num(b.Difficulty), num(b.TotalDifficulty), b.ExtraData
		v[14], v[15], v[16], v[17], v[18], v[19] = b.MixHash, b.Sha3Uncles, b.LogsBloom, b.TransactionsRoot, b.StateRoot, b.ReceiptsRoot
		v[20], v[21], v[22], v[23], v[24], v[25] = b.WithdrawalsRoot, b.WithdrawalCount, b.BlobGasUsed, b.ExcessBlobGas,
			b.ParentBeaconBlockRoot, b.RequestsHash
	},
}

var withdrawalsTable = &table[Withdrawal]{
	name:    "withdrawals",
	columns: []string{"block_number", "withdrawal_index", "position", "validator_index", "address", "amount_gwei"},
	pick:    func(r *Rows) []Withdrawal { return r.Withdrawals },
	values: func(w *Withdrawal, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5] = w.BlockNumber, w.Index, w.Position, w.ValidatorIndex, w.Address, num(w.AmountGwei)
	},
}

var transactionsTable = &table[Transaction]{
	name: "transactions",
	columns: []string{"block_number", "transaction_index", "hash", "block_hash", "block_timestamp", "from_address",
		"to_address", "value", "gas", "gas_price", "max_fee_per_gas", "max_priority_fee_per_gas",
		"max_fee_per_blob_gas", "type", "nonce", "input", "method_id", "status", "root", "gas_used",
		"cumulative_gas_used", "effective_gas_price", "contract_address", "blob_gas_used", "blob_gas_price"},
	pick: func(r *Rows) []Transaction { return r.Transactions },
	values: func(t *Transaction, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5], v[6] = t.BlockNumber, t.TransactionIndex, t.Hash, t.BlockHash, t.BlockTimestamp,
			t.FromAddress, t.ToAddress
		v[7], v[8], v[9], v[10], v[11], v[12] = num(t.Value), t.Gas, num(t.GasPrice), num(t.MaxFeePerGas),
			num(t.MaxPriorityFeePerGas), num(t.MaxFeePerBlobGas)
		v[13], v[14], v[15], v[16], v[17], v[18] = t.Type, t.Nonce, t.Input, t.MethodID(), t.Status, t.Root
		v[19], v[20], v[21], v[22], v[23], v[24] = t.GasUsed, t.CumulativeGasUsed, num(t.EffectiveGasPrice),
			t.ContractAddress, t.BlobGasUsed, num(t.BlobGasPrice)
	},
}

var logsTable = &table[Log]{
	name: "logs",
	columns: []string{"block_number", "log_index", "transaction_hash", "transaction_index", "block_timestamp",
		"address", "topic0", "topic1", "topic2", "topic3", "data"},
	pick: func(r *Rows) []Log { return r.Logs },
	values: func(l *Log, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5] = l.BlockNumber, l.LogIndex, l.TransactionHash, l.TransactionIndex,
			l.BlockTimestamp, l.Address
		v[6], v[7], v[8], v[9], v[10] = topic(l.Topics, 0), topic(l.Topics, 1), topic(l.Topics, 2), topic(l.Topics, 3), l.Data
	},
}

var tokenTransfersTable = &table[TokenTransfer]{
	name: "token_transfers",
	columns: []string{"block_number", "log_index", "batch_index", "transaction_hash", "block_timestamp",
		"token_address", "from_address", "to_address", "token_id", "value", "standard"},
	pick: func(r *Rows) []TokenTransfer { return r.TokenTransfers },
	values: func(t *TokenTransfer, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5] = t.BlockNumber, t.LogIndex, t.BatchIndex, t.TransactionHash,
			t.BlockTimestamp, t.TokenAddress
		v[6], v[7], v[8], v[9], v[10] = t.FromAddress, t.ToAddress, num(t.TokenID), num(t.Value), t.Standard
	},
}

var eventsTable = &table[Event]{
	name: "events",
	columns: []string{"block_number", "log_index", "transaction_hash", "block_timestamp", "address", "event_name",
		"signature", "abi_name", "args"},
	pick: func(r *Rows) []Event { return r.Events },
	values: func(e *Event, v []any) {
		v[0], v[1], v[2], v[3], v[4] = e.BlockNumber, e.LogIndex, e.TransactionHash, e.BlockTimestamp, e.Address
		v[5], v[6], v[7], v[8] = e.EventName, e.Signature, e.ABIName, e.Args
	},
}

var callsTable = &table[Call]{
	name: "calls",
	columns: []string{"block_number", "transaction_index", "transaction_hash", "block_timestamp", "to_address",
		"status", "method_name", "signature", "abi_name", "args"},
	pick: func(r *Rows) []Call { return r.Calls },
	values: func(c *Call, v []any) {
		v[0], v[1], v[2], v[3], v[4] = c.BlockNumber, c.TransactionIndex, c.TransactionHash, c.BlockTimestamp, c.ToAddress
		v[5], v[6], v[7], v[8], v[9] = c.Status, c.MethodName, c.Signature, c.ABIName, c.Args
	},
}
