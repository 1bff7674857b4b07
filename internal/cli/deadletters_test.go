package cli

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// deadMessage is a message that became a dead letter, with a key and value that name it.
func deadMessage(offset int64, topic, reason string) store.Message {
	return store.Message{Offset: offset, Key: []byte(fmt.Sprintf("key-%s-%d", topic, offset)),
		Value:   []byte(fmt.Sprintf("value-%s-%d", topic, offset)),
		Failure: &chain.Failure{Reason: reason, Err: fmt.Errorf("decode %s/%d: %s\nsecond line", topic, offset, reason)}}
}

// consumeRecords reads n records of topic/partition from offset on.
func consumeRecords(t *testing.T, ctx context.Context, addr, topic string, partition int32, from int64, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s/%d: %v", len(out), n, topic, partition, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, partition, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func listJSON(t *testing.T, ctx context.Context, cfg store.Config, args ...string) deadLettersJSON {
	t.Helper()
	out, stderr, err := runCLI(ctx, append(append([]string{"dead-letters", "list", "--json"}, args...), dbArgs(cfg)...)...)
	if err != nil {
		t.Fatalf("list %v: %v\n%s", args, err, stderr)
	}
	var doc deadLettersJSON
	decodeJSON(t, out, &doc)
	return doc
}

func idsOf(doc deadLettersJSON) []int64 {
	var out []int64
	for _, d := range doc.DeadLetters {
		out = append(out, d.ID)
	}
	return out
}

func TestDeadLettersListAndReplay(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"logs": 1, "blocks": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	// logs/0: offsets 0..3, three bad_field and one invalid_json; blocks/0: one bad_field.
	b := store.NewBatch("g", "logs", 0, 0, chain.ReplaceRows)
	for i, r := range []string{"bad_field", "invalid_json", "bad_field", "bad_field"} {
		b.Add(deadMessage(int64(i), "logs", r))
	}
	writeBatch(t, ctx, s.Pool(), b)
	b = store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(deadMessage(0, "blocks", "bad_field"))
	writeBatch(t, ctx, s.Pool(), b)
	// The partition already holds 10 messages, so the replayed ones are appended from offset 10.
	var recs []localkafka.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, localkafka.Record{Topic: "logs", Partition: 0, Value: []byte("earlier")})
	}
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}

	// list
	all := listJSON(t, ctx, cfg)
	if all.Total != 5 || len(all.DeadLetters) != 5 {
		t.Fatalf("list: %+v", all)
	}
	first := all.DeadLetters[0]
	if first.Group != "g" || first.Topic != "logs" || first.Partition != 0 || first.Offset != 0 || first.Reason != "bad_field" ||
		first.Error != "decode logs/0: bad_field\nsecond line" || first.KeySize == nil || *first.KeySize != len("key-logs-0") ||
		first.ValueSize == nil || *first.ValueSize != len("value-logs-0") || first.CreatedAt.IsZero() {
		t.Fatalf("first dead letter = %+v", first)
	}
	bad := listJSON(t, ctx, cfg, "--reason", "bad_field", "--topic", "logs")
	logIDs := idsOf(bad)
	if len(logIDs) != 3 {
		t.Fatalf("bad_field of logs: %v", logIDs)
	}
	if limited := listJSON(t, ctx, cfg, "--limit", "2"); limited.Total != 5 || len(limited.DeadLetters) != 2 {
		t.Fatalf("--limit 2: total %d, %d shown", limited.Total, len(limited.DeadLetters))
	}
	text, _, err := runCLI(ctx, append([]string{"dead-letters", "list", "--limit", "2"}, dbArgs(cfg)...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`ID\s+GROUP\s+TOPIC\s+PARTITION\s+OFFSET\s+REASON\s+CREATED AT\s+VALUE SIZE\s+ERROR`,
		`(?m)^\d+\s+g\s+logs\s+0\s+0\s+bad_field\s+\d{4}-\S+\s+12\s+decode logs/0: bad_field second line$`,
		`(?m)^2 of 5 shown`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("list output does not match %s:\n%s", re, text)
		}
	}

	// replay --reason bad_field --topic logs --delete: three messages, in order, at offsets 10..12 of logs/0.
	args := append([]string{"dead-letters", "replay", "--brokers", broker.Addr(), "--reason", "bad_field", "--topic", "logs",
		"--delete"}, dbArgs(cfg)...)
	out, stderr, err := runCLI(ctx, args...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "replayed 3 dead letters to their original topics and partitions: 3 delivered, 0 failed; 3 rows deleted") {
		t.Errorf("replay summary: %s", out)
	}
	if hw := broker.HighWatermarks("logs"); hw[0] != 13 {
		t.Fatalf("logs high watermark = %d, want 13", hw[0])
	}
	got := consumeRecords(t, ctx, broker.Addr(), "logs", 0, 10, 3)
	for i, off := range []int{0, 2, 3} {
		if string(got[i].Key) != fmt.Sprintf("key-logs-%d", off) || string(got[i].Value) != fmt.Sprintf("value-logs-%d", off) {
			t.Errorf("replayed record %d = %q/%q, want the dead letter of offset %d", i, got[i].Key, got[i].Value, off)
		}
	}
	if hw := broker.HighWatermarks("blocks"); hw[0] != 0 {
		t.Errorf("blocks got %d messages; its dead letter was not selected", hw[0])
	}
	rest := listJSON(t, ctx, cfg)
	wantRest := slices.DeleteFunc(idsOf(all), func(id int64) bool { return slices.Contains(logIDs, id) })
	if !slices.Equal(idsOf(rest), wantRest) {
		t.Fatalf("left after replay: %v, want %v", idsOf(rest), wantRest)
	}

	// replay --id to another topic, without --delete: published there, kept here.
	blocksID := rest.DeadLetters[1].ID
	if rest.DeadLetters[1].Topic != "blocks" {
		t.Fatalf("fixture order: %+v", rest.DeadLetters)
	}
	args = append([]string{"dead-letters", "replay", "--brokers", broker.Addr(), "--id", fmt.Sprint(blocksID),
		"--to-topic", "retry"}, dbArgs(cfg)...)
	if out, stderr, err := runCLI(ctx, args...); err != nil || !strings.Contains(out, "replayed 1 dead letters to topic retry: 1 delivered, 0 failed; rows kept (no --delete)") {
		t.Fatalf("replay --id: %v\n%s\n%s", err, out, stderr)
	}
	if r := consumeRecords(t, ctx, broker.Addr(), "retry", 0, 0, 1); string(r[0].Value) != "value-blocks-0" || string(r[0].Key) != "key-blocks-0" {
		t.Fatalf("retry topic got %q/%q", r[0].Key, r[0].Value)
	}
	if n := len(listJSON(t, ctx, cfg).DeadLetters); n != 2 {
		t.Fatalf("%d dead letters after a replay without --delete, want 2", n)
	}
}

