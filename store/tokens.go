package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store/chain"
)

// Tokens are the one table written by address rather than by block (see chain.Token): a batch upserts them
// after its COPY, in its transaction, and the rule of which row wins is the same in Go (betterToken, for two
// rows of one statement, which ON CONFLICT cannot compare) and in SQL (upsertTokensSQL, against the stored row).

const upsertTokensSQL = `
	INSERT INTO tokens AS k (address, name, symbol, decimals, total_supply, standard, block_number, source)
	SELECT a, n, s, d, ts::numeric, st, b, src
	FROM unnest($1::bytea[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::bigint[], $8::text[])
		AS u(a, n, s, d, ts, st, b, src)
	ORDER BY a
	ON CONFLICT (address) DO UPDATE SET
		-- Over a list's row, a field the chain left NULL (a call that reverted) keeps the list's value.
		name = CASE WHEN k.source = 'token_list' THEN coalesce(EXCLUDED.name, k.name) ELSE EXCLUDED.name END,
		symbol = CASE WHEN k.source = 'token_list' THEN coalesce(EXCLUDED.symbol, k.symbol) ELSE EXCLUDED.symbol END,
		decimals = CASE WHEN k.source = 'token_list' THEN coalesce(EXCLUDED.decimals, k.decimals) ELSE EXCLUDED.decimals END,
		total_supply = EXCLUDED.total_supply, standard = coalesce(EXCLUDED.standard, k.standard),
		block_number = EXCLUDED.block_number, source = EXCLUDED.source, updated_at = now()
	WHERE k.source = 'token_list'
		OR (k.source = 'chain' AND EXCLUDED.source = 'chain'
			AND coalesce(EXCLUDED.block_number, 9223372036854775807) < coalesce(k.block_number, 9223372036854775807))`

// betterToken reports whether a should be kept rather than b, two rows of one address: the chain's word over
// a list's, the earlier read of the chain over a later one (an unknown block counts as the latest), the later
// of two lists (the one upserted last).
func betterToken(a, b *chain.Token) bool {
	switch {
	case a.Source != b.Source:
		return a.Source == chain.TokenFromChain
	case a.Source == chain.TokenFromList:
		return true
	}
	return tokenBlock(a) < tokenBlock(b)
}

func tokenBlock(t *chain.Token) uint64 {
	if t.BlockNumber == nil {
		return math.MaxInt64
	}
	return *t.BlockNumber
}

// upsertTokens stores tokens, one statement for all of them, and counts the rows it inserted or
// updated. The rows go in address order, so that two batches upserting the same tokens lock them in the
// same order.
func upsertTokens(ctx context.Context, db DB, tokens []chain.Token, counts chain.Counts) error {
	if len(tokens) == 0 {
		return nil
	}
	best := slices.Clone(tokens)
	for i := range best {
		best[i].Source = cmp.Or(best[i].Source, chain.TokenFromChain) // as the statement stores it
	}
	// Stable, so that of two list entries for one address the later stays later.
	slices.SortStableFunc(best, func(a, b chain.Token) int { return bytes.Compare(a.Address, b.Address) })
	out := best[:0]
	for i := range best {
		if n := len(out); n > 0 && bytes.Equal(out[n-1].Address, best[i].Address) {
			if betterToken(&best[i], &out[n-1]) {
				out[n-1] = best[i]
			}
			continue
		}
		out = append(out, best[i])
	}
	n := len(out)
	addr, names, symbols := make([][]byte, n), make([]*string, n), make([]*string, n)
	decimals, supply, standard := make([]*int32, n), make([]*string, n), make([]*string, n)
	blocks, source := make([]*int64, n), make([]string, n)
	for i := range out {
		t := &out[i]
		if t.BlockNumber != nil && *t.BlockNumber > math.MaxInt64 {
			return fmt.Errorf("token %x read at block %d, which is not a bigint", t.Address, *t.BlockNumber)
		}
		addr[i], names[i], symbols[i], decimals[i] = t.Address, sanitizeOpt(t.Name), sanitizeOpt(t.Symbol), t.Decimals
		if t.TotalSupply != nil {
			s := t.TotalSupply.String()
			supply[i] = &s
		}
		if t.Standard != "" {
			standard[i] = &t.Standard
		}
		if t.BlockNumber != nil {
			b := int64(*t.BlockNumber)
			blocks[i] = &b
		}
		source[i] = string(t.Source)
	}
	tag, err := db.Exec(ctx, upsertTokensSQL, addr, names, symbols, decimals, supply, standard, blocks, source)
	if err != nil {
		return fmt.Errorf("upsert %d tokens: %w", n, err)
	}
	if counts != nil {
		counts["tokens"] += tag.RowsAffected()
	}
	return nil
}

func sanitizeOpt(s *string) *string {
	if s == nil {
		return nil
	}
	v := sanitizeText(*s)
	return &v
}

// SaveTokens upserts tokens outside any batch, in a transaction of its own, by the rule of every batch: how
// `chainsink tokens --list` loads a token list, which never replaces what the chain said. It returns how many
// rows it inserted or updated.
func SaveTokens(ctx context.Context, db DB, tokens []chain.Token) (int64, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin token upsert: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	counts := chain.Counts{}
	if err := upsertTokens(ctx, tx, tokens, counts); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit token upsert: %w", err)
	}
	return counts["tokens"], nil
}

// ReadTokens reports which of addrs tokens has a row read from the chain for: a set keyed by the address
// bytes as a string.
func ReadTokens(ctx context.Context, db DB, addrs [][]byte) (map[string]bool, error) {
	rows, err := db.Query(ctx, `SELECT address FROM tokens WHERE address = ANY($1) AND source = 'chain'`, addrs)
	if err != nil {
		return nil, fmt.Errorf("look up %d tokens: %w", len(addrs), err)
	}
	out := map[string]bool{}
	var a []byte
	if _, err := pgx.ForEachRow(rows, []any{&a}, func() error {
		out[string(a)] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up %d tokens: %w", len(addrs), err)
	}
	return out, nil
}

// UnreadToken is a token address seen in token_transfers that no chain read has described yet.
type UnreadToken struct {
	Address []byte
	// Standard is the standard of its transfers (erc20, erc721, erc1155).
	Standard string
}

// UnreadTokens pages through the token addresses of token_transfers above after (nil: from the start), in
// address order, that have no row read from the chain in tokens (none, or only a token list's), at most
// limit of them. It walks token_transfers' (token_address, block_number) index one distinct address at a
// time, so that its cost follows the number of tokens, not of transfers.
func UnreadTokens(ctx context.Context, db DB, after []byte, limit int) ([]UnreadToken, error) {
	if after == nil {
		after = []byte{}
	}
	rows, err := db.Query(ctx, `
		WITH RECURSIVE a(addr) AS (
			(SELECT token_address FROM token_transfers WHERE token_address > $1 ORDER BY token_address LIMIT 1)
			UNION ALL
			SELECT (SELECT token_address FROM token_transfers WHERE token_address > a.addr ORDER BY token_address LIMIT 1)
			FROM a WHERE a.addr IS NOT NULL
		)
		SELECT a.addr, (SELECT standard FROM token_transfers t WHERE t.token_address = a.addr LIMIT 1)
		FROM a
		WHERE a.addr IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM tokens k WHERE k.address = a.addr AND k.source = 'chain')
		LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list unread tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnreadToken, error) {
		var t UnreadToken
		return t, r.Scan(&t.Address, &t.Standard)
	})
	if err != nil {
		return nil, fmt.Errorf("list unread tokens: %w", err)
	}
	return out, nil
}
