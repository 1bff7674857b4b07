package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	neturl "net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// The fault tests: the real binary against the real Postgres and an in-process broker, with the faults a
// production deployment meets made for real (a TCP proxy that loses a COMMIT's reply or black-holes the path,
// a role switched to read-only, a tiny statement timeout, a recreated topic, retention past the stored
// offset, a dropped table). Each ends exact: the stored contents equal an uninterrupted reference. Each takes
// seconds, so they all run in `make test`.

// exitCode is the process's exit status, or -1 while it runs or when it was killed by a signal.
func (p *proc) exitCode() int {
	select {
	case <-p.done:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return ee.ExitCode()
		}
		if p.err == nil {
			return 0
		}
	default:
	}
	return -1
}

// logged reports whether some log line contains substr.
func (p *proc) logged(substr string) bool {
	for _, l := range p.logLines() {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// withURL is cfg with its database URL changed: through a proxy, or as another role.
func withURL(cfg store.Config, url string) store.Config {
	cfg.DatabaseURL = url
	return cfg
}

// urlParam adds a libpq parameter to a URL.
func urlParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return url + "&" + kv
	}
	return url + "?" + kv
}

func requireNoDeadLetters(t *testing.T, s *store.Store) {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d valid messages were stored in dead_letters", n)
	}
}

// TestFaultCommitReplyLost: a TCP proxy forwards three COMMITs to Postgres, which commits them, and cuts the
// connection before each reply reaches chainsink. Each batch is retried, finds its own commit (the offset at
// its end) and goes on: no "fenced" alarm or metric, /readyz ready, every row once.
func TestFaultCommitReplyLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 1600)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	proxy := pgtest.StartProxy(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	proxy.CutAfterCommit(3)
	// The batches' COMMITs are the ones to cut: partition creation, which has COMMITs of its own, is off.
	p := start(t, append(runArgs(withURL(cfg, proxy.URL(t, cfg.DatabaseURL)), b.Addr(), "lostcommit",
		crashTopic+":ethereum-etl"), "--batch-max-rows", "100", "--metrics-addr", "127.0.0.1:0", "--partition-blocks", "-1")...)
	addr := p.metricsAddr(t)
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, "lostcommit", 120*time.Second, crashTopic)
	if proxy.Cuts() != 3 {
		t.Fatalf("the proxy cut %d COMMIT replies, want 3", proxy.Cuts())
	}
	p.waitLog(t, "only the reply to its COMMIT was lost", 10*time.Second)
	if p.logged("batch fenced") {
		t.Error("a lost COMMIT reply raised the zombie alarm (batch fenced)")
	}
	if m := scrape(t, "http://"+addr+"/metrics"); m["chainsink_fenced_batches_total"] != 0 {
		t.Errorf("chainsink_fenced_batches_total = %v, want 0", m["chainsink_fenced_batches_total"])
	}
	if code := httpStatus(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after the retries, want 200", code)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireNoDeadLetters(t, s)
	requireSameContents(t, cfg, want)
}

// TestFaultBlackholedPath: the path to Postgres stops forwarding without closing anything, mid-stream, and is
// restored. chainsink gives up the silent connections after its response timeout (statement_timeout 2s here,
// so 3s), retries, /readyz turns unready, and once the path is back it catches up exactly.
func TestFaultBlackholedPath(t *testing.T) {
	t.Parallel()
	_, cfg := migratedStore(t)
	proxy := pgtest.StartProxy(t) // closing it when the test ends also ends a black hole left by a failure
	midStreamFault(t, cfg, withURL(cfg, urlParam(proxy.URL(t, cfg.DatabaseURL), "statement_timeout=2000")), "blackhole",
		"retrying the batch", func() { proxy.Blackhole(true) }, func() { proxy.Blackhole(false) })
}

