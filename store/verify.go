package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// VerifyOptions say what `chainsink verify` checks.
type VerifyOptions struct {
	// From and To bound the heights checked; nil is the lowest or the highest stored block.
	From, To *int64
	// Chunk is how many heights one round of checks covers, each round one read-only, repeatable-read
	// transaction, so that no statement grows with the chain (statement_timeout) and no snapshot is held for
	// the whole run (vacuum). Default 100,000.
	Chunk int64
	// Progress, when set, is called after each round with the heights checked so far and in all.
	Progress func(done, total int64)
}

// Check is the result of one consistency check over the range.
type Check struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Problems    int64   `json:"problems"`
	Heights     []int64 `json:"heights,omitempty"` // the lowest heights with a problem, at most ExampleHeights
}

// ExampleHeights is how many heights a Check lists.
const ExampleHeights = 10

// VerifyReport is what Verify found. From and To are the range checked, Blocks the blocks stored in it.
type VerifyReport struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Horizon is where retention made history start (`chainsink retention`); a range asked from below it is
	// checked from it. Nil without retention.
	Horizon *int64  `json:"horizon,omitempty"`
	Blocks  int64   `json:"blocks"`
	Empty   bool    `json:"empty"` // nothing is stored in the range
	Checks  []Check `json:"checks"`
}

// OK reports whether every check passed.
func (r VerifyReport) OK() bool {
	for _, c := range r.Checks {
		if c.Problems > 0 {
			return false
		}
	}
	return true
}

// verifyChecks are the set-based checks of Verify. Each query takes the range as $1, $2 and returns one row
// per problem with the height it is at, so that one statement both counts and gives examples. They read the
// tables by primary key ranges (every key starts with the block number) and join on whole keys, which lets
// Postgres use merge or hash joins over the range instead of a lookup per row.
type verifyCheck struct {
	name, description, query string
}

var verifyChecks = []verifyCheck{
	{"missing_blocks", "heights in the range with no stored block", `
		SELECT g.n FROM generate_series($1::bigint, $2::bigint) AS g(n)
		WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.number = g.n)`},
	// $1 here is never the range's first height, whose parent is outside it (Verify sees to that).
	{"broken_parent", "blocks whose parent_hash is not the stored hash of the height below", `
		SELECT b.number FROM blocks b JOIN blocks p ON p.number = b.number - 1
		WHERE b.number BETWEEN $1 AND $2 AND b.parent_hash <> p.hash`},
	{"foreign_transactions", "transactions whose block_hash is not the stored block's, or at a height with no block", `
		SELECT t.block_number FROM transactions t LEFT JOIN blocks b ON b.number = t.block_number
		WHERE t.block_number BETWEEN $1 AND $2 AND (b.number IS NULL OR t.block_hash <> b.hash)`},
	{"foreign_logs", "logs whose block_hash is not the stored block's (logs stored before migration 4 have none)", `
		SELECT l.block_number FROM logs l LEFT JOIN blocks b ON b.number = l.block_number
		WHERE l.block_number BETWEEN $1 AND $2 AND l.block_hash IS NOT NULL AND (b.number IS NULL OR l.block_hash <> b.hash)`},
	{"transaction_count", "blocks whose transaction_count differs from their stored transactions", `
		SELECT b.number FROM blocks b
		LEFT JOIN (SELECT block_number, count(*) AS n FROM transactions WHERE block_number BETWEEN $1 AND $2
			GROUP BY block_number) t ON t.block_number = b.number
		WHERE b.number BETWEEN $1 AND $2 AND NOT b.filtered AND b.transaction_count <> coalesce(t.n, 0)`},
	{"withdrawal_count", "blocks whose withdrawal_count differs from their stored withdrawals", `
		SELECT b.number FROM blocks b
		LEFT JOIN (SELECT block_number, count(*) AS n FROM withdrawals WHERE block_number BETWEEN $1 AND $2
			GROUP BY block_number) w ON w.block_number = b.number
		WHERE b.number BETWEEN $1 AND $2 AND b.withdrawal_count IS NOT NULL AND b.withdrawal_count <> coalesce(w.n, 0)`},
	// A filtered block's logs are stored without their transactions, unless a set asked for its calls.
	{"logs_without_transaction", "logs whose transaction (block, index and hash) is not stored", `
		SELECT l.block_number FROM logs l
		LEFT JOIN transactions t ON t.block_number = l.block_number AND t.transaction_index = l.transaction_index
		WHERE l.block_number BETWEEN $1 AND $2 AND (t.hash IS NULL OR t.hash <> l.transaction_hash)
		  AND (t.hash IS NOT NULL OR NOT EXISTS (SELECT 1 FROM blocks b WHERE b.number = l.block_number AND b.filtered))`},
	{"token_transfers_without_log", "token transfers whose log (block, index and transaction) is not stored", `
		SELECT x.block_number FROM token_transfers x
		LEFT JOIN logs l ON l.block_number = x.block_number AND l.log_index = x.log_index
		WHERE x.block_number BETWEEN $1 AND $2 AND (l.transaction_hash IS NULL OR l.transaction_hash <> x.transaction_hash)`},
	{"events_without_log", "decoded events whose log (block, index and transaction) is not stored", `
		SELECT x.block_number FROM events x
		LEFT JOIN logs l ON l.block_number = x.block_number AND l.log_index = x.log_index
		WHERE x.block_number BETWEEN $1 AND $2 AND (l.transaction_hash IS NULL OR l.transaction_hash <> x.transaction_hash)`},
	withTransaction("calls", "decoded calls"),
	withTransaction("traces", "traces"),
	withTransaction("contracts", "created contracts"),
}

