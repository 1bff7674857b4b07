package store_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

func token(addr byte, symbol string, src chain.TokenSource, block uint64) chain.Token {
	d := int32(6)
	t := chain.Token{Address: b(20, addr), Symbol: &symbol, Name: &symbol, Decimals: &d, Source: src}
	if src == chain.TokenFromChain {
		t.BlockNumber, t.TotalSupply, t.Standard = &block, big.NewInt(int64(block)), "erc20"
	}
	return t
}

type storedToken struct {
	symbol string
	source string
	block  *int64
}

func readTokens(t *testing.T, db store.DB) map[byte]storedToken {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT address, symbol, source, block_number FROM tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[byte]storedToken{}
	for rows.Next() {
		var a []byte
		var st storedToken
		if err := rows.Scan(&a, &st.symbol, &st.source, &st.block); err != nil {
			t.Fatal(err)
		}
		out[a[0]] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeTokens(t *testing.T, db store.DB, from int64, tokens ...chain.Token) store.Result {
	t.Helper()
	bt := store.NewBatch("g", "tokens", 0, from, chain.ReplaceRows)
	for i, tok := range tokens {
		bt.Add(msg(from+int64(i), chain.Rows{Tokens: []chain.Token{tok}}))
	}
	res, err := store.WriteBatch(context.Background(), db, bt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestTokensKeepTheChainsFirstRead: one row per address; what the chain said wins over a token list whatever
// the order, and of two chain reads the earlier block wins, within one batch as across batches.
func TestTokensKeepTheChainsFirstRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()

	if n, err := store.SaveTokens(ctx, db, []chain.Token{token(1, "LIST-A", chain.TokenFromList, 0),
		token(3, "LIST-C", chain.TokenFromList, 0)}); err != nil || n != 2 {
		t.Fatalf("seed: %d rows, %v", n, err)
	}
	res := writeTokens(t, db, 0,
		token(1, "A@200", chain.TokenFromChain, 200),
		token(2, "B@300", chain.TokenFromChain, 300),
		token(2, "B@250", chain.TokenFromChain, 250), // same batch, earlier read: kept
		token(2, "B@260", chain.TokenFromChain, 260))
	if res.Rows["tokens"] != 2 {
		t.Errorf("first batch wrote %d token rows, want 2 (A replaces its list row, B is new)", res.Rows["tokens"])
	}
	writeTokens(t, db, 4,
		token(1, "A@100", chain.TokenFromChain, 100), // earlier: replaces A@200
		token(2, "B@400", chain.TokenFromChain, 400)) // later: B@250 stays
	if _, err := store.SaveTokens(ctx, db, []chain.Token{token(1, "LIST-A2", chain.TokenFromList, 0),
		token(3, "LIST-C2", chain.TokenFromList, 0)}); err != nil {
		t.Fatal(err)
	}
	// A chain read whose decimals() reverted, over a list's row: the list's decimals stay.
	listed := token(6, "LIST-F", chain.TokenFromList, 0)
	if _, err := store.SaveTokens(ctx, db, []chain.Token{listed}); err != nil {
		t.Fatal(err)
	}
	noDecimals := token(6, "F@50", chain.TokenFromChain, 50)
	noDecimals.Decimals = nil
	writeTokens(t, db, 6, noDecimals)
	var decimals *int32
	if err := db.QueryRow(ctx, `SELECT decimals FROM tokens WHERE address = $1`, b(20, 6)).Scan(&decimals); err != nil {
		t.Fatal(err)
	}
	if decimals == nil || *decimals != 6 {
		t.Errorf("a chain read without decimals over a list's row left decimals %v, want the list's 6", decimals)
	}
	// A tombstone of the height a token was read at leaves it: tokens belong to addresses.
	tomb := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceRows)
	tomb.Add(msg(0, chain.Rows{Tombstones: []uint64{100, 250}}))
	if _, err := store.WriteBatch(ctx, db, tomb); err != nil {
		t.Fatal(err)
	}

	got := readTokens(t, db)
	want := map[byte]string{1: "A@100/chain/100", 2: "B@250/chain/250", 3: "LIST-C2/token_list/-", 6: "F@50/chain/50"}
	if len(got) != len(want) {
		t.Errorf("%d tokens stored: %v", len(got), got)
	}
	for a, w := range want {
		g := got[a]
		block := "-"
		if g.block != nil {
			block = big.NewInt(*g.block).String()
		}
		if s := g.symbol + "/" + g.source + "/" + block; s != w {
			t.Errorf("token %d: %s, want %s", a, s, w)
		}
	}
}

// TestTokenTransfersScaled: the view scales ERC-20 values by the token's decimals exactly, to the last of 78
// digits, and leaves the amount NULL where the decimals are unknown or the token is not fungible.
func TestTokenTransfersScaled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()
	writeBlocks(t, db, 100) // sampleRows: an erc20 transfer of 2^256-1 of token b(20, 31), an erc721 and an erc1155
	dec := int32(18)
	sym := "MAX"
	if _, err := store.SaveTokens(ctx, db, []chain.Token{{Address: b(20, 31), Symbol: &sym, Decimals: &dec,
		Source: chain.TokenFromList}}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT standard, coalesce(symbol, '-'), coalesce(amount::text, '-')
		FROM token_transfers_scaled ORDER BY log_index, batch_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var std, symbol, amount string
		if err := rows.Scan(&std, &symbol, &amount); err != nil {
			t.Fatal(err)
		}
		got = append(got, std+" "+symbol+" "+amount)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	erc20 := "erc20 MAX 115792089237316195423570985008687907853269984665640564039457.584007913129639935"
	if len(got) == 0 || got[0] != erc20 {
		t.Fatalf("scaled transfers %q, want first %q", got, erc20)
	}
	for _, g := range got[1:] {
		if g[len(g)-1] != '-' {
			t.Errorf("%s: a non-fungible or unknown token's amount is not NULL", g)
		}
	}
}

// TestUnreadTokens pages through the tokens of token_transfers that no chain read describes: a list's row
// does not count as read.
func TestUnreadTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()
	writeBlocks(t, db, 100)
	var all [][]byte
	for after := []byte(nil); ; {
		page, err := store.UnreadTokens(ctx, db, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page[0].Address)
		after = page[0].Address
	}
	if len(all) != 3 {
		t.Fatalf("%d unread tokens before any read, want 3 (sampleRows' erc20, erc721, erc1155)", len(all))
	}
	if _, err := store.SaveTokens(ctx, db, []chain.Token{{Address: all[0], Source: chain.TokenFromList}}); err != nil {
		t.Fatal(err)
	}
	block := uint64(5)
	writeTokens(t, db, 0, chain.Token{Address: all[1], BlockNumber: &block, Source: chain.TokenFromChain})
	page, err := store.UnreadTokens(ctx, db, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || string(page[0].Address) != string(all[0]) || string(page[1].Address) != string(all[2]) {
		t.Errorf("unread after one list row and one chain read: %v", page)
	}
	for _, p := range page {
		if p.Standard == "" {
			t.Errorf("token %x without its transfers' standard", p.Address)
		}
	}
}
