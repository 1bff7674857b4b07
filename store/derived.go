package store

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chainsink/chainsink/store/chain"
)

// DerivedResult says what ReplaceDerived changed in the derived tables.
type DerivedResult struct {
	// Logs and Transactions are the raw rows that were read and handed to derive.
	Logs, Transactions int
	// Deleted and Written count rows per derived table (token_transfers, events, calls).
	Deleted, Written chain.Counts
	// Kept counts the events and calls that derive produced for a log or transaction which already has a row
	// from an ABI outside abiNames: that row stays and the new one is dropped (see ReplaceDerived).
	Kept int
}

// ReplaceDerived re-derives the token_transfers, events and calls of the blocks in [from, to] from the raw logs
// and transactions already stored, in ONE transaction:
//
//  1. the stored logs and transactions of [from, to] are read and locked FOR SHARE;
//  2. derive fills raw.TokenTransfers, raw.Events and raw.Calls from raw.Logs and raw.Transactions (it is
//     decode.Decoder.Enrich; it must be pure, it runs inside the transaction);
//  3. the derived rows it replaces are deleted and the new ones are COPYed in.
//
// What is replaced depends on abiNames:
//
//   - empty: every token transfer, event and call of [from, to] is deleted, and everything derive produced is
//     written. The range ends up exactly as a live decode with the same registry would have stored it.
//   - not empty (redecode --abi): token transfers are replaced as above, since they do not depend on ABIs.
//     Events and calls whose abi_name is in abiNames are deleted; events and calls of other ABIs are left as
//     they are, byte for byte. Of what derive produced, only rows whose ABIName is in abiNames are written,
//     and only for a log (block_number, log_index) or transaction (block_number, transaction_index) that has
//     no remaining row of another ABI: the primary key allows one decoding per log or call, and rows of other
//     ABIs are not this call's to change. Those dropped rows are counted in Kept.
//
// Running it twice with the same derive gives the same rows.
//
// Why read inside the transaction, with locks: `chainsink run` may be replacing some of these blocks at the
// same time (a reorg, a re-sent item). Its batch deletes a block's logs and transactions before their derived
// rows, so the share locks make it wait until this transaction commits, and its later statements then see
// (and delete) what this one wrote; without them both would insert the same keys and the live batch would be
// dead-lettered as rejected. (A row lock is a write to the row's header: on a full-history redecode the locks
// cost I/O of the order of rewriting the derived rows.) When db is a pool, the transaction is REPEATABLE READ, so derived rows that a
// concurrent batch adds for logs this transaction never saw are not deleted; a conflicting concurrent change
// fails it with a serialization error, which IsTransient reports as worth retrying. When db is already a
// transaction, its isolation is the caller's.
func ReplaceDerived(ctx context.Context, db DB, from, to uint64, abiNames []string, derive func(raw *chain.Rows)) (DerivedResult, error) {
	return ReplaceDerivedWith(ctx, db, from, to, DeriveOptions{ABIs: abiNames}, derive)
}

// DeriveOptions say which derived tables ReplaceDerivedWith replaces.
type DeriveOptions struct {
	// ABIs limits the events and calls replaced, as ReplaceDerived's abiNames.
	ABIs []string
	// Typed are run-time tables derived from the raw rows too (typed tables, and chain.ChildrenTable when a
	// set has a factory): every row of theirs in the range is replaced by what derive put in raw.Typed.
	Typed chain.Schema
	// TypedOnly leaves token_transfers, events and calls as they are.
	TypedOnly bool
	// Discovery gates the rows of factory sets' tables by the children registered, those of the range
	// included (see chain.Discovery).
	Discovery *chain.Discovery
	// Untyped keeps the events and calls that the typed tables hold out of events and calls, as
	// Writer.WithUntyped: they are not written again, and with TypedOnly the ones stored are removed.
	Untyped Untyped
}

