package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
)

// TestBackfillRefusesWhatFilteredModeCannotDo: --sets names sets of a --config and needs one, a set it names
// must be in the file, and --traces cannot go with --config; each is refused before anything is fetched.
func TestBackfillRefusesWhatFilteredModeCannotDo(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, cfg := pgtest.Open(t)
	conf := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(conf, []byte("contracts:\n  - {name: weth, abi: WETH9, address: \"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2\", events: [Deposit]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := append([]string{"backfill", "--rpc", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1", "--topic", "t",
		"--from", "0", "--to", "5"}, dbArgs(cfg)...)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--sets", "weth"}, "--sets needs --config"},
		{[]string{"--config", conf, "--sets", "univ2"}, `has no contract set "univ2"`},
		{[]string{"--config", conf, "--traces"}, "--traces with --config"},
	} {
		_, stderr, err := runCLI(ctx, append(append([]string{}, base...), c.args...)...)
		if err == nil || !strings.Contains(err.Error()+stderr, c.want) {
			t.Errorf("backfill %v: %v\n%s\nwant an error saying %q", c.args, err, stderr, c.want)
		}
	}
}
