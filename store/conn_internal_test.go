package store

import (
	"testing"
	"time"
)

// The response timeout follows the session's statement_timeout as Postgres reads it, so that the server's own
// timeout (whose 57014 halves a batch) always fires first while the server is reachable.
func TestResponseTimeoutFollowsStatementTimeout(t *testing.T) {
	for _, c := range []struct {
		st   string
		want time.Duration
	}{
		{"300000", 5*time.Minute + 30*time.Second}, // our default, in milliseconds
		{"2000", 3 * time.Second},                  // a tenth is below a second: at least 1s more
		{"5min", 5*time.Minute + 30*time.Second},
		{"90 s", 99 * time.Second},
		{"1h", time.Hour + 6*time.Minute},
		{"0", 0}, // statement_timeout disabled: no bound either
		{"", 0},
		{"2 fortnights", 0}, // unreadable: leave it to the server
	} {
		if got := responseTimeout(c.st); got != c.want {
			t.Errorf("responseTimeout(%q) = %v, want %v", c.st, got, c.want)
		}
	}
}
