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
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	key483920, good483920, err := fixtures.Bundle483920(root)
	if err != nil {
		t.Fatal(err)
	}
	key17173049, good17173049, err := fixtures.Bundle17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	block := func(m map[string]any) map[string]any { return m["block"].(map[string]any) }
	poison := []struct {
		name, reason string
		value        []byte
	}{
		{"invalid JSON", "invalid_json", []byte(`{"block": {"number": "0x1"`)},
		{"wrong type", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["gasUsed"] = json.Number("143706") })},
		{"bad hex", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["hash"] = "0x" + strings.Repeat("zz", 32) })},
		{"300-bit integer", "bad_field", mutateBundle(t, good483920, func(m map[string]any) { block(m)["difficulty"] = "0x" + strings.Repeat("f", 75) })},
		{"receipts do not match", "receipts_mismatch", mutateBundle(t, good483920, func(m map[string]any) {
			rs := m["receipts"].([]any)
			m["receipts"] = rs[:len(rs)-1]
		})},
		{"empty", "empty", nil},
		{"5 MB", "bad_field", []byte(`{"block": "` + strings.Repeat("x", 5<<20) + `", "receipts": []}`)},
	}
	var recs []localkafka.Record
	recs = append(recs, localkafka.Record{Topic: "bundles", Key: key483920, Value: good483920})
	for _, p := range poison {
		recs = append(recs, localkafka.Record{Topic: "bundles", Key: key483920, Value: p.value})
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