// midStreamFault runs `chainsink run` as cfgRun on half the input, caught up; then breaks Postgres with fault,
// produces the rest, waits for logLine and for /readyz to fail (--stuck-after 1s), heals, and requires the
// catch-up, readiness and contents equal to an uninterrupted reference. cfg reads the results.
func midStreamFault(t *testing.T, cfg, cfgRun store.Config, group, logLine string, fault, heal func()) {
	t.Helper()
	ctx := context.Background()
	recs := crashWorkload(t, 2400)
	want := reference(t, recs)
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := newBroker(t, map[string]int32{crashTopic: 4})
	p := start(t, append(runArgs(cfgRun, b.Addr(), group, crashTopic+":ethereum-etl"),
		"--batch-max-rows", "100", "--metrics-addr", "127.0.0.1:0", "--stuck-after", "1s")...)
	readyz := "http://" + p.metricsAddr(t) + "/readyz"
	half := len(recs) / 2
	if err := b.Produce(ctx, recs[:half]); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, group, 60*time.Second, crashTopic)
	fault()
	if err := b.Produce(ctx, recs[half:]); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, logLine, 60*time.Second)
	waitFor(t, 30*time.Second, "/readyz to fail during the fault", func() (bool, error) {
		return httpStatus(t, readyz) == 503, nil
	})
	heal()
	waitCaughtUp(t, s, b, group, 120*time.Second, crashTopic)
	waitFor(t, 30*time.Second, "/readyz to turn ready again", func() (bool, error) {
		return httpStatus(t, readyz) == 200, nil
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireNoDeadLetters(t, s)
	requireSameContents(t, cfg, want)
}

// role creates a login role that may use cfg's schema, and drops it when the test ends. The role's settings
// (ALTER ROLE … SET) apply to its new sessions only, as a server's do when a failover changes what it is.
func role(t *testing.T, s *store.Store, cfg store.Config) (name, url string) {
	t.Helper()
	ctx := context.Background()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name = "chainsink_fault_" + hex.EncodeToString(rnd[:])
	ident, schema := pgx.Identifier{name}.Sanitize(), pgx.Identifier{cfg.Schema}.Sanitize()
	for _, q := range []string{
		`CREATE ROLE ` + ident + ` LOGIN`,
		`GRANT USAGE, CREATE ON SCHEMA ` + schema + ` TO ` + ident,
		`GRANT ALL ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + ident,
		`GRANT ALL ON ALL SEQUENCES IN SCHEMA ` + schema + ` TO ` + ident,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = s.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name)
		_, _ = s.Pool().Exec(ctx, `DROP OWNED BY `+ident)
		_, _ = s.Pool().Exec(ctx, `DROP ROLE `+ident)
	})
	return name, urlAs(t, name)
}

// urlAs is the test server's URL with user as its user.
func urlAs(t *testing.T, user string) string {
	t.Helper()
	u, err := neturl.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.User(user)
	return u.String()
}

// TestFaultReadOnlyAndBack: Postgres turns read-only under chainsink (a demoted primary: its sessions end, new
// ones are read-only) and later writable again without ending anything. chainsink retries on 25006 with new
// connections each time; once the server is writable, its next connections write and it catches up exactly.
// (It used to reset its pool once per batch, so the read-only connections it opened then stayed for good.)
func TestFaultReadOnlyAndBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := migratedStore(t)
	name, url := role(t, s, cfg)
	ident := pgx.Identifier{name}.Sanitize()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.Pool().Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	midStreamFault(t, cfg, withURL(cfg, url), "readonly", "read-only transaction", func() {
		exec(`ALTER ROLE ` + ident + ` SET default_transaction_read_only = on`)
		exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name)
	}, func() {
		exec(`ALTER ROLE ` + ident + ` RESET default_transaction_read_only`)
	})
}

// TestFaultTinyStatementTimeout: statement_timeout is far below what a batch's COPY takes (a trigger makes
// each log row cost 1ms; a batch holds up to 1,000 rows; the timeout is 250ms). chainsink halves the batch's
// statements until they fit, under savepoints of the same transaction, and stores everything exactly once,
// with no dead letters.
func TestFaultTinyStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 1200)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	for _, q := range []string{
		`CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$`,
		`CREATE TRIGGER slow_logs BEFORE INSERT ON logs FOR EACH ROW EXECUTE FUNCTION slow_row()`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	b := newBroker(t, map[string]int32{crashTopic: 4})
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	url := urlParam(cfg.DatabaseURL, "statement_timeout=250")
	p := start(t, append(runArgs(withURL(cfg, url), b.Addr(), "timeout", crashTopic+":ethereum-etl"),
		"--batch-max-rows", "1000", "--batch-max-age", "2s")...)
	waitCaughtUp(t, s, b, "timeout", 180*time.Second, crashTopic)
	p.waitLog(t, "hit statement_timeout and were written in halves", 10*time.Second)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireNoDeadLetters(t, s)
	if _, err := s.Pool().Exec(ctx, `DROP TRIGGER slow_logs ON logs`); err != nil {
		t.Fatal(err)
	}
	requireSameContents(t, cfg, want)
}

// TestFaultTopicRecreated is the defect that was measured: the group's partitions have stored offsets, then
// the topic comes back empty (recreated, another cluster after a failover) and receives new messages. chainsink
// used to drop them all silently. Now it holds the partitions, says so (ERROR line, /readyz, status exit 1),
// stores nothing until the operator runs `chainsink offsets set --to earliest`, then stores the new messages.
func TestFaultTopicRecreated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := crashWorkload(t, 1200)
	// Fewer than the 388 per partition stored: a recreated log that has grown past the stored offset cannot be
	// told from the old one by its watermarks (see docs/operations.md).
	fresh := itemsWorkload(t, 200, 30_000_000)[:200]
	for i := range fresh {
		fresh[i].Partition = 0
	}
	want := reference(t, append(append([]localkafka.Record(nil), old...), fresh...))
	s, cfg := migratedStore(t)
	first := newBroker(t, map[string]int32{crashTopic: 4})
	if err := first.Produce(ctx, old); err != nil {
		t.Fatal(err)
	}
	args := func(brokers string) []string {
		return append(runArgs(cfg, brokers, "recreated", crashTopic+":ethereum-etl"), "--batch-max-rows", "200",
			"--metrics-addr", "127.0.0.1:0", "--offset-recheck", "200ms")
	}
	p := start(t, args(first.Addr())...)
	waitCaughtUp(t, s, first, "recreated", 60*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	before, err := storedTotal(s, "recreated")
	if err != nil {
		t.Fatal(err)
	}

	second := newBroker(t, map[string]int32{crashTopic: 4})
	if err := second.Produce(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	p = start(t, args(second.Addr())...)
	readyz := "http://" + p.metricsAddr(t) + "/readyz"
	p.waitLog(t, "offset anomaly: partition not consumed until resolved", 30*time.Second)
	waitFor(t, 10*time.Second, "/readyz to fail on the anomaly", func() (bool, error) {
		return httpStatus(t, readyz) == 503, nil
	})
	db := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	out, _, err := runCmd(t, append([]string{"status", "--group", "recreated", "--brokers", second.Addr()}, db...)...)
	if err == nil || !strings.Contains(out, "log_regressed") {
		t.Fatalf("status with a held partition: err %v\n%s", err, out)
	}
	if after, err := storedTotal(s, "recreated"); err != nil || after != before {
		t.Fatalf("stored offsets moved by themselves: %d → %d (%v)", before, after, err)
	}
	for part := range 4 {
		out, _, err := runCmd(t, append([]string{"offsets", "set", "--group", "recreated", "--topic", crashTopic,
			"--partition", fmt.Sprint(part), "--to", "earliest", "--brokers", second.Addr(), "--reason", "topic recreated"}, db...)...)
		if err != nil {
			t.Fatalf("offsets set partition %d: %v\n%s", part, err, out)
		}
	}
	waitCaughtUp(t, s, second, "recreated", 60*time.Second, crashTopic)
	waitFor(t, 30*time.Second, "/readyz to turn ready again", func() (bool, error) {
		return httpStatus(t, readyz) == 200, nil
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireSameContents(t, cfg, want)
}

// TestFaultRetentionPastStoredOffset: while chainsink is down, retention deletes messages of partition 0 that
// it never stored. It used to start at the stored offset and jump them without a word; now the partition is
// held as a retention gap until the operator decides, and `offsets set --to earliest` (recorded in
// offset_changes) resumes it from the log start. Everything but the deleted messages is stored.
func TestFaultRetentionPastStoredOffset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 1600)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	half := len(recs) / 2
	if err := b.Produce(ctx, recs[:half]); err != nil {
		t.Fatal(err)
	}
	args := append(runArgs(cfg, b.Addr(), "retention", crashTopic+":ethereum-etl"), "--batch-max-rows", "200",
		"--offset-recheck", "200ms")
	p := start(t, args...)
	waitCaughtUp(t, s, b, "retention", 60*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := b.Produce(ctx, recs[half:]); err != nil {
		t.Fatal(err)
	}
	stored, err := store.NextOffsets(ctx, s.Pool(), "retention", crashTopic, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	const lost = 25 // messages of partition 0 that retention takes before chainsink reads them
	if err := b.DeleteRecords(ctx, crashTopic, 0, stored[0]+lost); err != nil {
		t.Fatal(err)
	}
	var kept []localkafka.Record
	offset := map[int32]int64{}
	for _, r := range recs {
		if r.Partition != 0 || offset[0] < stored[0] || offset[0] >= stored[0]+lost {
			kept = append(kept, r)
		}
		offset[r.Partition]++
	}
	want := reference(t, kept)

	p = start(t, args...)
	p.waitLog(t, "retention_gap", 30*time.Second)
	if after, err := store.NextOffsets(ctx, s.Pool(), "retention", crashTopic, []int32{0}); err != nil || after[0] != stored[0] {
		t.Fatalf("partition 0's offset moved by itself: %d → %v (%v)", stored[0], after, err)
	}
	out, _, err := runCmd(t, "offsets", "set", "--group", "retention", "--topic", crashTopic, "--partition", "0",
		"--to", "earliest", "--brokers", b.Addr(), "--reason", "retention passed us", "--database-url", cfg.DatabaseURL,
		"--schema", cfg.Schema)
	if err != nil {
		t.Fatalf("offsets set: %v\n%s", err, out)
	}
	waitCaughtUp(t, s, b, "retention", 60*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	var from, to int64
	var reason string
	if err := s.Pool().QueryRow(ctx, `SELECT from_offset, to_offset, reason FROM offset_changes
		WHERE consumer_group = 'retention' AND topic = $1 AND partition = 0`, crashTopic).Scan(&from, &to, &reason); err != nil {
		t.Fatal(err)
	}
	if from != stored[0] || to != stored[0]+lost || reason != "retention passed us" {
		t.Fatalf("offset_changes = %d → %d (%q), want %d → %d", from, to, reason, stored[0], stored[0]+lost)
	}
	requireSameContents(t, cfg, want)
}

// TestFaultsThatStopWithExit1: errors a retry would meet again end the process with exit 1 and an ERROR
// line, rather than a retry loop that looks alive: a role that does not exist (authentication), a schema
// that was never migrated, and a table dropped under a running instance.
func TestFaultsThatStopWithExit1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 1})
	waitExit := func(t *testing.T, p *proc) {
		t.Helper()
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("chainsink still runs:\n%s", strings.Join(p.logLines(), "\n"))
		}
		if code := p.exitCode(); code != 1 {
			t.Fatalf("exit code %d, want 1:\n%s", code, strings.Join(p.logLines(), "\n"))
		}
	}
	t.Run("unknown role", func(t *testing.T) {
		bad := withURL(cfg, urlAs(t, "no_such_role_chainsink"))
		p := start(t, runArgs(bad, b.Addr(), "exit1", crashTopic+":ethereum-etl")...)
		waitExit(t, p)
		if !p.logged("no_such_role_chainsink") {
			t.Errorf("the error does not name the role:\n%s", strings.Join(p.logLines(), "\n"))
		}
	})
	t.Run("schema not migrated", func(t *testing.T) {
		bare := pgtest.EmptySchema(t)
		if _, err := s.Pool().Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{bare.Schema}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		p := start(t, runArgs(bare, b.Addr(), "exit1", crashTopic+":ethereum-etl")...)
		waitExit(t, p)
	})
	t.Run("table dropped while running", func(t *testing.T) {
		recs := crashWorkload(t, 400)
		for i := range recs {
			recs[i].Partition = 0
		}
		if err := b.Produce(ctx, recs[:200]); err != nil {
			t.Fatal(err)
		}
		p := start(t, runArgs(cfg, b.Addr(), "exit1", crashTopic+":ethereum-etl")...)
		waitCaughtUp(t, s, b, "exit1", 60*time.Second, crashTopic)
		if _, err := s.Pool().Exec(ctx, `DROP TABLE logs CASCADE`); err != nil {
			t.Fatal(err)
		}
		if err := b.Produce(ctx, recs[200:]); err != nil {
			t.Fatal(err)
		}
		waitExit(t, p)
		if !p.logged(`relation \"logs\" does not exist`) {
			t.Errorf("no log line names the missing table:\n%s", strings.Join(p.logLines(), "\n"))
		}
	})
}

