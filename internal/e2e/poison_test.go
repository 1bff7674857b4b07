package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
)

// mutateBundle decodes a bundle, lets fn change it, and encodes it again.
func mutateBundle(t *testing.T, bundle []byte, fn func(b map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(bundle)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPoisonMessagesGoToDeadLetters puts every kind of bad message between good ones: each bad one lands in
// dead_letters with its reason, in the same transactions as the good ones, and every good one is stored.
func TestPoisonMessagesGoToDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key483920, good483920, key17173049, good17173049 := twoBundles(t)
	block := func(m map[string]any) map[string]any { return m["block"].(map[string]any) }
	type msg struct {
		name, reason string
		value        []byte
	}
	keys := map[string]string{"empty": "not-a-height"} // the others carry block 483920's key
	poison := []msg{
		{"invalid JSON", "invalid_json", []byte(`{"block": {"number": "0x1"`)},
		{"wrong type", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["gasUsed"] = json.Number("143706") })},
		{"bad hex", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["hash"] = "0x" + strings.Repeat("zz", 32) })},
		{"300-bit integer", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["difficulty"] = "0x" + strings.Repeat("f", 75) })},
		{"receipts do not match", "receipts_mismatch", mutateBundle(t, good483920, func(m map[string]any) {
			rs := m["receipts"].([]any)
			m["receipts"] = rs[:len(rs)-1]
		})},
		// With a height as its key, no value is a tombstone (TestTombstoneRemovesItsHeight); without, poison.
		{"empty", "empty", nil},
		{"5 MB", "bad_field", []byte(`{"block": "` + strings.Repeat("x", 5<<20) + `", "receipts": []}`)},
	}
	var recs []localkafka.Record
	recs = append(recs, localkafka.Record{Topic: "bundles", Key: key483920, Value: good483920})
	for _, p := range poison {
		key := key483920
		if k, ok := keys[p.name]; ok {
			key = []byte(k)
		}
		recs = append(recs, localkafka.Record{Topic: "bundles", Key: key, Value: p.value})
	}
	recs = append(recs, localkafka.Record{Topic: "bundles", Key: key17173049, Value: good17173049})

	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"bundles": 1})
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	p := start(t, runArgs(cfg, b.Addr(), "poison", "bundles:bundle")...)
	waitCaughtUp(t, s, b, "poison", 60*time.Second, "bundles")
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}

	rows, err := s.Pool().Query(ctx, `SELECT "offset", reason, error, coalesce(length(value), 0) FROM dead_letters ORDER BY "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	type dl struct {
		offset int64
		reason string
		err    string
		size   int
	}
	var got []dl
	for rows.Next() {
		var d dl
		if err := rows.Scan(&d.offset, &d.reason, &d.err, &d.size); err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	if len(got) != len(poison) {
		t.Fatalf("dead letters = %+v, want %d", got, len(poison))
	}
	for i, p := range poison {
		d := got[i]
		if d.offset != int64(i+1) || d.reason != p.reason || d.err == "" || d.size != len(p.value) {
			t.Errorf("%s: dead letter %+v, want offset %d reason %s size %d", p.name, d, i+1, p.reason, len(p.value))
		}
		t.Logf("%s → %s: %.120s", p.name, d.reason, d.err)
	}
	for _, n := range []uint64{fixtures.Block483920, fixtures.Block17173049} {
		r, err := pgtest.ReadRows(ctx, s.Pool(), n, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Blocks) != 1 || len(r.Transactions) == 0 {
			t.Errorf("block %d not stored: %d blocks, %d transactions", n, len(r.Blocks), len(r.Transactions))
		}
	}
	for _, line := range p.logLines() {
		if strings.Contains(line, "dead_letters") && !strings.Contains(line, `"offset"`) {
			t.Errorf("dead letter logged without its offset: %s", line)
		}
	}
}

// TestTombstoneRemovesItsHeight: a bundle topic's message with a height as its key and no value (what a
// follower publishes when the chain became shorter) removes every row of that height from every table, in
// the batch's transaction, and leaves the other heights alone; a later bundle for the height stores it again.
func TestTombstoneRemovesItsHeight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key483920, good483920, key17173049, good17173049 := twoBundles(t)
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"bundles": 2})
	// Both heights on one partition, as a keyed producer puts them; stored first, so that the tombstone has
	// committed rows to remove (in one batch with them, it would only drop them from the batch).
	recs := []localkafka.Record{
		{Topic: "bundles", Partition: 0, Key: key483920, Value: good483920},
		{Topic: "bundles", Partition: 0, Key: key17173049, Value: good17173049},
	}
	if err := b.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	p := start(t, runArgs(cfg, b.Addr(), "tombstone", "bundles:bundle")...)
	waitCaughtUp(t, s, b, "tombstone", 60*time.Second, "bundles")
	stored := func(n uint64) int {
		r, err := pgtest.ReadRows(ctx, s.Pool(), n, n)
		if err != nil {
			t.Fatal(err)
		}
		return r.Len()
	}
	if n := stored(fixtures.Block17173049); n == 0 {
		t.Fatal("height 17173049 was not stored")
	}
	if err := b.Produce(ctx, []localkafka.Record{{Topic: "bundles", Partition: 0, Key: key17173049, Value: nil}}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, "tombstone", 60*time.Second, "bundles")
	if n := stored(fixtures.Block17173049); n != 0 {
		t.Fatalf("%d rows of the tombstoned height %d are left", n, fixtures.Block17173049)
	}
	if n := stored(fixtures.Block483920); n == 0 {
		t.Fatalf("the tombstone removed height %d too", fixtures.Block483920)
	}
	var dead int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("%d dead letters (%v): a tombstone is no poison", dead, err)
	}
	// The chain grew back: the height is stored again, every kind of row.
	if err := b.Produce(ctx, []localkafka.Record{{Topic: "bundles", Partition: 0, Key: key17173049, Value: good17173049}}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, b, "tombstone", 60*time.Second, "bundles")
	r, err := pgtest.ReadRows(ctx, s.Pool(), fixtures.Block17173049, fixtures.Block17173049)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Blocks) != 1 || len(r.Transactions) != 116 || len(r.Logs) != 271 || len(r.Events) == 0 || len(r.TokenTransfers) != 114 {
		t.Fatalf("height %d after it came back: %d blocks, %d transactions, %d logs, %d events, %d transfers",
			fixtures.Block17173049, len(r.Blocks), len(r.Transactions), len(r.Logs), len(r.Events), len(r.TokenTransfers))
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// twoBundles are the keys and values of the bundles of mainnet blocks 483920 and 17173049.
func twoBundles(t *testing.T) (key483920, bundle483920, key17173049, bundle17173049 []byte) {
	t.Helper()
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	if key483920, bundle483920, err = fixtures.Bundle483920(root); err != nil {
		t.Fatal(err)
	}
	if key17173049, bundle17173049, err = fixtures.Bundle17173049(root); err != nil {
		t.Fatal(err)
	}
	return key483920, bundle483920, key17173049, bundle17173049
}
