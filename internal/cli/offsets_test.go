package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

// TestOffsetsListAndSetResolveAnAnomaly: a stored offset above the log's end (a recreated topic) is reported
// by offsets list and status (exit 1), and offsets set --to earliest moves it, recorded with who and why.
func TestOffsetsListAndSetResolveAnAnomaly(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"logs": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var recs []localkafka.Record
	for i := range 10 {
		recs = append(recs, localkafka.Record{Topic: "logs", Value: []byte(fmt.Sprint(i))})
	}
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOffset(ctx, s.Pool(), store.OffsetChange{Group: "g", Topic: "logs", To: 1000, By: "old life"}); err != nil {
		t.Fatal(err)
	}

	list := append([]string{"offsets", "list", "--group", "g", "--brokers", broker.Addr()}, dbArgs(cfg)...)
	out, _, err := runCLI(ctx, list...)
	if err == nil || !strings.Contains(out, "log_regressed") || !strings.Contains(err.Error(), "outside their log") {
		t.Fatalf("offsets list: err %v\n%s", err, out)
	}
	status := append([]string{"status", "--group", "g", "--brokers", broker.Addr(), "--json"}, dbArgs(cfg)...)
	out, _, err = runCLI(ctx, status...)
	var doc statusJSON
	decodeJSON(t, out, &doc)
	p := doc.Partitions[0]
	if err == nil || p.OffsetState == nil || *p.OffsetState != "log_regressed" || *p.Lag != -990 || *p.LogStart != 0 {
		t.Fatalf("status: err %v, partition %+v", err, p)
	}

	if _, _, err := runCLI(ctx, append([]string{"offsets", "set", "--group", "g", "--topic", "logs", "--partition", "0",
		"--to", "earliest"}, dbArgs(cfg)...)...); err == nil || !strings.Contains(err.Error(), "needs --brokers") {
		t.Fatalf("--to earliest without --brokers: %v", err)
	}
	set := append([]string{"offsets", "set", "--group", "g", "--topic", "logs", "--partition", "0", "--to", "earliest",
		"--brokers", broker.Addr(), "--reason", "topic recreated"}, dbArgs(cfg)...)
	out, _, err = runCLI(ctx, set...)
	if err != nil || !strings.Contains(out, "next offset set to 0 (it was at 1000)") {
		t.Fatalf("offsets set: %v\n%s", err, out)
	}
	next, err := store.NextOffsets(ctx, s.Pool(), "g", "logs", []int32{0})
	if err != nil || next[0] != 0 {
		t.Fatalf("stored %v (%v), want 0", next, err)
	}
	changes, err := store.ListOffsetChanges(ctx, s.Pool(), "g", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].From == nil || *changes[0].From != 1000 || changes[0].To != 0 ||
		changes[0].Reason != "topic recreated" || changes[0].By == "" {
		t.Fatalf("changes %+v", changes)
	}
	out, _, err = runCLI(ctx, list...)
	if err != nil || !strings.Contains(out, " ok ") || !strings.Contains(out, "topic recreated") {
		t.Fatalf("offsets list after the fix: %v\n%s", err, out)
	}
}