// ReplaceDerivedWith is ReplaceDerived of the derived tables opts names, in one transaction.
func ReplaceDerivedWith(ctx context.Context, db DB, from, to uint64, opts DeriveOptions, derive func(raw *chain.Rows)) (DerivedResult, error) {
	abiNames := opts.ABIs
	res := DerivedResult{Deleted: chain.Counts{}, Written: chain.Counts{}}
	if from > to || to > math.MaxInt64 {
		return res, fmt.Errorf("replace derived rows of blocks [%d,%d]: not a range of bigint block numbers", from, to)
	}
	var tx pgx.Tx
	var err error
	// With a factory gate, the exclusive discovery lock below keeps every live batch out for the whole
	// transaction, and READ COMMITTED lets the statements after it see what batches committed while it
	// waited (a REPEATABLE READ snapshot would be taken by the lock's own statement, before the wait).
	iso := pgx.RepeatableRead
	if opts.Discovery != nil {
		iso = pgx.ReadCommitted
	}
	if b, ok := db.(interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	}); ok {
		tx, err = b.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
	} else {
		tx, err = db.Begin(ctx)
	}
	if err != nil {
		return res, fmt.Errorf("begin re-derive transaction of blocks [%d,%d]: %w", from, to, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; after a failure the error that matters is already returned

	if opts.Discovery != nil {
		// This transaction rewrites registrations and gated rows: no batch may read or write them meanwhile.
		// First, before any row lock: a live batch takes this lock before it touches a row, so the two
		// never wait for each other in a cycle.
		if _, err := tx.Exec(ctx, gateLock(true)); err != nil {
			return res, fmt.Errorf("take the factory children lock: %w", err)
		}
	}
	raw, err := readRaw(ctx, tx, from, to, true, hasCallTables(opts.Typed))
	if err != nil {
		return res, err
	}
	res.Logs, res.Transactions = len(raw.Logs), len(raw.Transactions)
	derive(&raw)
	if err := checkDerivedRange(&raw, from, to); err != nil {
		return res, err
	}

	typed, err := replaceTyped(ctx, tx, from, to, opts, &raw, &res)
	if err != nil {
		return res, err
	}
	if opts.TypedOnly {
		for _, r := range typed {
			if err := opts.Untyped.delete(ctx, tx, r); err != nil {
				return res, err
			}
		}
	}
	if opts.TypedOnly {
		if err := tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("commit derived rows of blocks [%d,%d]: %w", from, to, err)
		}
		return res, nil
	}

	subset := len(abiNames) > 0
	var q pgx.Batch
	q.Queue(`DELETE FROM token_transfers WHERE block_number BETWEEN $1 AND $2`, int64(from), int64(to))
	if subset {
		q.Queue(`DELETE FROM events WHERE block_number BETWEEN $1 AND $2 AND abi_name = ANY($3)`, int64(from), int64(to), abiNames)
		q.Queue(`DELETE FROM calls WHERE block_number BETWEEN $1 AND $2 AND abi_name = ANY($3)`, int64(from), int64(to), abiNames)
	} else {
		q.Queue(`DELETE FROM events WHERE block_number BETWEEN $1 AND $2`, int64(from), int64(to))
		q.Queue(`DELETE FROM calls WHERE block_number BETWEEN $1 AND $2`, int64(from), int64(to))
	}
	br := tx.SendBatch(ctx, &q)
	for _, t := range []string{"token_transfers", "events", "calls"} {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return res, fmt.Errorf("delete %s of blocks [%d,%d]: %w", t, from, to, err)
		}
		res.Deleted[t] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return res, fmt.Errorf("delete derived rows of blocks [%d,%d]: %w", from, to, err)
	}

	if subset {
		if res.Kept, err = keepOtherABIs(ctx, tx, from, to, abiNames, &raw); err != nil {
			return res, err
		}
	}
	derived := chain.Rows{TokenTransfers: raw.TokenTransfers, Events: raw.Events, Calls: raw.Calls}
	if opts.Untyped.Events || opts.Untyped.Calls {
		// The typed rows as written, the factory gate applied, with the events and calls derived beside them.
		all := chain.Rows{Events: raw.Events, Calls: raw.Calls, Typed: map[*chain.Table][][]any{}}
		for _, r := range typed {
			for t, rows := range r.Typed {
				all.Typed[t] = append(all.Typed[t], rows...)
			}
		}
		kept := opts.Untyped.without([]*chain.Rows{&all})[0]
		derived.Events, derived.Calls = kept.Events, kept.Calls
	}
	err = copyTables(ctx, tx, chain.DerivedTables, []*chain.Rows{&derived}, res.Written)
	if err != nil {
		return res, fmt.Errorf("write derived rows of blocks [%d,%d]: %w", from, to, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit derived rows of blocks [%d,%d]: %w", from, to, err)
	}
	return res, nil
}

