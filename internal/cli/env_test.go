package cli

import (
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// TestEnvironmentSetsFlags holds what README.md promises about configuration: every flag can be set as
// CHAINSINK_<FLAG>, the command line wins over it, --database-url falls back to DATABASE_URL (and
// CHAINSINK_DATABASE_URL wins over that), and list flags take comma-separated values. Not parallel: it sets
// the process environment.
func TestEnvironmentSetsFlags(t *testing.T) {
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "envgroup", Topic: "envtopic", To: 7, By: "test"}); err != nil {
		t.Fatal(err)
	}
	unreachable := "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	list := []string{"offsets", "list", "--group", "envgroup"}

	t.Setenv("DATABASE_URL", cfg.DatabaseURL)
	t.Setenv("CHAINSINK_SCHEMA", cfg.Schema)
	out, _, err := runCLI(ctx, list...)
	if err != nil || !strings.Contains(out, "envtopic") {
		t.Fatalf("DATABASE_URL and CHAINSINK_SCHEMA: err %v\n%s", err, out)
	}

	t.Setenv("CHAINSINK_DATABASE_URL", unreachable)
	if _, _, err := runCLI(ctx, list...); err == nil {
		t.Fatal("CHAINSINK_DATABASE_URL (unreachable) did not win over DATABASE_URL")
	}
	out, _, err = runCLI(ctx, append(list, "--database-url", cfg.DatabaseURL)...)
	if err != nil || !strings.Contains(out, "envtopic") {
		t.Fatalf("--database-url did not win over CHAINSINK_DATABASE_URL: err %v\n%s", err, out)
	}
	t.Setenv("CHAINSINK_SCHEMA", "no_such_schema")
	if out, _, err := runCLI(ctx, append(list, "--database-url", cfg.DatabaseURL)...); err == nil && strings.Contains(out, "envtopic") {
		t.Fatalf("CHAINSINK_SCHEMA=no_such_schema was ignored:\n%s", out)
	}

	// A list in the environment is split at commas: the same topic twice is refused before connecting.
	t.Setenv("CHAINSINK_TOPICS", "blocks:bundle, blocks:bundle")
	t.Setenv("CHAINSINK_SCHEMA", cfg.Schema)
	_, _, err = runCLI(ctx, "run", "--brokers", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), `topic "blocks" is listed twice`) {
		t.Fatalf("CHAINSINK_TOPICS with two entries: %v", err)
	}
}
