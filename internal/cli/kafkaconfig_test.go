package cli

import (
	"maps"
	"testing"
)

// TestKafkaConfigValuesKeepTheirCommas: librdkafka values such as debug=cgrp,fetch used to be split into a
// second "key" and refused, from the flag and from CHAINSINK_KAFKA_CONFIG alike.
func TestKafkaConfigValuesKeepTheirCommas(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want map[string]string
	}{
		{"flag", []string{"debug=cgrp,fetch", "client.id=x"}, map[string]string{"debug": "cgrp,fetch", "client.id": "x"}},
		{"environment", splitList("debug=cgrp,fetch,ssl.cipher.suites=A,B,client.id=x"),
			map[string]string{"debug": "cgrp,fetch", "ssl.cipher.suites": "A,B", "client.id": "x"}},
		{"spaces", []string{" session.timeout.ms = 6000 "}, map[string]string{"session.timeout.ms": "6000"}},
	} {
		got, err := parseKeyValues(tc.in)
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%s: parseKeyValues(%q) = %v, %v; want %v", tc.name, tc.in, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"nokey"}, {"=v"}, {"fetch", "debug=cgrp"}} {
		if _, err := parseKeyValues(bad); err == nil {
			t.Errorf("parseKeyValues(%q) accepted", bad)
		}
	}
}