// withTransaction is the check that every row of table (keyed by block number and transaction index, with
// the transaction's hash) has its transaction.
func withTransaction(table, what string) verifyCheck {
	return verifyCheck{table + "_without_transaction", what + " whose transaction (block, index and hash) is not stored", `
		SELECT x.block_number FROM ` + table + ` x
		LEFT JOIN transactions t ON t.block_number = x.block_number AND t.transaction_index = x.transaction_index
		WHERE x.block_number BETWEEN $1 AND $2 AND (t.hash IS NULL OR t.hash <> x.transaction_hash)`}
}

// Verify checks that the stored chain is whole and consistent: every height has a block, each block's parent
// is the block stored below it, every transaction belongs to its block and every block has all of its
// transactions and withdrawals, every log has its transaction, and every decoded row has its log or
// transaction. It only reads.
func Verify(ctx context.Context, db TxBeginner, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if o.Chunk <= 0 {
		o.Chunk = 100_000
	}
	var lo, hi *int64
	if err := db.QueryRow(ctx, `SELECT min(number), max(number) FROM blocks`).Scan(&lo, &hi); err != nil {
		return rep, fmt.Errorf("read the stored block range: %w", err)
	}
	switch {
	case o.From != nil:
		rep.From = *o.From
	case lo != nil:
		rep.From = *lo
	}
	h, err := ReadHorizon(ctx, db)
	if err != nil {
		return rep, err
	}
	if h != nil {
		rep.Horizon = &h.Block
		// Below the horizon nothing is kept on purpose; the horizon's own parent is gone with it, so the
		// range then starts there and broken_parent skips it like any range's first block.
		rep.From = max(rep.From, h.Block)
	}
	switch {
	case o.To != nil:
		rep.To = *o.To
	case hi != nil:
		rep.To = *hi
	default:
		rep.To = rep.From - 1
	}
	typedCheck, err := typedVerifyCheck(ctx, db)
	if err != nil {
		return rep, err
	}
	checks := append(slices.Clone(verifyChecks), typedCheck)
	for _, c := range checks {
		rep.Checks = append(rep.Checks, Check{Name: c.name, Description: c.description})
	}
	if rep.To < rep.From {
		rep.Empty = true
		return rep, nil
	}
	total := rep.To - rep.From + 1
	for first := rep.From; first <= rep.To; first += o.Chunk {
		last := min(first+o.Chunk-1, rep.To)
		if err := verifyChunk(ctx, db, checks, &rep, first, last); err != nil {
			return rep, err
		}
		if o.Progress != nil {
			o.Progress(last-rep.From+1, total)
		}
	}
	rep.Empty = rep.Blocks == 0
	return rep, nil
}

