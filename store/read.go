package store

import (
	"context"
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ReadRows loads every stored row of the blocks in [from, to], in primary-key order: how tests and tools
// compare what was written with what was meant. (`chainsink redecode` reads less, through ReplaceDerived.)
func ReadRows(ctx context.Context, db DB, from, to uint64) (Rows, error) {
	var r Rows
	var err error
	if r.Blocks, err = readTable(ctx, db, `SELECT number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
		base_fee_per_gas, transaction_count, size, nonce, difficulty, total_difficulty, extra_data, mix_hash,
		sha3_uncles, logs_bloom, transactions_root, state_root, receipts_root, withdrawals_root, withdrawal_count,
		blob_gas_used, excess_blob_gas, parent_beacon_block_root, requests_hash
		FROM blocks WHERE number BETWEEN $1 AND $2 ORDER BY number`, from, to,
		func(row pgx.CollectableRow) (b Block, err error) {
			var base, diff, td pgtype.Numeric
			err = row.Scan(&b.Number, &b.Hash, &b.ParentHash, &b.Timestamp, &b.Miner, &b.GasUsed, &b.GasLimit, &base,
				&b.TransactionCount, &b.Size, &b.Nonce, &diff, &td, &b.ExtraData, &b.MixHash, &b.Sha3Uncles, &b.LogsBloom,
				&b.TransactionsRoot, &b.StateRoot, &b.ReceiptsRoot, &b.WithdrawalsRoot, &b.WithdrawalCount,
				&b.BlobGasUsed, &b.ExcessBlobGas, &b.ParentBeaconBlockRoot, &b.RequestsHash)
			b.BaseFeePerGas, b.Difficulty, b.TotalDifficulty = bigOf(base), bigOf(diff), bigOf(td)
			return b, err
		}); err != nil {
		return r, err
	}
	if r.Withdrawals, err = readTable(ctx, db, `SELECT block_number, withdrawal_index, position, validator_index,
		address, amount_gwei FROM withdrawals WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, position`,
		from, to, func(row pgx.CollectableRow) (w Withdrawal, err error) {
			var amount pgtype.Numeric
			err = row.Scan(&w.BlockNumber, &w.Index, &w.Position, &w.ValidatorIndex, &w.Address, &amount)
			w.AmountGwei = bigOf(amount)
			return w, err
		}); err != nil {
		return r, err
	}
	if r.Transactions, err = readTable(ctx, db, `SELECT block_number, transaction_index, hash, block_hash,
		block_timestamp, from_address, to_address, value, gas, gas_price, max_fee_per_gas, max_priority_fee_per_gas,
		max_fee_per_blob_gas, type, nonce, input, status, root, gas_used, cumulative_gas_used, effective_gas_price,
		contract_address, blob_gas_used, blob_gas_price
		FROM transactions WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, transaction_index`, from, to,
		func(row pgx.CollectableRow) (t Transaction, err error) {
			var value, gp, mf, mp, mfb, egp, bgp pgtype.Numeric
			err = row.Scan(&t.BlockNumber, &t.TransactionIndex, &t.Hash, &t.BlockHash, &t.BlockTimestamp,
				&t.FromAddress, &t.ToAddress, &value, &t.Gas, &gp, &mf, &mp, &mfb, &t.Type, &t.Nonce, &t.Input,
				&t.Status, &t.Root, &t.GasUsed, &t.CumulativeGasUsed, &egp, &t.ContractAddress, &t.BlobGasUsed, &bgp)
			t.Value, t.GasPrice, t.MaxFeePerGas, t.MaxPriorityFeePerGas = bigOf(value), bigOf(gp), bigOf(mf), bigOf(mp)
			t.MaxFeePerBlobGas, t.EffectiveGasPrice, t.BlobGasPrice = bigOf(mfb), bigOf(egp), bigOf(bgp)
			return t, err
		}); err != nil {
		return r, err
	}
	if r.Logs, err = readTable(ctx, db, `SELECT block_number, log_index, transaction_hash, transaction_index,
		block_timestamp, address, topic0, topic1, topic2, topic3, data
		FROM logs WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, log_index`, from, to,
		func(row pgx.CollectableRow) (l Log, err error) {
			var t [4][]byte
			err = row.Scan(&l.BlockNumber, &l.LogIndex, &l.TransactionHash, &l.TransactionIndex, &l.BlockTimestamp,
				&l.Address, &t[0], &t[1], &t[2], &t[3], &l.Data)
			for _, x := range t {
				if x == nil {
					break
				}
				l.Topics = append(l.Topics, x)
			}
			return l, err
		}); err != nil {
		return r, err
	}
	if r.TokenTransfers, err = readTable(ctx, db, `SELECT block_number, log_index, batch_index, transaction_hash,
		block_timestamp, token_address, from_address, to_address, token_id, value, standard
		FROM token_transfers WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, log_index, batch_index`,
		from, to, func(row pgx.CollectableRow) (t TokenTransfer, err error) {
			var id, value pgtype.Numeric
			err = row.Scan(&t.BlockNumber, &t.LogIndex, &t.BatchIndex, &t.TransactionHash, &t.BlockTimestamp,
				&t.TokenAddress, &t.FromAddress, &t.ToAddress, &id, &value, &t.Standard)
			t.TokenID, t.Value = bigOf(id), bigOf(value)
			return t, err
		}); err != nil {
		return r, err
	}
	if r.Events, err = readTable(ctx, db, `SELECT block_number, log_index, transaction_hash, block_timestamp, address,
		event_name, signature, abi_name, args::text
		FROM events WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, log_index`, from, to,
		func(row pgx.CollectableRow) (e Event, err error) {
			var args string
			err = row.Scan(&e.BlockNumber, &e.LogIndex, &e.TransactionHash, &e.BlockTimestamp, &e.Address,
				&e.EventName, &e.Signature, &e.ABIName, &args)
			e.Args = []byte(args)
			return e, err
		}); err != nil {
		return r, err
	}
	r.Calls, err = readTable(ctx, db, `SELECT block_number, transaction_index, transaction_hash, block_timestamp,
		to_address, status, method_name, signature, abi_name, args::text
		FROM calls WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, transaction_index`, from, to,
		func(row pgx.CollectableRow) (c Call, err error) {
			var args string
			err = row.Scan(&c.BlockNumber, &c.TransactionIndex, &c.TransactionHash, &c.BlockTimestamp, &c.ToAddress,
				&c.Status, &c.MethodName, &c.Signature, &c.ABIName, &args)
			c.Args = []byte(args)
			return c, err
		})
	return r, err
}

func readTable[T any](ctx context.Context, db DB, sql string, from, to uint64, scan pgx.RowToFunc[T]) ([]T, error) {
	rows, err := db.Query(ctx, sql, int64(from), int64(to))
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return out, nil
}

// bigOf converts a scanned numeric(78,0) to *big.Int; NULL is nil.
func bigOf(n pgtype.Numeric) *big.Int {
	if !n.Valid || n.Int == nil {
		return nil
	}
	if n.Exp == 0 {
		return n.Int
	}
	v := new(big.Int).Set(n.Int)
	if n.Exp > 0 {
		return v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	}
	return v.Quo(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil))
}

// CountRows returns the number of rows of every data table.
func CountRows(ctx context.Context, db DB) (Counts, error) {
	out := Counts{}
	for _, t := range Tables {
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}
