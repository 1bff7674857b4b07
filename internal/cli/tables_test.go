package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

const pingV1 = `[{"type":"event","name":"Ping","anonymous":false,"inputs":[
	{"name":"caller","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":false}]}]`

// pingV2 changes the event a table was generated from: value became indexed.
const pingV2 = `[{"type":"event","name":"Ping","anonymous":false,"inputs":[
	{"name":"caller","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":true}]}]`

// writeConfig writes a configuration file, and Ping.json into its abi_dir, and returns the file's path.
func writeConfig(t *testing.T, dir, ping, sets string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "abis"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "abis", "Ping.json"), []byte(ping), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "chainsink.yaml")
	if err := os.WriteFile(p, []byte("abi_dir: abis\ncontracts:\n"+sets), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// allBuiltIn is a set per built-in ABI with every event and every function: every generated DDL must run.
func allBuiltIn(t *testing.T) string {
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range reg.Names() {
		fmt.Fprintf(&b, "  - {name: %s, abi: %s, calls: [\"*\"]}\n", strings.ToLower(n), n)
	}
	return b.String()
}

func TestTablesPlanApplyStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	dir := t.TempDir()
	conf := writeConfig(t, dir, pingV1, "  - {name: ping, abi: Ping}\n"+allBuiltIn(t))
	args := append([]string{"--config", conf}, dbArgs(cfg)...)

	out, _, err := runCLI(ctx, append([]string{"tables", "plan"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	created := strings.Count(out, "CREATE TABLE ")
	if created < 100 || !strings.Contains(out, "CREATE TABLE ping_evt_ping (") ||
		!strings.Contains(out, fmt.Sprintf("-- %d table(s) to create, 0 to upgrade, 0 refused, 0 already applied, 0 recorded but not in the configuration", created)) {
		t.Fatalf("plan of %d tables:\n%.3000s", created, out)
	}

	// run refuses to start while tables are pending, before it joins a group.
	_, _, err = runCLI(ctx, append([]string{"run", "--topics", "blocks:bundle", "--brokers", "127.0.0.1:1"}, args...)...)
	if !errors.Is(err, store.ErrTablesNotApplied) || !strings.Contains(err.Error(), "ping_evt_ping") {
		t.Fatalf("run with pending tables: %v", err)
	}

	out, _, err = runCLI(ctx, append([]string{"tables", "apply"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count("\n"+out, "\ncreated "); n != created {
		t.Fatalf("apply created %d tables, plan had %d:\n%s", n, created, out)
	}
	var tables, comments int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(obj_description(c.oid, 'pg_class'))
		FROM typed_tables r JOIN pg_class c ON c.relname = r.table_name
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()`).Scan(&tables, &comments); err != nil {
		t.Fatal(err)
	}
	if tables != created || comments != created {
		t.Fatalf("%d recorded tables exist, %d with a comment; want %d", tables, comments, created)
	}
	out, _, err = runCLI(ctx, append([]string{"tables", "apply"}, args...)...)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	out, _, err = runCLI(ctx, append([]string{"tables", "status"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, " applied "); n != created {
		t.Fatalf("status shows %d applied of %d:\n%s", n, created, out)
	}

	// A new set adds its tables; the applied ones are left alone.
	conf = writeConfig(t, dir, pingV1, "  - {name: ping, abi: Ping}\n  - {name: ping2, abi: Ping}\n")
	args = append([]string{"--config", conf}, dbArgs(cfg)...)
	out, _, err = runCLI(ctx, append([]string{"tables", "apply"}, args...)...)
	if err != nil || strings.TrimSpace(out) != "created ping2_evt_ping (event Ping(address,uint256) of Ping, set ping2)" {
		t.Fatalf("apply of a new set: %v\n%s", err, out)
	}
	out, _, err = runCLI(ctx, append([]string{"tables", "status"}, args...)...)
	if err != nil || strings.Count(out, "not in config") != created-1 {
		t.Fatalf("status after the configuration dropped sets: %v\n%s", err, out)
	}

	// A changed ABI for an applied table is refused, and nothing else of the configuration is applied.
	conf = writeConfig(t, dir, pingV2, "  - {name: ping, abi: Ping}\n  - {name: ping3, abi: Ping}\n")
	args = append([]string{"--config", conf}, dbArgs(cfg)...)
	out, _, err = runCLI(ctx, append([]string{"tables", "plan"}, args...)...)
	if !errors.Is(err, store.ErrTablesChanged) || !strings.Contains(out, "-- ping_evt_ping: REFUSED") {
		t.Fatalf("plan with a changed ABI: %v\n%s", err, out)
	}
	_, _, err = runCLI(ctx, append([]string{"tables", "apply"}, args...)...)
	if !errors.Is(err, store.ErrTablesChanged) || !strings.Contains(err.Error(), "ping_evt_ping") {
		t.Fatalf("apply with a changed ABI: %v", err)
	}
	var ping3 *string
	if err := s.Pool().QueryRow(ctx, `SELECT to_regclass('ping3_evt_ping')::text`).Scan(&ping3); err != nil || ping3 != nil {
		t.Fatalf("the refused apply created ping3_evt_ping (%v, %v)", ping3, err)
	}
	_, _, err = runCLI(ctx, append([]string{"run", "--topics", "blocks:bundle", "--brokers", "127.0.0.1:1"}, args...)...)
	if !errors.Is(err, store.ErrTablesNotApplied) || !errors.Is(err, store.ErrTablesChanged) {
		t.Fatalf("run with a changed table: %v", err)
	}
}

func TestConfigMistakesStopEveryCommand(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	conf := writeConfig(t, dir, pingV1, "  - name: ping\n    abi: Ping\n    events: [Pong]\n")
	for _, cmd := range [][]string{
		{"tables", "plan"}, {"run", "--topics", "blocks:bundle"}, {"redecode", "--from", "1", "--to", "2"},
	} {
		_, _, err := runCLI(ctx, append(cmd, "--config", conf, "--database-url", "postgres://nobody@127.0.0.1:1/x")...)
		if err == nil || !strings.Contains(err.Error(), conf+`:5: set ping: ABI Ping has no event "Pong"`) {
			t.Errorf("%v: %v", cmd, err)
		}
	}
}
