package demo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
)

// EnsureDatabase creates database name on the server of adminURL (a database the user can connect to, such
// as postgres) unless it exists. It reports whether it created it.
func EnsureDatabase(ctx context.Context, adminURL, name string) (bool, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return false, fmt.Errorf("connect to Postgres at %s: %w", store.Redact(adminURL), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

// Ranked is a label with a count, for the summaries people read.
type Ranked struct {
	Label string
	Extra string
	Count int64
}

func ranked(ctx context.Context, db store.DB, sql string, args ...any) ([]Ranked, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("summary query: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ranked, error) {
		var x Ranked
		err := r.Scan(&x.Label, &x.Extra, &x.Count)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("summary query: %w", err)
	}
	return out, nil
}

// TopTokens ranks token contracts by number of transfers; Extra is the standard.
func TopTokens(ctx context.Context, db store.DB, limit int) ([]Ranked, error) {
	return ranked(ctx, db, `SELECT hex(token_address), standard, count(*) FROM token_transfers
		GROUP BY token_address, standard ORDER BY count(*) DESC, 1 LIMIT $1`, limit)
}

// TopEvents ranks decoded events by name; Extra is the ABI.
func TopEvents(ctx context.Context, db store.DB, limit int) ([]Ranked, error) {
	return ranked(ctx, db, `SELECT event_name, abi_name, count(*) FROM events
		GROUP BY event_name, abi_name ORDER BY count(*) DESC, 1 LIMIT $1`, limit)
}

// TopMethods ranks decoded calls by method; Extra is the ABI.
func TopMethods(ctx context.Context, db store.DB, limit int) ([]Ranked, error) {
	return ranked(ctx, db, `SELECT method_name, abi_name, count(*) FROM calls
		GROUP BY method_name, abi_name ORDER BY count(*) DESC, 1 LIMIT $1`, limit)
}

// Swap is a decoded Uniswap swap.
type Swap struct {
	BlockNumber uint64
	LogIndex    int32
	Pool        string
	ABIName     string
	Amount0     string
	Amount1     string
}

// Swaps lists decoded Uniswap V2 and V3 swaps, oldest first. V2 amounts are the net flow into the pool
// (in − out), so both versions read the same way: positive into the pool, negative out of it.
func Swaps(ctx context.Context, db store.DB, limit int) ([]Swap, error) {
	rows, err := db.Query(ctx, `SELECT block_number, log_index, hex(address), abi_name,
		CASE WHEN abi_name = 'UniswapV3Pool' THEN args->>'amount0'
			ELSE ((args->>'amount0In')::numeric - (args->>'amount0Out')::numeric)::text END,
		CASE WHEN abi_name = 'UniswapV3Pool' THEN args->>'amount1'
			ELSE ((args->>'amount1In')::numeric - (args->>'amount1Out')::numeric)::text END
		FROM events WHERE event_name = 'Swap' AND abi_name IN ('UniswapV2Pair', 'UniswapV3Pool')
		ORDER BY block_number, log_index LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Swap, error) {
		var s Swap
		err := r.Scan(&s.BlockNumber, &s.LogIndex, &s.Pool, &s.ABIName, &s.Amount0, &s.Amount1)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	return out, nil
}
