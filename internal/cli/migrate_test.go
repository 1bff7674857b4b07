package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
)

// TestMigrateCommands walks the schema through every migrate subcommand that README.md and docs/operations.md
// name, and shows that `run` refuses a schema with a pending migration before it touches Kafka.
func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cfg := pgtest.EmptySchema(t)
	db := dbArgs(cfg)
	migrate := func(args ...string) string {
		t.Helper()
		out, _, err := runCLI(ctx, append(append([]string{"migrate"}, args...), db...)...)
		if err != nil {
			t.Fatalf("migrate %v: %v\n%s", args, err, out)
		}
		return out
	}
	version := regexp.MustCompile(`version (\d+) \(newest known (\d+)\)`)
	ver := func() (cur, latest string) {
		t.Helper()
		m := version.FindStringSubmatch(migrate("version"))
		if m == nil {
			t.Fatal("migrate version printed no version")
		}
		return m[1], m[2]
	}

	migrate("up-to", "1")
	if cur, latest := ver(); cur != "1" || latest == "1" {
		t.Fatalf("after up-to 1: version %s of %s", cur, latest)
	}
	status := migrate("status")
	if !regexp.MustCompile(`00001\s+applied`).MatchString(status) || !regexp.MustCompile(`00002\s+pending`).MatchString(status) {
		t.Fatalf("status after up-to 1:\n%s", status)
	}
	_, _, err := runCLI(ctx, append([]string{"run", "--brokers", "127.0.0.1:1", "--topics", "blocks:bundle"}, db...)...)
	if err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("run on a schema with pending migrations: %v", err)
	}

	migrate("up")
	cur, latest := ver()
	if cur != latest {
		t.Fatalf("after up: version %s of %s", cur, latest)
	}
	migrate("down")
	if c, _ := ver(); c == cur {
		t.Fatalf("down left the version at %s", c)
	}
	migrate("down-to", "0")
	if c, _ := ver(); c != "0" {
		t.Fatalf("after down-to 0: version %s", c)
	}
}
