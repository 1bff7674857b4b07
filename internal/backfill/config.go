package backfill

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Target is the --to of a backfill: a block number, or the node's head less a confirmation depth.
type Target struct {
	// Latest means "the head at start, less Depth"; otherwise Number is the last block.
	Latest bool
	Depth  uint64
	Number uint64
}

// ParseTarget parses "N", "latest" or "latest-K".
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "latest" {
		return Target{Latest: true}, nil
	}
	if k, ok := strings.CutPrefix(s, "latest-"); ok {
		d, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return Target{}, fmt.Errorf("--to %q: want N, latest or latest-K with K a number of blocks", s)
		}
		return Target{Latest: true, Depth: d}, nil
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return Target{}, fmt.Errorf("--to %q: want N, latest or latest-K", s)
	}
	return Target{Number: n}, nil
}

func (t Target) String() string {
	switch {
	case !t.Latest:
		return strconv.FormatUint(t.Number, 10)
	case t.Depth == 0:
		return "latest"
	default:
		return "latest-" + strconv.FormatUint(t.Depth, 10)
	}
}

// Config is one backfill job. The zero value of every tuning field means its default (see withDefaults).
type Config struct {
	// From is the first block; To the last (inclusive), resolved once at start when it is latest[-K].
	From uint64
	To   Target
	// Topic receives one bundle message per block, keyed by the block number.
	Topic string
	// Job names the checkpoint row; default "<topic>:<from>-<to as given>", e.g. "blocks:0-latest-12", with
	// ":filtered" after it when Filtered.
	Job string
	// Filtered says that the Fetcher is a FilteredFetcher (filtered mode): a filtered job and a full one of
	// the same range keep separate checkpoints by default, and so does a job of some Sets of the
	// configuration alone (":filtered:<set>,<set>").
	Filtered bool
	Sets     []string

	// Concurrency is how many batch requests are in flight. Default 4.
	Concurrency int
	// BatchSize is how many blocks one JSON-RPC batch request asks for. Default 10.
	BatchSize int
	// ReceiptsBatchSize caps the elements of one eth_getTransactionReceipt batch (the fallback for nodes
	// without eth_getBlockReceipts). Default 100.
	ReceiptsBatchSize int
	// MaxAttempts bounds the tries of one batch (errors, timeouts, HTTP 429/5xx, null results). Default 8.
	MaxAttempts int
	// RetryBase and RetryMax shape the backoff between attempts: RetryBase doubling up to RetryMax, each wait
	// ±25% (internal/retry). Defaults 250ms and 15s.
	RetryBase time.Duration
	RetryMax  time.Duration
	// RequestTimeout bounds one attempt of one batch request. Default 30s.
	RequestTimeout time.Duration
	// MaxInFlight bounds the blocks published but not yet acknowledged by Kafka. Default 64 × BatchSize ×
	// Concurrency / 4, at least 256.
	MaxInFlight int
	// CheckpointInterval is how often the low watermark is written to Postgres. Default 1s.
	CheckpointInterval time.Duration
	// DrainTimeout bounds the wait for outstanding deliveries after an interruption or error. Default 30s.
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.BatchSize == 0 {
		c.BatchSize = 10
	}
	if c.ReceiptsBatchSize == 0 {
		c.ReceiptsBatchSize = 100
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.RetryBase == 0 {
		c.RetryBase = 250 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 15 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(256, 16*c.BatchSize*c.Concurrency)
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Job == "" {
		c.Job = fmt.Sprintf("%s:%d-%s", c.Topic, c.From, c.To)
		if c.Filtered {
			c.Job += ":filtered"
			if len(c.Sets) > 0 {
				c.Job += ":" + strings.Join(c.Sets, ",")
			}
		}
	}
	return c
}

// JobName is the checkpoint key of c: its Job, or the default derived from topic and range.
func (c Config) JobName() string { return c.withDefaults().Job }

// Validate reports a configuration that cannot work, before anything connects.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("topic is empty: set --topic"))
	}
	if c.From > 1<<63-1 {
		errs = append(errs, fmt.Errorf("--from %d is out of range", c.From))
	}
	if !c.To.Latest && c.To.Number < c.From {
		errs = append(errs, fmt.Errorf("--to %d is below --from %d", c.To.Number, c.From))
	}
	for _, v := range []struct {
		name string
		n    int
		lo   int
		hi   int
	}{
		{"--concurrency", c.Concurrency, 0, 256},
		{"--batch-size", c.BatchSize, 0, 1000},
		{"receipts batch size", c.ReceiptsBatchSize, 0, 10000},
		{"max attempts", c.MaxAttempts, 0, 1000},
		{"max in flight", c.MaxInFlight, 0, 1 << 20},
	} {
		if v.n < v.lo || v.n > v.hi {
			errs = append(errs, fmt.Errorf("%s %d: want 1 to %d", v.name, v.n, v.hi))
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"retry base", c.RetryBase}, {"retry max", c.RetryMax}, {"request timeout", c.RequestTimeout},
		{"checkpoint interval", c.CheckpointInterval}, {"drain timeout", c.DrainTimeout}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}
