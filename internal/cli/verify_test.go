package cli

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// chainedBlock is block n with no transactions, whose parent is chainedBlock(n-1).
func chainedBlock(n uint64) chain.Rows {
	hash := func(n uint64) []byte {
		h := make([]byte, 32)
		h[0], h[31] = 0xcc, byte(n)
		return h
	}
	return chain.Rows{Blocks: []chain.Block{{Number: n, Hash: hash(n), ParentHash: hash(n - 1),
		Timestamp: time.Unix(1_683_000_000+int64(n), 0), Miner: hash(n)[:20]}}}
}

// TestVerifyCommand: the table and its verdict, exit status 1 exactly when a check fails, the --json document's
// shape, and the flags refused at the edge.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	for n := uint64(10); n <= 14; n++ {
		b.Add(store.Message{Offset: int64(n - 10), Rows: chainedBlock(n)})
	}
	writeBatch(t, ctx, s.Pool(), b)

	out, _, err := runCLI(ctx, append([]string{"verify"}, dbArgs(cfg)...)...)
	if err != nil {
		t.Fatalf("verify of a whole chain: %v\n%s", err, out)
	}
	for _, want := range []string{"verified heights 10-14: 5 blocks stored", "missing_blocks", "OK: every check passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	if _, err := s.Pool().Exec(ctx, `UPDATE blocks SET parent_hash = '\x00' WHERE number = 12`); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(ctx, append([]string{"verify", "--to", "16"}, dbArgs(cfg)...)...)
	if !errors.Is(err, errVerifyFailed) {
		t.Fatalf("verify of a broken chain: %v, want errVerifyFailed\n%s", err, out)
	}
	for _, re := range []string{`(?m)^broken_parent\s+1\s+12$`, `(?m)^missing_blocks\s+2\s+15 16$`,
		`FAILED: 3 problems in 2 checks`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}

	out, _, err = runCLI(ctx, append([]string{"verify", "--json", "--from", "13"}, dbArgs(cfg)...)...)
	if err != nil {
		t.Fatalf("verify --from 13 (after the broken parent): %v\n%s", err, out)
	}
	var doc json.RawMessage
	decodeJSON(t, out, &doc)
	requireKeys(t, "verify --json", doc, "from", "to", "blocks", "empty", "ok", "took_seconds", "checks")
	var rep verifyJSON
	decodeJSON(t, out, &rep)
	if !rep.OK || rep.From != 13 || rep.To != 14 || rep.Blocks != 2 || len(rep.Checks) != 13 {
		t.Fatalf("verify --json: %+v", rep)
	}

	for _, args := range [][]string{{"--from", "9", "--to", "5"}, {"--chunk", "0"}, {"--rpc-batch-size", "0"}, {"--from", "-1"}} {
		if _, _, err := runCLI(ctx, append(append([]string{"verify"}, args...), dbArgs(cfg)...)...); err == nil ||
			errors.Is(err, errVerifyFailed) {
			t.Errorf("verify %v: %v, want a flag error", args, err)
		}
	}
}
