package pgtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// ReadRows loads every stored row of the core tables for the blocks in [from, to], in primary-key order: how
// tests and tools compare what was written with what was meant.
func ReadRows(ctx context.Context, db store.DB, from, to uint64) (chain.Rows, error) {
	var r chain.Rows
	var err error
	if r.Blocks, err = readTable(ctx, db, `SELECT number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
		base_fee_per_gas, transaction_count, size, nonce, difficulty, total_difficulty, extra_data, mix_hash,
		sha3_uncles, logs_bloom, transactions_root, state_root, receipts_root, withdrawals_root, withdrawal_count,
		blob_gas_used, excess_blob_gas, parent_beacon_block_root, requests_hash, filtered
		FROM blocks WHERE number BETWEEN $1 AND $2 ORDER BY number`, from, to,
		func(row pgx.CollectableRow) (b chain.Block, err error) {
			var base, diff, td pgtype.Numeric
			err = row.Scan(&b.Number, &b.Hash, &b.ParentHash, &b.Timestamp, &b.Miner, &b.GasUsed, &b.GasLimit, &base,
				&b.TransactionCount, &b.Size, &b.Nonce, &diff, &td, &b.ExtraData, &b.MixHash, &b.Sha3Uncles, &b.LogsBloom,
				&b.TransactionsRoot, &b.StateRoot, &b.ReceiptsRoot, &b.WithdrawalsRoot, &b.WithdrawalCount,
				&b.BlobGasUsed, &b.ExcessBlobGas, &b.ParentBeaconBlockRoot, &b.RequestsHash, &b.Filtered)
			b.BaseFeePerGas, b.Difficulty, b.TotalDifficulty = bigOf(base), bigOf(diff), bigOf(td)
			return b, err
		}); err != nil {
		return r, err
	}
	if r.Withdrawals, err = readTable(ctx, db, `SELECT block_number, withdrawal_index, position, validator_index,
		address, amount_gwei FROM withdrawals WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, position`,
		from, to, func(row pgx.CollectableRow) (w chain.Withdrawal, err error) {
			var amount pgtype.Numeric
			err = row.Scan(&w.BlockNumber, &w.Index, &w.Position, &w.ValidatorIndex, &w.Address, &amount)
			w.AmountGwei = bigOf(amount)
			return w, err
		}); err != nil {
		return r, err
	}
	raw, err := store.ReadRaw(ctx, db, from, to)
	if err != nil {
		return r, err
	}
	r.Transactions, r.Logs = raw.Transactions, raw.Logs
	if r.TokenTransfers, err = readTable(ctx, db, `SELECT block_number, log_index, batch_index, transaction_hash,
		block_timestamp, token_address, from_address, to_address, token_id, value, standard
		FROM token_transfers WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, log_index, batch_index`,
		from, to, func(row pgx.CollectableRow) (t chain.TokenTransfer, err error) {
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
		func(row pgx.CollectableRow) (e chain.Event, err error) {
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
		func(row pgx.CollectableRow) (c chain.Call, err error) {
			var args string
			err = row.Scan(&c.BlockNumber, &c.TransactionIndex, &c.TransactionHash, &c.BlockTimestamp, &c.ToAddress,
				&c.Status, &c.MethodName, &c.Signature, &c.ABIName, &args)
			c.Args = []byte(args)
			return c, err
		})
	if err != nil {
		return r, err
	}
	r.Traces, err = readTable(ctx, db, `SELECT block_number, transaction_index, trace_address, transaction_hash,
		block_timestamp, type, trace_type, from_address, to_address, value, gas, gas_used, input, output,
		coalesce(error, ''), status, subtraces
		FROM traces WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, transaction_index, trace_address`, from, to,
		func(row pgx.CollectableRow) (t chain.Trace, err error) {
			var value pgtype.Numeric
			err = row.Scan(&t.BlockNumber, &t.TransactionIndex, &t.TraceAddress, &t.TransactionHash, &t.BlockTimestamp,
				&t.Type, &t.TraceType, &t.FromAddress, &t.ToAddress, &value, &t.Gas, &t.GasUsed, &t.Input, &t.Output,
				&t.Error, &t.Status, &t.Subtraces)
			t.Value = bigOf(value)
			return t, err
		})
	if err != nil {
		return r, err
	}
	r.Contracts, err = readTable(ctx, db, `SELECT block_number, transaction_index, trace_address, address,
		transaction_hash, block_timestamp, deployer, code_hash, code_size, is_erc20, is_erc721, is_erc1155
		FROM contracts WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, transaction_index, trace_address`, from, to,
		func(row pgx.CollectableRow) (c chain.Contract, err error) {
			err = row.Scan(&c.BlockNumber, &c.TransactionIndex, &c.TraceAddress, &c.Address, &c.TransactionHash,
				&c.BlockTimestamp, &c.Deployer, &c.CodeHash, &c.CodeSize, &c.IsERC20, &c.IsERC721, &c.IsERC1155)
			return c, err
		})
	return r, err
}

func readTable[T any](ctx context.Context, db store.DB, sql string, from, to uint64, scan pgx.RowToFunc[T]) ([]T, error) {
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

// RequireRowsEqual fails t unless got and want hold the same rows, table by table, once times are in UTC and
// JSON documents canonical (Postgres returns jsonb with its own key order and spacing).
func RequireRowsEqual(t testing.TB, got, want chain.Rows) {
	t.Helper()
	Normalize(t, &got)
	Normalize(t, &want)
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		if gv.Field(i).Len() == 0 && wv.Field(i).Len() == 0 {
			continue
		}
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			gj, _ := json.MarshalIndent(gv.Field(i).Interface(), "", " ")
			wj, _ := json.MarshalIndent(wv.Field(i).Interface(), "", " ")
			t.Errorf("%s differ:\n got %s\nwant %s", gv.Type().Field(i).Name, gj, wj)
		}
	}
}

// Normalize puts r's times in UTC and its JSON documents in canonical form.
func Normalize(t testing.TB, r *chain.Rows) {
	t.Helper()
	for i := range r.Blocks {
		r.Blocks[i].Timestamp = r.Blocks[i].Timestamp.UTC()
	}
	for i := range r.Transactions {
		r.Transactions[i].BlockTimestamp = r.Transactions[i].BlockTimestamp.UTC()
	}
	for i := range r.Logs {
		r.Logs[i].BlockTimestamp = r.Logs[i].BlockTimestamp.UTC()
	}
	for i := range r.TokenTransfers {
		r.TokenTransfers[i].BlockTimestamp = r.TokenTransfers[i].BlockTimestamp.UTC()
	}
	for i := range r.Contracts {
		r.Contracts[i].BlockTimestamp = r.Contracts[i].BlockTimestamp.UTC()
	}
	for i := range r.Traces {
		r.Traces[i].BlockTimestamp = r.Traces[i].BlockTimestamp.UTC()
		if r.Traces[i].TraceAddress == nil {
			r.Traces[i].TraceAddress = []int32{}
		}
	}
	canon := func(j []byte) []byte {
		var v any
		if err := json.Unmarshal(j, &v); err != nil {
			t.Fatalf("json %s: %v", j, err)
		}
		out, _ := json.Marshal(v)
		return out
	}
	for i := range r.Events {
		r.Events[i].BlockTimestamp = r.Events[i].BlockTimestamp.UTC()
		r.Events[i].Args = canon(r.Events[i].Args)
	}
	for i := range r.Calls {
		r.Calls[i].BlockTimestamp = r.Calls[i].BlockTimestamp.UTC()
		r.Calls[i].Args = canon(r.Calls[i].Args)
	}
}

// bigOf is a scanned numeric(78,0) as *big.Int; NULL is nil. It goes through the numeric's text form, which
// is exact for integers whatever exponent the wire value had.
func bigOf(n pgtype.Numeric) *big.Int {
	if !n.Valid {
		return nil
	}
	v, err := n.Value()
	if err != nil {
		panic(fmt.Sprintf("numeric value: %v", err))
	}
	s, _ := v.(string)
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(fmt.Sprintf("numeric %q is not an integer", s))
	}
	return b
}

// Querier is what Checksums reads through: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Checksums returns, per core table of schema, its row count and an md5 of its whole contents in primary-key
// order: two schemas with equal checksums hold the same rows, byte for byte.
func Checksums(ctx context.Context, db Querier, schema string) (map[string]string, error) {
	return ChecksumsOf(ctx, db, schema, chain.CoreTables)
}

// ChecksumsOf is Checksums of the given tables (typed tables, factory_children…).
func ChecksumsOf(ctx context.Context, db Querier, schema string, tables chain.Schema) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range tables {
		var n int64
		var sum *string
		key := make([]string, len(t.Key))
		for i, c := range t.Key {
			key[i] = pgx.Identifier{c}.Sanitize()
		}
		q := fmt.Sprintf(`SELECT count(*), md5(string_agg(t::text, E'\n' ORDER BY %s)) FROM %s t`,
			strings.Join(key, ", "), pgx.Identifier{schema, t.Name}.Sanitize())
		if err := db.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t.Name, err)
		}
		s := ""
		if sum != nil {
			s = *sum
		}
		out[t.Name] = fmt.Sprintf("%d rows, md5 %s", n, s)
	}
	return out, nil
}
