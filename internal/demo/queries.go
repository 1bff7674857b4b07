package demo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
)

// RecreateDatabase drops database name on the server of adminURL (a database the user can connect to, such
// as postgres) if it exists, and creates it anew: every demo starts from an empty database, so that one left
// by an earlier chainsink (its typed tables of another definition, say) never stops it.
func RecreateDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to Postgres at %s: %w", store.Redact(adminURL), err)
	}
	defer conn.Close(ctx)
	db := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
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

// TokenVolume is a token's transfers: its symbol (from tokens) and the amount moved in whole tokens.
type TokenVolume struct {
	Token, Symbol, Standard string
	Transfers               int64
	// Volume is the sum of the scaled amounts, exact; "-" where the decimals are not known or the token is
	// not fungible.
	Volume string
}

// TopTokens ranks token contracts by number of transfers, through the token_transfers_scaled view.
func TopTokens(ctx context.Context, db store.DB, limit int) ([]TokenVolume, error) {
	rows, err := db.Query(ctx, `SELECT hex(token_address), coalesce(symbol, '?'), standard, count(*),
			coalesce(trim_scale(sum(amount))::text, '-')
		FROM token_transfers_scaled
		GROUP BY token_address, symbol, standard ORDER BY count(*) DESC, 1 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("top tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TokenVolume])
	if err != nil {
		return nil, fmt.Errorf("top tokens: %w", err)
	}
	return out, nil
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

// TypedTables lists the typed tables with their row counts; Extra is what each was generated from.
func TypedTables(ctx context.Context, db store.DB) ([]Ranked, error) {
	rows, err := db.Query(ctx, `SELECT table_name, kind || ' ' || signature FROM typed_tables ORDER BY set_name, kind DESC, table_name`)
	if err != nil {
		return nil, fmt.Errorf("list typed tables: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ranked, error) {
		var x Ranked
		err := r.Scan(&x.Label, &x.Extra)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list typed tables: %w", err)
	}
	for i := range out {
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{out[i].Label}.Sanitize()).Scan(&out[i].Count); err != nil {
			return nil, fmt.Errorf("count %s: %w", out[i].Label, err)
		}
	}
	return out, nil
}

// Swap is a Uniswap swap.
type Swap struct {
	BlockNumber uint64
	LogIndex    int32
	Pool        string
	Table       string
	Amount0     string
	Amount1     string
}

// Swaps lists Uniswap V2 and V3 swaps from their typed tables, oldest first. V2 amounts are the net flow
// into the pool (in − out), so both versions read the same way: positive into the pool, negative out of it.
func Swaps(ctx context.Context, db store.DB, limit int) ([]Swap, error) {
	rows, err := db.Query(ctx, `SELECT block_number, log_index, hex(contract_address), 'univ2_evt_swap',
			(amount0_in - amount0_out)::text, (amount1_in - amount1_out)::text
		FROM univ2_evt_swap
		UNION ALL
		SELECT block_number, log_index, hex(contract_address), 'univ3_evt_swap', amount0::text, amount1::text
		FROM univ3_evt_swap
		ORDER BY 1, 2 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Swap, error) {
		var s Swap
		err := r.Scan(&s.BlockNumber, &s.LogIndex, &s.Pool, &s.Table, &s.Amount0, &s.Amount1)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	return out, nil
}

// Pair is a Uniswap V2 pair's swap count and volume in.
type Pair struct {
	Pair                 string
	Swaps                int64
	Amount0In, Amount1In string
}

// TopPairs ranks Uniswap V2 pairs by swaps, with the amounts swapped in: what analysts ask of univ2_evt_swap.
func TopPairs(ctx context.Context, db store.DB, limit int) ([]Pair, error) {
	rows, err := db.Query(ctx, `SELECT hex(contract_address), count(*), sum(amount0_in)::text, sum(amount1_in)::text
		FROM univ2_evt_swap GROUP BY contract_address ORDER BY count(*) DESC, 1 LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("rank pairs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pair, error) {
		var p Pair
		err := r.Scan(&p.Pair, &p.Swaps, &p.Amount0In, &p.Amount1In)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("rank pairs: %w", err)
	}
	return out, nil
}

// Child is a contract registered as a factory's child.
type Child struct {
	Set, Child, Factory string
	BlockNumber         uint64
}

// FactoryChildren lists the registered children of factory sets, in the order they were created.
func FactoryChildren(ctx context.Context, db store.DB) ([]Child, error) {
	rows, err := db.Query(ctx, `SELECT set_name, hex(address), hex(factory_address), block_number
		FROM factory_children ORDER BY block_number, log_index, set_name`)
	if err != nil {
		return nil, fmt.Errorf("list factory children: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Child, error) {
		var c Child
		err := r.Scan(&c.Set, &c.Child, &c.Factory, &c.BlockNumber)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list factory children: %w", err)
	}
	return out, nil
}
