package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

func blockRows(n uint64) chain.Rows {
	h := make([]byte, 32)
	h[31] = byte(n)
	return chain.Rows{Blocks: []chain.Block{{Number: n, Hash: h, ParentHash: h, Timestamp: time.Unix(1_683_000_000+int64(n), 0),
		Miner: h[:20]}}}
}

func TestStatusShowsLagDeadLettersTablesAndNewestBlock(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"blocks": 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	// Partition 0: offsets 0..2 stored (two blocks and a dead letter), 5 messages in Kafka: lag 2.
	// Partition 1: offset 0 stored, 1 message in Kafka: lag 0. Group h has its own offsets and dead letter.
	b0 := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b0.Add(store.Message{Offset: 0, Value: []byte("b10"), Rows: blockRows(10)})
	b0.Add(store.Message{Offset: 1, Value: []byte("garbage"), Failure: &chain.Failure{Reason: "invalid_json", Err: errors.New("not JSON")}})
	b0.Add(store.Message{Offset: 2, Value: []byte("b12"), Rows: blockRows(12)})
	writeBatch(t, ctx, s.Pool(), b0)
	b1 := store.NewBatch("g", "blocks", 1, 0, chain.ReplaceBlocks)
	b1.Add(store.Message{Offset: 0, Value: []byte("b11"), Rows: blockRows(11)})
	writeBatch(t, ctx, s.Pool(), b1)
	bh := store.NewBatch("h", "blocks", 0, 0, chain.ReplaceBlocks)
	bh.Add(store.Message{Offset: 0, Value: []byte("x"), Failure: &chain.Failure{Reason: "bad_field", Err: errors.New("no number")}})
	writeBatch(t, ctx, s.Pool(), bh)

	var recs []localkafka.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, localkafka.Record{Topic: "blocks", Partition: 0, Value: []byte(fmt.Sprint(i))})
	}
	recs = append(recs, localkafka.Record{Topic: "blocks", Partition: 1, Value: []byte("x")})
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if hw := broker.HighWatermarks("blocks"); hw[0] != 5 || hw[1] != 1 {
		t.Fatalf("broker high watermarks = %v", hw)
	}

	if err := store.NewPartitioner(100).Ensure(ctx, s.Pool(), []uint64{10, 12}); err != nil {
		t.Fatal(err)
	}

	args := append([]string{"status", "--brokers", broker.Addr(), "--group", "g", "--exact", "--json"}, dbArgs(cfg)...)
	out, stderr, err := runCLI(ctx, args...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var doc statusJSON
	decodeJSON(t, out, &doc)
	if doc.Schema != cfg.Schema || doc.Group != "g" {
		t.Fatalf("schema %q group %q", doc.Schema, doc.Group)
	}
	if len(doc.Partitions) != 2 {
		t.Fatalf("partitions = %+v", doc.Partitions)
	}
	for i, want := range []struct{ next, hw, lag int64 }{{3, 5, 2}, {1, 1, 0}} {
		p := doc.Partitions[i]
		if p.Group != "g" || p.Topic != "blocks" || p.Partition != int32(i) || p.NextOffset != want.next ||
			p.HighWatermark == nil || *p.HighWatermark != want.hw || p.Lag == nil || *p.Lag != want.lag ||
			p.WatermarkError != nil || time.Since(p.LastCommit) > time.Hour {
			t.Errorf("partition %d = %+v (hw %v lag %v), want next %d hw %d lag %d", i, p, deref(p.HighWatermark),
				deref(p.Lag), want.next, want.hw, want.lag)
		}
	}
	if len(doc.DeadLetters) != 1 || doc.DeadLetters[0].Topic != "blocks" || doc.DeadLetters[0].Reason != "invalid_json" ||
		doc.DeadLetters[0].Count != 1 || time.Since(doc.DeadLetters[0].Newest) > time.Hour {
		t.Errorf("dead letters = %+v", doc.DeadLetters)
	}
	rows := map[string]int64{}
	for _, tb := range doc.Tables {
		if !tb.Exact {
			t.Errorf("table %s not exact with --exact", tb.Table)
		}
		rows[tb.Table] = tb.Rows
	}
	if len(doc.Tables) != len(chain.CoreTables.Names()) || rows["blocks"] != 3 || rows["logs"] != 0 {
		t.Errorf("tables = %+v", doc.Tables)
	}
	if doc.NewestBlock == nil || doc.NewestBlock.Number != 12 || !doc.NewestBlock.Timestamp.Equal(time.Unix(1_683_000_012, 0)) {
		t.Errorf("newest block = %+v", doc.NewestBlock)
	}
	if len(doc.TablePartitions) != 6 || doc.TablePartitions[2] != (tablePartitionsJSON{Table: "logs", Ranges: 2, From: 0, To: 200}) {
		t.Errorf("table partitions = %+v", doc.TablePartitions)
	}

	// The document's shape is a contract: exactly the documented keys, nulls included.
	var raw struct {
		Partitions  []json.RawMessage `json:"partitions"`
		DeadLetters []json.RawMessage `json:"dead_letters"`
		Tables      []json.RawMessage `json:"tables"`
		NewestBlock json.RawMessage   `json:"newest_block"`
		OldestBlock json.RawMessage   `json:"oldest_block"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	requireKeys(t, "document", json.RawMessage(out), "schema", "group", "partitions", "dead_letters", "tables", "newest_block",
		"oldest_block", "table_partitions")
	requireKeys(t, "partition", raw.Partitions[0], "group", "topic", "partition", "next_offset", "last_commit",
		"log_start", "high_watermark", "lag", "offset_state", "watermark_error")
	requireKeys(t, "dead letter", raw.DeadLetters[0], "topic", "reason", "count", "newest")
	requireKeys(t, "table", raw.Tables[0], "table", "rows", "exact")
	requireKeys(t, "newest block", raw.NewestBlock, "number", "timestamp")
	requireKeys(t, "oldest block", raw.OldestBlock, "number", "timestamp")

	// The tables for people: every section's headers, and partition 0's row with its lag.
	args = append([]string{"status", "--brokers", broker.Addr()}, dbArgs(cfg)...)
	text, stderr, err := runCLI(ctx, args...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	for _, h := range []string{"PARTITIONS", "GROUP", "TOPIC", "PARTITION", "NEXT OFFSET", "HIGH WATERMARK", "LAG",
		"LAST COMMIT", "DEAD LETTERS", "REASON", "COUNT", "NEWEST", "TABLES (rows estimated", "TABLE", "ROWS",
		"BLOCKS", "NUMBER", "TIMESTAMP", "TABLE PARTITIONS", "RANGES", "IN DEFAULT"} {
		if !strings.Contains(text, h) {
			t.Errorf("text output lacks %q:\n%s", h, text)
		}
	}
	for _, re := range []string{`(?m)^g\s+blocks\s+0\s+3\s+0\s+5\s+2\s+ok\s+\d{4}-`, `(?m)^h\s+blocks\s+0\s+1\s+0\s+5\s+4\s+ok\s`,
		`(?m)^blocks\s+invalid_json\s+1\s`, `(?m)^blocks\s+~\d+$`, `(?m)^newest\s+12\s+2023-05-02T04:00:12Z`, `(?m)^oldest\s+\d+\s+2023-`, `(?m)^logs\s+2\s+0-199\s+0$`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("text output does not match %s:\n%s", re, text)
		}
	}
}

func TestStatusWithoutBrokersAndWithUnreachableBrokers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, cfg := pgtest.Open(t)
	b := store.NewBatch("g", "blocks", 0, 0, chain.ReplaceBlocks)
	b.Add(store.Message{Offset: 0, Value: []byte("b"), Rows: blockRows(1)})
	writeBatch(t, ctx, s.Pool(), b)

	// No --brokers: no Kafka, watermarks null.
	out, stderr, err := runCLI(ctx, append([]string{"status", "--json"}, dbArgs(cfg)...)...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var doc statusJSON
	decodeJSON(t, out, &doc)
	if len(doc.Partitions) != 1 || doc.Partitions[0].HighWatermark != nil || doc.Partitions[0].Lag != nil ||
		doc.Partitions[0].WatermarkError != nil || doc.Tables[0].Exact {
		t.Fatalf("without brokers: %s", out)
	}

	// Brokers that do not answer: the report is printed with the reason, and the command fails.
	out, _, err = runCLI(ctx, append([]string{"status", "--json", "--brokers", "127.0.0.1:1", "--kafka-timeout", "300ms"},
		dbArgs(cfg)...)...)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 partitions unknown") {
		t.Fatalf("unreachable brokers: err = %v", err)
	}
	doc = statusJSON{}
	decodeJSON(t, out, &doc)
	if p := doc.Partitions[0]; p.HighWatermark != nil || p.WatermarkError == nil || *p.WatermarkError == "" || p.NextOffset != 1 {
		t.Fatalf("unreachable brokers: %s", out)
	}

	// Flags are validated before anything connects.
	if _, _, err := runCLI(ctx, "status", "--database-url", cfg.DatabaseURL, "--kafka-timeout", "0s"); err == nil ||
		!strings.Contains(err.Error(), "--kafka-timeout") {
		t.Fatalf("--kafka-timeout 0s: err = %v", err)
	}
	if _, _, err := runCLI(ctx, "status", "--database-url", cfg.DatabaseURL, "--kafka-config", "nokey"); err == nil ||
		!strings.Contains(err.Error(), "key=value") {
		t.Fatalf("bad --kafka-config: err = %v", err)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
