package cli

import (
	"strings"
	"testing"
)

// TestRunValidatesFlagsBeforeConnecting checks that run refuses impossible settings at the edge, with a
// message that names the flag, before it touches Kafka or Postgres (nothing listens on the addresses).
func TestRunValidatesFlagsBeforeConnecting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topics", "blocks:bundle", "--pprof"}, "--pprof needs --metrics-addr"},
		{[]string{"--topics", "blocks:xml"}, `topic "blocks:xml"`},
		{[]string{"--topics", "blocks:bundle", "--batch-max-rows", "-1"}, "must not be negative"},
		{[]string{"--topics", "blocks:bundle", "--batch-min-age", "-1s"}, "must not be negative"},
		{[]string{"--topics", "blocks:bundle", "--batch-min-age", "1s"}, "batch min age 1s is above batch max age 500ms"},
		{[]string{"--topics", "blocks:bundle", "--pause-after", "-1s"}, "must not be negative"},
		{[]string{"--topics", "blocks:bundle", "--pause-after", "1m"}, "pause after 1m0s is above 10s"},
		{[]string{"--topics", "blocks:bundle", "--memory-limit", "16MiB"}, "memory limit 16 MiB is below 32 MiB"},
		{[]string{"--topics", "blocks:bundle", "--memory-limit", "lots"}, `"lots" is not a size`},
	} {
		args := append([]string{"run", "--brokers", "127.0.0.1:1", "--database-url", "postgres://nobody@127.0.0.1:1/x"}, tc.args...)
		_, _, err := runCLI(testContext(t), args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("chainsink %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
