package indexer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Format decodes the messages of a topic. The indexer calls Decode from one goroutine per partition, so it
// must be safe for concurrent use.
type Format interface {
	// Name names the format in logs, e.g. "bundle".
	Name() string
	// Mode says how the rows of the format's messages replace stored rows: a message that carries whole
	// blocks replaces them, one that carries single items replaces only those.
	Mode() chain.Mode
	// Decode turns one message into rows, or into a failure that stores it in dead_letters.
	Decode(key, value []byte) (chain.Rows, *chain.Failure)
}

// Topic is a topic to consume and the format of its messages.
type Topic struct {
	Name   string
	Format Format
}

// Config is the indexer's configuration. Zero values mean the documented default.
type Config struct {
	// Brokers is the bootstrap list, host:port[,host:port…].
	Brokers string
	// Group is the Kafka consumer group and the key of the offsets stored in Postgres.
	Group string
	// InstanceID makes this instance a static member of the group (librdkafka's group.instance.id): after a
	// restart within the session timeout it gets its partitions back at once, with no rebalance, instead of
	// after the session timeout (45 s by default). It must be unique and stable per instance, such as a
	// StatefulSet pod's name. Empty (the default) is a dynamic member.
	InstanceID string
	// Topics to consume.
	Topics []Topic
	// ExtraTables are tables described at run time (chain.NewTable) that the topics' formats produce rows
	// for; batches are written to chain.CoreTables followed by these, and a bundle replaces its blocks in all
	// of them. A message with rows of a table that is not listed is stored as a dead letter, never dropped.
	ExtraTables chain.Schema
	// Discovery, when set, gates the rows of factory sets' tables by the children registered (see
	// chain.Discovery); its tables and chain.ChildrenTable must be among ExtraTables.
	Discovery *chain.Discovery
	// Untyped stores in events and calls only what no typed table of ExtraTables holds (the configuration's
	// `events_table: untyped` and `calls_table: untyped`; see store.Writer.WithUntyped).
	Untyped store.Untyped
	// KafkaConfig is passed to librdkafka last, so it overrides chainsink's defaults (TLS, SASL, tuning).
	KafkaConfig map[string]string
	// BatchMaxRows closes a batch at this many rows. Default 10000: as fast as larger batches in make bench,
	// and a partition holds up to two batches (one committing, one being filled), decoded.
	BatchMaxRows int
	// BatchMaxBytes closes a batch at this many bytes of raw messages. Default 32 MiB.
	BatchMaxBytes int
	// BatchMaxHeights closes a batch at this many distinct block heights. Default 64. Each height is a lock of
	// the batch's transaction, and PostgreSQL's lock table is sized for the whole server
	// (max_locks_per_transaction × max_connections, 6,400 by default), shared by every partition of every
	// instance: a stream of tiny blocks (an L2's) would otherwise put thousands of heights in one batch, and
	// a few such batches at once fail with "out of shared memory". Mainnet batches hold 10 to 25 heights.
	BatchMaxHeights int
	// BatchMaxAge closes a non-empty batch this long after its first message. Default 500ms.
	BatchMaxAge time.Duration
	// BatchMinAge is how long a batch that holds everything its partition has (its last message is the
	// last one the broker reported) stays open for more. 0, the default, closes it at once: a follower's
	// blocks and the end of a backlog are committed without waiting for BatchMaxAge, and a batch fills
	// whenever the consumer is behind. A larger value (at most BatchMaxAge) trades that latency for fewer
	// commits where messages trickle in one by one.
	BatchMinAge time.Duration
	// QueueMaxBytes is where a worker's queue of undecoded messages is full: this many bytes, or half as many
	// once they are 16 messages or more (small ones, which half a queue holds thousands of). A full queue
	// goes on while the others leave room, then holds the consumer, then has its partition paused (see
	// PauseAfter), which is resumed below half of the limit. Default 8 MiB.
	QueueMaxBytes int
	// PauseAfter is how long the poll loop waits for room before it pauses a partition whose worker's queue is
	// full. A queue fills while its worker's last batch commits; it may go over its limit while all the queues
	// together hold less than half of theirs, and at that the loop waits for the workers to work the total
	// down. Waiting leaves every partition's messages in librdkafka's bounded prefetch; a pause drops what
	// librdkafka had fetched ahead for the partition, and the resume fetches it again (every ethereum-etl item
	// of make bench was fetched 2.2 times when a full queue paused at once, 12 times on 32 partitions). A
	// worker stuck for longer is paused, so that the others are not held behind it. Default 1s.
	PauseAfter time.Duration
	// MemoryLimit is the memory that the buffers of every partition the indexer owns share, however many
	// they are: each partition's queue and batch limits are BatchMaxRows, BatchMaxBytes and QueueMaxBytes,
	// or its share of the limit when that is smaller (see Budget). Default 256 MiB; negative: no shared
	// limit, the per-partition ones alone.
	MemoryLimit int64
	// PartitionBlocks is the heights per partition of the tables partitioned by block number (see
	// store.Partitioner): before a batch is written, the partitions of its heights and of the range after
	// them are created when missing. Default 1,000,000 (store.DefaultPartitionBlocks); negative: never
	// create partitions (another tool, such as pg_partman, does), heights without one go to the default
	// partition.
	PartitionBlocks int64
	// RevokeFlushTimeout bounds the flush of a revoked partition before its batch is dropped. Default 5s.
	RevokeFlushTimeout time.Duration
	// RetryInitial and RetryMax shape the backoff between retries of a batch: RetryInitial doubling up to
	// RetryMax, each wait ±25% (internal/retry). Defaults 100ms and 30s.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// OffsetRecheck is how often a partition held for an offset anomaly (its stored offset outside its log)
	// is looked at again, to resume it once `chainsink offsets set` has resolved it. Default 10s.
	OffsetRecheck time.Duration
}