// replaceTyped replaces the rows of opts.Typed in [from, to] with raw.Typed: registrations first, so that
// the gate of the other tables sees the children of the range. It returns the typed rows it wrote.
func replaceTyped(ctx context.Context, tx pgx.Tx, from, to uint64, opts DeriveOptions, raw *chain.Rows, res *DerivedResult) ([]*chain.Rows, error) {
	if len(opts.Typed) == 0 {
		return nil, nil
	}
	var q pgx.Batch
	for _, t := range opts.Typed {
		q.Queue(`DELETE FROM `+pgx.Identifier{t.Name}.Sanitize()+` WHERE `+pgx.Identifier{t.BlockColumn()}.Sanitize()+
			` BETWEEN $1 AND $2`, int64(from), int64(to))
	}
	br := tx.SendBatch(ctx, &q)
	for _, t := range opts.Typed {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("delete %s of blocks [%d,%d]: %w", t.Name, from, to, err)
		}
		res.Deleted[t.Name] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("delete typed rows of blocks [%d,%d]: %w", from, to, err)
	}
	typed := chain.Rows{Typed: map[*chain.Table][][]any{}}
	for _, t := range opts.Typed {
		if rows := raw.Typed[t]; len(rows) > 0 {
			typed.Typed[t] = rows
		}
	}
	var children chain.Schema
	if slices.Contains(opts.Typed, chain.ChildrenTable) {
		children = chain.Schema{chain.ChildrenTable}
	}
	if err := copyTables(ctx, tx, children, []*chain.Rows{&typed}, res.Written); err != nil {
		return nil, fmt.Errorf("write registrations of blocks [%d,%d]: %w", from, to, err)
	}
	delete(typed.Typed, chain.ChildrenTable)
	sets := []*chain.Rows{&typed}
	if opts.Discovery != nil {
		var err error
		if sets, err = NewWriter(opts.Typed).WithDiscovery(opts.Discovery).gate(ctx, tx, sets); err != nil {
			return nil, err
		}
	}
	if err := copyTables(ctx, tx, opts.Typed, sets, res.Written); err != nil {
		return nil, fmt.Errorf("write typed rows of blocks [%d,%d]: %w", from, to, err)
	}
	return sets, nil
}

// checkDerivedRange refuses derived rows outside [from, to]: they would survive the next run's range delete
// only by accident, and a derive that produces them is a bug.
func checkDerivedRange(r *chain.Rows, from, to uint64) error {
	out := func(n uint64) bool { return n < from || n > to }
	for t, rows := range r.Typed {
		for _, row := range rows {
			if n, ok := row[0].(int64); !ok || out(uint64(n)) {
				return fmt.Errorf("re-derive blocks [%d,%d]: row of %s for block %v is outside the range", from, to, t.Name, row[0])
			}
		}
	}
	for i := range r.TokenTransfers {
		if out(r.TokenTransfers[i].BlockNumber) {
			return fmt.Errorf("re-derive blocks [%d,%d]: token transfer of block %d is outside the range", from, to, r.TokenTransfers[i].BlockNumber)
		}
	}
	for i := range r.Events {
		if out(r.Events[i].BlockNumber) {
			return fmt.Errorf("re-derive blocks [%d,%d]: event of block %d is outside the range", from, to, r.Events[i].BlockNumber)
		}
	}
	for i := range r.Calls {
		if out(r.Calls[i].BlockNumber) {
			return fmt.Errorf("re-derive blocks [%d,%d]: call of block %d is outside the range", from, to, r.Calls[i].BlockNumber)
		}
	}
	return nil
}

