package indexer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chainsink/chainsink/store/chain"
)

// Topic is a topic to consume and how its messages replace stored rows.
type Topic struct {
	Name string
	// Format names the decoder of the topic's messages, e.g. "bundle" or "ethereum-etl".
	Format string
	// Mode says how a message's rows replace stored rows; it follows from the format.
	Mode chain.Mode
}

// Config is the indexer's configuration. Zero values mean the documented default.
type Config struct {
	// Brokers is the bootstrap list, host:port[,host:port…].
	Brokers string
	// Group is the Kafka consumer group and the key of the offsets stored in Postgres.
	Group string
	// Topics to consume.
	Topics []Topic
	// KafkaConfig is passed to librdkafka last, so it overrides chainsink's defaults (TLS, SASL, tuning).
	KafkaConfig map[string]string
	// BatchMaxRows closes a batch at this many rows. Default 10000: as fast as larger batches in make bench,
	// and a partition holds up to two batches (one committing, one being filled), decoded.
	BatchMaxRows int
	// BatchMaxBytes closes a batch at this many bytes of raw messages. Default 32 MiB.
	BatchMaxBytes int
	// BatchMaxAge closes a non-empty batch this long after its first message. Default 500ms.
	BatchMaxAge time.Duration
	// QueueMaxBytes pauses a partition whose worker has this many bytes of undecoded messages queued, and
	// resumes it below half. Default 8 MiB.
	QueueMaxBytes int
	// ShutdownTimeout bounds the final flush on Stop. Default 30s.
	ShutdownTimeout time.Duration
	// RevokeFlushTimeout bounds the flush of a revoked partition before its batch is dropped. Default 5s.
	RevokeFlushTimeout time.Duration
	// RetryInitial and RetryMax bound the backoff between retries of a batch. Defaults 100ms and 30s.
	RetryInitial time.Duration
	RetryMax     time.Duration
}

// WithDefaults returns c with every zero value replaced by its default.
func (c Config) WithDefaults() Config {
	if c.BatchMaxRows == 0 {
		c.BatchMaxRows = 10000
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 32 << 20
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = 500 * time.Millisecond
	}
	if c.QueueMaxBytes == 0 {
		c.QueueMaxBytes = 8 << 20
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.RevokeFlushTimeout == 0 {
		c.RevokeFlushTimeout = 5 * time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Brokers) == "" {
		errs = append(errs, errors.New("no brokers: set --brokers or CHAINSINK_BROKERS"))
	}
	if strings.TrimSpace(c.Group) == "" {
		errs = append(errs, errors.New("no consumer group: set --group or CHAINSINK_GROUP"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no topics: set --topics TOPIC:FORMAT[,TOPIC:FORMAT…]"))
	}
	seen := map[string]bool{}
	for _, t := range c.Topics {
		if t.Name == "" {
			errs = append(errs, errors.New("a topic has an empty name"))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("topic %q is listed twice", t.Name))
		}
		seen[t.Name] = true
	}
	if c.BatchMaxRows < 0 || c.BatchMaxBytes < 0 || c.BatchMaxAge < 0 || c.QueueMaxBytes < 0 {
		errs = append(errs, errors.New("batch and queue limits must not be negative"))
	}
	for k := range c.KafkaConfig {
		switch k {
		case "group.id", "enable.auto.offset.store":
			errs = append(errs, fmt.Errorf("kafka config %q is managed by chainsink and cannot be overridden", k))
		}
	}
	return errors.Join(errs...)
}