// MaxPauseAfter bounds Config.PauseAfter: the poll loop must poll well within a minute (readiness) and
// max.poll.interval.ms (a third of it bounds the wait too).
const MaxPauseAfter = 10 * time.Second

// WithDefaults returns c with every zero value replaced by its default.
func (c Config) WithDefaults() Config {
	if c.BatchMaxRows == 0 {
		c.BatchMaxRows = 10000
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 32 << 20
	}
	if c.BatchMaxHeights == 0 {
		c.BatchMaxHeights = 64
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = 500 * time.Millisecond
	}
	if c.QueueMaxBytes == 0 {
		c.QueueMaxBytes = 8 << 20
	}
	if c.PauseAfter == 0 {
		c.PauseAfter = time.Second
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.PartitionBlocks == 0 {
		c.PartitionBlocks = store.DefaultPartitionBlocks
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
	if c.OffsetRecheck == 0 {
		c.OffsetRecheck = 10 * time.Second
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
		if t.Format == nil {
			errs = append(errs, fmt.Errorf("topic %q has no format", t.Name))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("topic %q is listed twice", t.Name))
		}
		seen[t.Name] = true
	}
	if _, err := chain.CoreTables.With(c.ExtraTables...); err != nil {
		errs = append(errs, fmt.Errorf("extra tables: %w", err))
	}
	if c.BatchMaxRows < 0 || c.BatchMaxBytes < 0 || c.BatchMaxAge < 0 || c.BatchMinAge < 0 || c.QueueMaxBytes < 0 || c.BatchMaxHeights < 0 ||
		c.PauseAfter < 0 {
		errs = append(errs, errors.New("batch and queue limits and --pause-after must not be negative"))
	}
	if c.PauseAfter > MaxPauseAfter {
		errs = append(errs, fmt.Errorf("pause after %s is above %s: a consumer that waits that long between polls looks dead to /readyz and its group",
			c.PauseAfter, MaxPauseAfter))
	}
	if c.BatchMinAge > c.BatchMaxAge && c.BatchMaxAge > 0 {
		errs = append(errs, fmt.Errorf("batch min age %s is above batch max age %s", c.BatchMinAge, c.BatchMaxAge))
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < MinMemoryLimit {
		errs = append(errs, fmt.Errorf("memory limit %d MiB is below %d MiB, which the Go runtime, librdkafka and one batch need",
			c.MemoryLimit>>20, MinMemoryLimit>>20))
	}
	for k, v := range c.KafkaConfig {
		switch k {
		case "group.instance.id":
			if c.InstanceID != "" && v != c.InstanceID {
				errs = append(errs, fmt.Errorf("kafka config group.instance.id=%s disagrees with the instance id %s", v, c.InstanceID))
			}
		case "group.id", "enable.auto.offset.store":
			errs = append(errs, fmt.Errorf("kafka config %q is managed by chainsink and cannot be overridden", k))
		case "auto.offset.reset":
			switch v {
			case "earliest", "smallest", "beginning", "latest", "largest", "end":
			default:
				errs = append(errs, fmt.Errorf("kafka config auto.offset.reset=%s: want earliest or latest (it only "+
					"picks where a partition with no stored offset starts)", v))
			}
		}
	}
	return errors.Join(errs...)
}

// DefaultMemoryLimit is Config.MemoryLimit's default, and MinMemoryLimit the least it may be.
const (
	DefaultMemoryLimit = 256 << 20
	MinMemoryLimit     = 32 << 20
)

// Shares of Config.MemoryLimit. A partition holds undecoded messages in its queue and up to two batches of
// decoded rows (one committing, one being filled); what is left is the Go runtime's and the rows' garbage
// between collections, pgx's buffers and librdkafka's (its prefetch is bounded apart, in kafkaConfig).
const (
	// 1/queueShare of the limit is for the queues of all partitions, in raw bytes (a queue of small messages
	// pauses at half its share: see pauseAt).
	queueShare = 8
	// 1/batchShare of the limit is for the batches of all partitions, two each (one committing, one filling).
	batchShare = 4
	// rowBytes is what a decoded row costs in memory with its message, for the batch row limit: ≈ 2 KiB for
	// ethereum-etl items, one message (its Rows and raw value) per row or two; a bundle's rows cost less.
	rowBytes = 2 << 10
	// minQueueBytes and minBatchRows keep a partition's limits useful when it is one of very many.
	minQueueBytes = 256 << 10
	minBatchRows  = 500
)

// prefetchBytes is librdkafka's share of the memory limit: its consumer-wide prefetch queue, and the most a
// fetch response brings (each at most 4 MiB, as fast as 16 MiB in make bench; 1/64 of a smaller limit, at
// least 1 MiB).
func (c Config) prefetchBytes() int {
	const most, least = 4 << 20, 1 << 20
	if c.MemoryLimit <= 0 {
		return most
	}
	return int(min(most, max(least, c.MemoryLimit/64)))
}

// Limits are one partition's batch and queue limits.
type Limits struct {
	BatchMaxRows  int
	BatchMaxBytes int
	QueueMaxBytes int
}

// Budget is each partition's limits when the indexer owns partitions of them: the configured per-partition
// limits, lowered to the partition's share of MemoryLimit. With the defaults, one partition gets the
// configured limits, two get batches of 8,192 rows, four of 4,096, and 32 get queues of 1 MiB and batches
// of 512 rows or 1 MiB.
func (c Config) Budget(partitions int) Limits {
	c = c.WithDefaults()
	l := Limits{BatchMaxRows: c.BatchMaxRows, BatchMaxBytes: c.BatchMaxBytes, QueueMaxBytes: c.QueueMaxBytes}
	if c.MemoryLimit < 0 || partitions <= 0 {
		return l
	}
	n := int64(partitions)
	share := func(v int, budget int64, floor int) int {
		if budget < int64(v) {
			v = int(max(budget, int64(floor)))
		}
		return v
	}
	l.QueueMaxBytes = share(l.QueueMaxBytes, c.MemoryLimit/queueShare/n, minQueueBytes)
	l.BatchMaxBytes = share(l.BatchMaxBytes, c.MemoryLimit/batchShare/(2*n), minQueueBytes)
	l.BatchMaxRows = share(l.BatchMaxRows, c.MemoryLimit/batchShare/(2*n)/rowBytes, minBatchRows)
	return l
}

// NewFormat makes a Format of a decoding function, as http.HandlerFunc makes a handler of one.
func NewFormat(name string, mode chain.Mode, decode func(key, value []byte) (chain.Rows, *chain.Failure)) Format {
	return funcFormat{name: name, mode: mode, decode: decode}
}

type funcFormat struct {
	name   string
	mode   chain.Mode
	decode func(key, value []byte) (chain.Rows, *chain.Failure)
}

func (f funcFormat) Name() string     { return f.name }
func (f funcFormat) Mode() chain.Mode { return f.mode }
func (f funcFormat) Decode(key, value []byte) (chain.Rows, *chain.Failure) {
	return f.decode(key, value)
}