type derivedKey struct {
	block uint64
	index int32
}

// keepOtherABIs drops from r the events and calls that are not of abiNames, or whose log or transaction still
// has a row of another ABI (the rows of abiNames have already been deleted, so whatever remains is another's).
func keepOtherABIs(ctx context.Context, tx pgx.Tx, from, to uint64, abiNames []string, r *chain.Rows) (int, error) {
	keys := func(sql string) (map[derivedKey]bool, error) {
		rows, err := tx.Query(ctx, sql, int64(from), int64(to))
		if err != nil {
			return nil, err
		}
		out := map[derivedKey]bool{}
		var k derivedKey
		_, err = pgx.ForEachRow(rows, []any{&k.block, &k.index}, func() error {
			out[k] = true
			return nil
		})
		return out, err
	}
	otherEvents, err := keys(`SELECT block_number, log_index FROM events WHERE block_number BETWEEN $1 AND $2`)
	if err != nil {
		return 0, fmt.Errorf("read events of other ABIs in blocks [%d,%d]: %w", from, to, err)
	}
	otherCalls, err := keys(`SELECT block_number, transaction_index FROM calls WHERE block_number BETWEEN $1 AND $2`)
	if err != nil {
		return 0, fmt.Errorf("read calls of other ABIs in blocks [%d,%d]: %w", from, to, err)
	}
	kept := 0
	r.Events = slices.DeleteFunc(r.Events, func(e chain.Event) bool {
		if !slices.Contains(abiNames, e.ABIName) {
			return true
		}
		if otherEvents[derivedKey{e.BlockNumber, e.LogIndex}] {
			kept++
			return true
		}
		return false
	})
	r.Calls = slices.DeleteFunc(r.Calls, func(c chain.Call) bool {
		if !slices.Contains(abiNames, c.ABIName) {
			return true
		}
		if otherCalls[derivedKey{c.BlockNumber, c.TransactionIndex}] {
			kept++
			return true
		}
		return false
	})
	return kept, nil
}

// hasCallTables reports whether schema has frame-keyed run-time tables (the typed call tables), whose
// internal calls come from the stored traces.
func hasCallTables(schema chain.Schema) bool {
	return slices.ContainsFunc(schema, func(t *chain.Table) bool { return t.FrameColumn() != "" })
}

// readRaw loads the logs and transactions of the blocks in [from, to] in primary-key order, the inputs of the
// derived tables, and with traces their internal call frames (what the typed call tables take of traces).
// With lock, the rows are locked FOR SHARE, transactions before logs before traces, the order in which a
// live batch deletes them.
func readRaw(ctx context.Context, db DB, from, to uint64, lock, traces bool) (chain.Rows, error) {
	suffix := ""
	if lock {
		suffix = " FOR SHARE"
	}
	var r chain.Rows
	var err error
	if r.Transactions, err = readRows(ctx, db, `SELECT `+transactionColumns+`
		FROM transactions WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, transaction_index`+suffix,
		scanTransaction, int64(from), int64(to)); err != nil {
		return r, fmt.Errorf("read transactions of blocks [%d,%d]: %w", from, to, err)
	}
	if r.Logs, err = readRows(ctx, db, `SELECT `+logColumns+`
		FROM logs WHERE block_number BETWEEN $1 AND $2 ORDER BY block_number, log_index`+suffix,
		scanLog, int64(from), int64(to)); err != nil {
		return r, fmt.Errorf("read logs of blocks [%d,%d]: %w", from, to, err)
	}
	if traces {
		if r.Traces, err = readRows(ctx, db, `SELECT `+traceColumns+`
			FROM traces WHERE block_number BETWEEN $1 AND $2 AND `+internalCalls+`
			ORDER BY block_number, transaction_index, trace_address`+suffix,
			scanTrace, int64(from), int64(to)); err != nil {
			return r, fmt.Errorf("read traces of blocks [%d,%d]: %w", from, to, err)
		}
	}
	return r, nil
}