// TestSameKeysFromTwoPartitions: ethereum-etl items carry no key, so a producer's re-export lands on other
// partitions, and bundles may travel unkeyed or be replayed by another group. Here every item is on two
// partitions at once, and two versions of one block alternate on two partitions, all backlogged so that the
// partitions' batches overlap. No valid message may become a dead letter, the items end exactly as written
// once, and the block is one version whole, never a mix of two.
func TestSameKeysFromTwoPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("items on two partitions", func(t *testing.T) {
		recs := crashWorkload(t, 1600)
		want := reference(t, recs)
		twice := make([]localkafka.Record, 0, 2*len(recs))
		for _, r := range recs {
			again := r
			again.Partition = (r.Partition + 1) % 4
			twice = append(twice, r, again)
		}
		s, cfg := migratedStore(t)
		b := newBroker(t, map[string]int32{crashTopic: 4})
		if err := b.Produce(ctx, twice); err != nil {
			t.Fatal(err)
		}
		p := start(t, append(runArgs(cfg, b.Addr(), "twice", crashTopic+":ethereum-etl"), "--batch-max-rows", "50")...)
		waitCaughtUp(t, s, b, "twice", 120*time.Second, crashTopic)
		if err := p.stop(t); err != nil {
			t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
		}
		requireNoDeadLetters(t, s)
		requireSameContents(t, cfg, want)
	})
	t.Run("two versions of a block", func(t *testing.T) {
		root, err := fixtures.Root()
		if err != nil {
			t.Fatal(err)
		}
		_, full, err := fixtures.Bundle17173049(root)
		if err != nil {
			t.Fatal(err)
		}
		// The other version: another hash and only the first ten transactions, with their receipts.
		otherHash := "0x" + strings.Repeat("ab", 32)
		short := mutateBundle(t, full, func(m map[string]any) {
			blk := m["block"].(map[string]any)
			blk["hash"] = otherHash
			blk["transactions"] = blk["transactions"].([]any)[:10]
			m["receipts"] = m["receipts"].([]any)[:10]
			for _, tx := range blk["transactions"].([]any) {
				tx.(map[string]any)["blockHash"] = otherHash
			}
			for _, r := range m["receipts"].([]any) {
				r.(map[string]any)["blockHash"] = otherHash
				for _, l := range r.(map[string]any)["logs"].([]any) {
					l.(map[string]any)["blockHash"] = otherHash
				}
			}
		})
		var recs []localkafka.Record
		for range 20 {
			recs = append(recs, localkafka.Record{Topic: "bundles", Partition: 0, Value: full},
				localkafka.Record{Topic: "bundles", Partition: 1, Value: short})
		}
		s, cfg := migratedStore(t)
		b := newBroker(t, map[string]int32{"bundles": 2})
		if err := b.Produce(ctx, recs); err != nil {
			t.Fatal(err)
		}
		p := start(t, append(runArgs(cfg, b.Addr(), "versions", "bundles:bundle"), "--batch-max-rows", "300")...)
		waitCaughtUp(t, s, b, "versions", 120*time.Second, "bundles")
		if err := p.stop(t); err != nil {
			t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
		}
		requireNoDeadLetters(t, s)
		var blocks, txs, mixedTxs, logs, mixedLogs int
		var hash []byte
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), (array_agg(hash))[1] FROM blocks`).Scan(&blocks, &hash); err != nil {
			t.Fatal(err)
		}
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE t.block_hash <> b.hash)
			FROM transactions t JOIN blocks b ON b.number = t.block_number`).Scan(&txs, &mixedTxs); err != nil {
			t.Fatal(err)
		}
		// A log of the other version has no transaction of this one with its hash at its index.
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE t.hash IS NULL)
			FROM logs l LEFT JOIN transactions t ON t.block_number = l.block_number
				AND t.transaction_index = l.transaction_index AND t.hash = l.transaction_hash`).Scan(&logs, &mixedLogs); err != nil {
			t.Fatal(err)
		}
		wantTxs := 116
		if fmt.Sprintf("0x%x", hash) == otherHash {
			wantTxs = 10
		}
		if blocks != 1 || txs != wantTxs || mixedTxs != 0 || mixedLogs != 0 {
			t.Fatalf("stored: %d blocks (hash %x), %d transactions (%d of another version), %d logs (%d of another version); want one version whole (%d transactions)",
				blocks, hash, txs, mixedTxs, logs, mixedLogs, wantTxs)
		}
		t.Logf("the stored version: %d transactions, %d logs", txs, logs)
	})
}

// TestKafkaCommittedOffsetsAreNeverAStart: offsets committed in Kafka for the group (by an earlier consumer,
// kafka-consumer-groups --reset-offsets) must not decide where chainsink starts: a partition Postgres knows
// starts at its stored offset, one it has never seen at auto.offset.reset (earliest), whatever Kafka says.
func TestKafkaCommittedOffsetsAreNeverAStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 800)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// Kafka says the group has read everything on partitions 0 and 1; Postgres knows partition 1 only, at 0.
	hw := b.HighWatermarks(crashTopic)
	if err := b.CommitGroupOffsets(ctx, "kafkaoffsets", crashTopic, map[int32]int64{0: hw[0], 1: hw[1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "kafkaoffsets", Topic: crashTopic,
		Partition: 1, To: 0, By: "test"}); err != nil {
		t.Fatal(err)
	}
	p := start(t, runArgs(cfg, b.Addr(), "kafkaoffsets", crashTopic+":ethereum-etl")...)
	waitCaughtUp(t, s, b, "kafkaoffsets", 60*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	requireSameContents(t, cfg, want)
}

// TestSIGTERMCommitsWhatItHolds: SIGTERM in the middle of a backlog, not after catch-up. The process flushes
// what its workers hold and exits 0 within --shutdown-timeout; the next run goes on from there, exactly.
func TestSIGTERMCommitsWhatItHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := crashWorkload(t, 6000)
	want := reference(t, recs)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{crashTopic: 4})
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// Small batches and queues, so that the backlog takes a while and a stop flushes only what is in hand.
	args := append(runArgs(cfg, b.Addr(), "sigterm", crashTopic+":ethereum-etl"), "--batch-max-rows", "20",
		"--queue-max-bytes", "32768", "--kafka-config", "queued.max.messages.kbytes=64", "--shutdown-timeout", "20s",
		"--log-level", "debug")
	p := start(t, args...)
	waitFor(t, 60*time.Second, "a first commit", func() (bool, error) {
		n, err := storedTotal(s, "sigterm")
		return n > 0, err
	})
	stopped := time.Now()
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	took := time.Since(stopped)
	n, err := storedTotal(s, "sigterm")
	if err != nil {
		t.Fatal(err)
	}
	if n >= int64(len(recs)) {
		// Then the test could not see what it claims; it must fail, not pass as skipped.
		t.Fatalf("the backlog was drained before SIGTERM landed (%d messages): nothing was in hand", n)
	}
	if took > 20*time.Second {
		t.Fatalf("exit took %v, above --shutdown-timeout", took)
	}
	// What was in hand is committed after the signal, not cancelled: batches commit between the signal's line
	// and the indexer's last one.
	flushed, signalled := 0, false
	for _, l := range p.logLines() {
		switch {
		case strings.Contains(l, "signal received; flushing and stopping"):
			signalled = true
		case signalled && strings.Contains(l, `"msg":"batch committed"`):
			flushed++
		}
	}
	if !signalled {
		t.Fatalf("no graceful-stop line:\n%s", strings.Join(p.logLines(), "\n"))
	}
	if flushed == 0 {
		t.Fatalf("no batch committed after SIGTERM: what the workers held was dropped\n%s", strings.Join(p.logLines(), "\n"))
	}
	t.Logf("SIGTERM with %d of %d messages stored, %d batches flushed after it; exit 0 after %v", n, len(recs),
		flushed, took.Round(time.Millisecond))
	p = start(t, args...)
	waitCaughtUp(t, s, b, "sigterm", 120*time.Second, crashTopic)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	requireNoDeadLetters(t, s)
	requireSameContents(t, cfg, want)
}

// TestReplayedDeadLettersAreStored: the runbook's "dead letters after a fix". A valid bundle sits in
// dead_letters (as an older decoder's refusal would have left it); `dead-letters replay --delete` republishes
// it, the running `chainsink run` stores it, and replaying the same message twice more stores it once.
func TestReplayedDeadLettersAreStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	key, bundle, err := fixtures.Bundle17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"bundles": 1})
	p := start(t, runArgs(cfg, b.Addr(), "replay", "bundles:bundle")...)
	p.waitLog(t, "partitions assigned", 30*time.Second)
	db := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	// refused stores the bundle as a dead letter, as an older decoder's refusal in another group would have.
	refused := func(offset int64) {
		t.Helper()
		bt := store.NewBatch(fmt.Sprintf("old-group-%d", offset), "bundles", 0, offset, chain.ReplaceBlocks)
		bt.Add(store.Message{Offset: offset, Key: key, Value: bundle,
			Failure: &chain.Failure{Reason: "bad_field", Err: errors.New("an older decoder's refusal")}})
		if _, err := store.WriteBatch(ctx, s.Pool(), bt); err != nil {
			t.Fatal(err)
		}
	}
	replay := func() {
		t.Helper()
		out, _, err := runCmd(t, append([]string{"dead-letters", "replay", "--brokers", b.Addr(), "--reason", "bad_field",
			"--delete"}, db...)...)
		if err != nil {
			t.Fatalf("dead-letters replay: %v\n%s", err, out)
		}
	}
	refused(1000)
	replay()
	waitCaughtUp(t, s, b, "replay", 60*time.Second, "bundles")
	refused(2000)
	refused(2001)
	replay()
	waitCaughtUp(t, s, b, "replay", 60*time.Second, "bundles")
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, strings.Join(p.logLines(), "\n"))
	}
	counts, err := store.CountRows(ctx, s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if counts["blocks"] != 1 || counts["transactions"] != 116 || counts["logs"] != 271 {
		t.Fatalf("after three replays of one bundle: %v, want it once (1 block, 116 transactions, 271 logs)", counts)
	}
	requireNoDeadLetters(t, s)
}
