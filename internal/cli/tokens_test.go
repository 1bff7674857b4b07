package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// TestTokensCommand: --list loads a token list's entries of --chain-id (twice: a list replaces its own rows);
// flags are validated at the edge; --rpc refuses to walk token_transfers while its token index is deferred,
// before it asks the node anything.
func TestTokensCommand(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	list := filepath.Join(t.TempDir(), "list.json")
	if err := os.WriteFile(list, []byte(`{"name": "mine", "tokens": [
		{"chainId": 1, "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "name": "Wrapped Ether", "symbol": "WETH", "decimals": 18},
		{"chainId": 10, "address": "0x4200000000000000000000000000000000000006", "name": "Wrapped Ether", "symbol": "WETH", "decimals": 18}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		out, stderr, err := runCLI(ctx, append([]string{"tokens", "--list", list}, dbArgs(cfg)...)...)
		if err != nil || !strings.Contains(out, `token list "mine": 1 tokens of chain 1, 1 rows inserted or updated`) {
			t.Fatalf("tokens --list: %v\n%s%s", err, out, stderr)
		}
	}
	var symbol string
	if err := s.Pool().QueryRow(ctx, `SELECT symbol FROM tokens WHERE source = 'token_list'`).Scan(&symbol); err != nil || symbol != "WETH" {
		t.Fatalf("stored %q, %v", symbol, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens"}, "give --rpc URL"},
		{[]string{"tokens", "--rpc", "http://127.0.0.1:1"}, "--brokers is empty"},
		{[]string{"tokens", "--rpc", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1"}, "--topic is empty"},
		{[]string{"tokens", "--list", list, "--page", "0"}, "must be positive"},
		// An unreachable node fails after --max-attempts, not at the end of the context.
		{[]string{"tokens", "--rpc", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1", "--topic", "tokens", "--max-attempts", "2"},
			"giving up after 2 attempts"},
	} {
		_, stderr, err := runCLI(ctx, append(c.args, dbArgs(cfg)...)...)
		if err == nil || !strings.Contains(stderr+err.Error(), c.want) {
			t.Errorf("%v: %v, want %q in\n%s", c.args, err, c.want, stderr)
		}
	}

	if _, err := store.DropSecondaryIndexes(ctx, s.Pool()); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCLI(ctx, append([]string{"tokens", "--rpc", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1",
		"--topic", "tokens"}, dbArgs(cfg)...)...)
	if err == nil || !strings.Contains(stderr+err.Error(), "token_transfers_token_block_idx is not there") {
		t.Errorf("tokens --rpc without the token index: %v\n%s", err, stderr)
	}
}
