package cli

import (
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// TestRetentionCommand: a dry run deletes nothing, a run keeps the newest heights and says what it deleted,
// and status then says where history starts; nonsense flags are refused before anything connects.
func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	for n := uint64(1); n <= 10; n++ {
		b.Add(store.Message{Offset: int64(n - 1), Rows: blockRows(n)})
	}
	writeBatch(t, ctx, s.Pool(), b)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(ctx, append(args, dbArgs(cfg)...)...)
		if err != nil {
			t.Fatalf("chainsink %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	if out := run("retention", "--keep-blocks", "3", "--dry-run"); !strings.Contains(out, "dry run: head 10, horizon 8; heights 1 to 7 would be deleted") {
		t.Errorf("dry run: %q", out)
	}
	if out := run("retention", "--keep-blocks", "3", "--chunk-blocks", "2"); !strings.Contains(out,
		"history kept from block 8 (head 10, 3 blocks); 7 rows deleted") || !strings.Contains(out, "blocks 7") {
		t.Errorf("retention: %q", out)
	}
	if out := run("status"); !strings.Contains(out, "history kept from block 8 (retention of 3 blocks") ||
		!strings.Contains(out, "oldest") {
		t.Errorf("status after retention:\n%s", out)
	}
	for _, bad := range [][]string{{"retention"}, {"retention", "--keep-blocks", "0"}, {"retention", "--keep-blocks", "5", "--chunk-blocks", "0"}} {
		if _, _, err := runCLI(ctx, append(bad, dbArgs(cfg)...)...); err == nil {
			t.Errorf("chainsink %s: no error", strings.Join(bad, " "))
		}
	}
}
