package e2e

import (
	"encoding/json"
	"testing"
	"time"
)

// TestKafkaLogsAreJSONLines: librdkafka's own messages used to go raw to stderr, between the JSON lines of
// slog, where a log pipeline could not parse them (the only trace of a reset offset was such a line). Now
// every line chainsink writes is one JSON object, librdkafka's included, and --kafka-config values keep
// their commas (debug=cgrp,fetch used to be refused as a key "fetch" with no value).
func TestKafkaLogsAreJSONLines(t *testing.T) {
	t.Parallel()
	_, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1})
	args := append(runArgs(cfg, b.Addr(), "logs", "blocks:bundle"), "--kafka-config", "debug=cgrp,fetch", "--log-level", "debug")
	p := start(t, args...)
	p.waitLog(t, "partitions assigned", 30*time.Second)
	p.waitLog(t, `"source":"librdkafka"`, 30*time.Second)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	tags := map[string]bool{}
	for _, l := range p.logLines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		if rec["source"] == "librdkafka" {
			tag, _ := rec["kafka_tag"].(string)
			tags[tag] = true
		}
	}
	if !tags["CGRPOP"] && !tags["CGRPSTATE"] && !tags["FETCH"] {
		t.Fatalf("no consumer-group or fetch debug line from librdkafka; tags seen: %v", tags)
	}
}