// A message Kafka does not accept keeps its row, even with --delete; the others are delivered and deleted.
func TestDeadLettersReplayKeepsWhatWasNotDelivered(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"logs": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	// Partition 5 of logs does not exist (the topic was recreated with one partition, say).
	for _, p := range []int32{0, 5} {
		b := store.NewBatch("g", "logs", p, 0, chain.ReplaceRows)
		b.Add(deadMessage(0, "logs", "rejected_by_postgres"))
		b.Add(deadMessage(1, "logs", "rejected_by_postgres"))
		writeBatch(t, ctx, s.Pool(), b)
	}
	before := listJSON(t, ctx, cfg)

	// An id that does not exist stops the replay before anything is published.
	missing := append([]string{"dead-letters", "replay", "--brokers", broker.Addr(), "--id", fmt.Sprint(before.DeadLetters[0].ID),
		"--id", "999999", "--delete"}, dbArgs(cfg)...)
	if _, _, err := runCLI(ctx, missing...); err == nil || !strings.Contains(err.Error(), "no dead letter 999999: nothing was replayed") {
		t.Fatalf("missing id: err = %v", err)
	}
	if hw := broker.HighWatermarks("logs"); hw[0] != 0 {
		t.Fatalf("a replay with a missing id published %d messages", hw[0])
	}

	args := append([]string{"dead-letters", "replay", "--brokers", broker.Addr(), "--reason", "rejected_by_postgres",
		"--delete"}, dbArgs(cfg)...)
	out, stderr, err := runCLI(ctx, args...)
	if err == nil || !strings.Contains(err.Error(), "2 of 4 dead letters were not delivered") {
		t.Fatalf("replay: err = %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(out, "replayed 4 dead letters to their original topics and partitions: 2 delivered, 2 failed; 2 rows deleted") || strings.Count(out, "not delivered (kept)") != 2 {
		t.Errorf("replay output: %s", out)
	}
	if hw := broker.HighWatermarks("logs"); hw[0] != 2 {
		t.Errorf("logs/0 high watermark = %d, want 2", hw[0])
	}
	after := listJSON(t, ctx, cfg)
	var want []int64
	for _, d := range before.DeadLetters {
		if d.Partition == 5 {
			want = append(want, d.ID)
		}
	}
	if !slices.Equal(idsOf(after), want) {
		t.Fatalf("kept %v, want the partition 5 rows %v", idsOf(after), want)
	}
}

func TestDeadLettersReplayValidatesFlags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cfg := pgtest.EmptySchema(t) // never migrated: every case must fail before touching it
	db := dbArgs(cfg)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--reason", "x"}, `"brokers"`},
		{[]string{"--brokers", "b:9092"}, "[id reason topic]"},
		{[]string{"--brokers", "b:9092", "--id", "1", "--reason", "x"}, "[id reason]"},
		{[]string{"--brokers", "b:9092", "--id", "1", "--topic", "x"}, "[id topic]"},
		{[]string{"--brokers", "b:9092", "--reason", ""}, "select dead letters"},
		{[]string{"--brokers", "b:9092", "--id", "0"}, "ids start at 1"},
		{[]string{"--brokers", "b:9092", "--id", "x"}, "invalid argument"},
		{[]string{"--brokers", "b:9092", "--reason", "x", "--kafka-config", "enable.idempotence=false"}, "enable.idempotence=true"},
	} {
		_, _, err := runCLI(ctx, append(append([]string{"dead-letters", "replay"}, c.args...), db...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %s", c.args, err, c.want)
		}
	}
	_, _, err := runCLI(ctx, append([]string{"dead-letters", "list", "--limit", "-1"}, db...)...)
	if err == nil || !strings.Contains(err.Error(), "--limit") {
		t.Errorf("list --limit -1: err = %v", err)
	}
	_, _, err = runCLI(ctx, append([]string{"dead-letters", "replay", "--brokers", "b:9092", "--id", "7"}, db...)...)
	if err == nil || !strings.Contains(err.Error(), "migrate up") {
		t.Errorf("unmigrated schema: err = %v", err)
	}
}