// transactionColumns and logColumns are what scanTransaction and scanLog read.
const (
	transactionColumns = `block_number, transaction_index, hash, block_hash, block_timestamp, from_address,
		to_address, value, gas, gas_price, max_fee_per_gas, max_priority_fee_per_gas, max_fee_per_blob_gas, type,
		nonce, input, status, root, gas_used, cumulative_gas_used, effective_gas_price, contract_address,
		blob_gas_used, blob_gas_price`
	logColumns = `block_number, log_index, transaction_hash, transaction_index, block_timestamp, address, topic0,
		topic1, topic2, topic3, data, block_hash`
	// traceColumns are what scanTrace reads: what typed.Tables.AddTrace uses of a frame.
	traceColumns = `block_number, transaction_index, trace_address, transaction_hash, block_timestamp, type,
		from_address, to_address, input, status`
	// internalCalls are the frames that can be rows of a call table (typed.Tables.AddTrace).
	internalCalls = `cardinality(trace_address) > 0 AND type IN ('call', 'staticcall') AND octet_length(input) >= 4`
)

func scanTrace(row pgx.CollectableRow) (t chain.Trace, err error) {
	err = row.Scan(&t.BlockNumber, &t.TransactionIndex, &t.TraceAddress, &t.TransactionHash, &t.BlockTimestamp,
		&t.Type, &t.FromAddress, &t.ToAddress, &t.Input, &t.Status)
	return t, err
}

// ReadRaw loads only the logs and transactions of the blocks in [from, to], in primary-key order: what the
// derived tables are computed from. (internal/pgtest.ReadRows reads every core table, for tests.)
func ReadRaw(ctx context.Context, db DB, from, to uint64) (chain.Rows, error) {
	return readRaw(ctx, db, from, to, false, false)
}

// scanTransaction and scanLog match the column lists of readRaw.
func scanTransaction(row pgx.CollectableRow) (t chain.Transaction, err error) {
	var value, gp, mf, mp, mfb, egp, bgp pgtype.Numeric
	err = row.Scan(&t.BlockNumber, &t.TransactionIndex, &t.Hash, &t.BlockHash, &t.BlockTimestamp,
		&t.FromAddress, &t.ToAddress, &value, &t.Gas, &gp, &mf, &mp, &mfb, &t.Type, &t.Nonce, &t.Input,
		&t.Status, &t.Root, &t.GasUsed, &t.CumulativeGasUsed, &egp, &t.ContractAddress, &t.BlobGasUsed, &bgp)
	t.Value, t.GasPrice, t.MaxFeePerGas, t.MaxPriorityFeePerGas = bigOf(value), bigOf(gp), bigOf(mf), bigOf(mp)
	t.MaxFeePerBlobGas, t.EffectiveGasPrice, t.BlobGasPrice = bigOf(mfb), bigOf(egp), bigOf(bgp)
	return t, err
}

func scanLog(row pgx.CollectableRow) (l chain.Log, err error) {
	var t [4][]byte
	err = row.Scan(&l.BlockNumber, &l.LogIndex, &l.TransactionHash, &l.TransactionIndex, &l.BlockTimestamp,
		&l.Address, &t[0], &t[1], &t[2], &t[3], &l.Data, &l.BlockHash)
	for _, x := range t {
		if x == nil {
			break
		}
		l.Topics = append(l.Topics, x)
	}
	return l, err
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

func readRows[T any](ctx context.Context, db DB, sql string, scan pgx.RowToFunc[T], args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return out, nil
}