// verifyChunk runs every check over heights [first, last] in one snapshot and adds what it finds to rep.
func verifyChunk(ctx context.Context, db TxBeginner, checks []verifyCheck, rep *VerifyReport, first, last int64) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin verify transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only: nothing to keep
	var blocks int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM blocks WHERE number BETWEEN $1 AND $2`, first, last).
		Scan(&blocks); err != nil {
		return fmt.Errorf("count blocks %d-%d: %w", first, last, err)
	}
	rep.Blocks += blocks
	for i, c := range checks {
		lo := first
		if c.name == "broken_parent" && lo == rep.From {
			lo++ // the parent of the range's first block is not checked
		}
		q := `WITH problems AS (` + c.query + `) SELECT (SELECT count(*) FROM problems),
			(SELECT array_agg(h ORDER BY h) FROM (SELECT DISTINCT n AS h FROM problems AS p(n) ORDER BY 1 LIMIT $3) s)`
		var n int64
		var heights []int64
		if err := tx.QueryRow(ctx, q, lo, last, ExampleHeights).Scan(&n, &heights); err != nil {
			return fmt.Errorf("verify %s over %d-%d: %w", c.name, first, last, err)
		}
		check := &rep.Checks[i]
		check.Problems += n
		if room := ExampleHeights - len(check.Heights); room > 0 {
			check.Heights = append(check.Heights, heights[:min(room, len(heights))]...)
		}
	}
	return nil
}

// typedVerifyCheck is the check of the typed tables recorded in typed_tables and of factory_children: every
// row has its log (event tables, registrations), transaction (a call table's transactions' own calls) or
// trace (its internal calls), of the same transaction and the same contract. One statement over all of them,
// so that the report has one line however many tables there are.
func typedVerifyCheck(ctx context.Context, db DB) (verifyCheck, error) {
	// A call table that `tables apply` has not upgraded yet has no trace_address: only transactions' calls.
	rows, err := db.Query(ctx, `SELECT table_name, kind, ddl LIKE '%trace_address integer[]%' FROM typed_tables ORDER BY table_name`)
	if err != nil {
		return verifyCheck{}, fmt.Errorf("read typed_tables: %w", err)
	}
	type recorded struct {
		Name, Kind string
		Frames     bool
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[recorded])
	if err != nil {
		return verifyCheck{}, fmt.Errorf("read typed_tables: %w", err)
	}
	parts := []string{`SELECT x.block_number FROM factory_children x
		LEFT JOIN logs l ON l.block_number = x.block_number AND l.log_index = x.log_index
		WHERE x.block_number BETWEEN $1 AND $2
			AND (l.transaction_hash IS NULL OR l.transaction_hash <> x.transaction_hash OR l.address <> x.factory_address)`}
	for _, t := range tables {
		name := pgx.Identifier{t.Name}.Sanitize()
		if t.Kind == "call" {
			top := ""
			if t.Frames {
				top = ` AND x.trace_address = '{}'`
				parts = append(parts, `SELECT x.block_number FROM `+name+` x
		LEFT JOIN traces r ON r.block_number = x.block_number AND r.transaction_index = x.transaction_index
			AND r.trace_address = x.trace_address
		WHERE x.block_number BETWEEN $1 AND $2 AND x.trace_address <> '{}'
			AND (r.transaction_hash IS NULL OR r.transaction_hash <> x.transaction_hash OR r.to_address IS DISTINCT FROM x.contract_address)`)
			}
			parts = append(parts, `SELECT x.block_number FROM `+name+` x
		LEFT JOIN transactions t ON t.block_number = x.block_number AND t.transaction_index = x.transaction_index
		WHERE x.block_number BETWEEN $1 AND $2`+top+`
			AND (t.hash IS NULL OR t.hash <> x.transaction_hash OR t.to_address IS DISTINCT FROM x.contract_address)`)
			continue
		}
		parts = append(parts, `SELECT x.block_number FROM `+name+` x
		LEFT JOIN logs l ON l.block_number = x.block_number AND l.log_index = x.log_index
		WHERE x.block_number BETWEEN $1 AND $2
			AND (l.transaction_hash IS NULL OR l.transaction_hash <> x.transaction_hash OR l.address <> x.contract_address)`)
	}
	return verifyCheck{name: "typed_without_parent",
		description: fmt.Sprintf("rows of the %d typed tables and of factory_children whose log, transaction or trace (block, index, hash, contract) is not stored", len(tables)),
		query:       strings.Join(parts, "\nUNION ALL\n")}, nil
}

// TxBeginner is a DB that opens transactions with options; *pgxpool.Pool and *pgx.Conn are ones.
type TxBeginner interface {
	DB
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// StoredBlockHash is a stored block's number and hash.
type StoredBlockHash struct {
	Number int64
	Hash   []byte
}

// StoredBlockHashes calls fn with the stored hashes of the blocks in [from, to], in ascending order, chunk at a
// time, reading the blocks by primary key range so that a whole chain streams in constant memory.
func StoredBlockHashes(ctx context.Context, db DB, from, to int64, chunk int, fn func([]StoredBlockHash) error) error {
	if chunk <= 0 {
		return errors.New("stored block hashes: chunk must be positive")
	}
	next := from
	for next <= to {
		rows, err := db.Query(ctx, `SELECT number, hash FROM blocks WHERE number BETWEEN $1 AND $2 ORDER BY number LIMIT $3`,
			next, to, chunk)
		if err != nil {
			return fmt.Errorf("read stored block hashes from %d: %w", next, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[StoredBlockHash])
		if err != nil {
			return fmt.Errorf("read stored block hashes from %d: %w", next, err)
		}
		if len(got) == 0 {
			return nil
		}
		if err := fn(got); err != nil {
			return err
		}
		next = got[len(got)-1].Number + 1
	}
	return nil
}
