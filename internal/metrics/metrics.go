package metrics

import (
	"maps"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/chainsink/chainsink/store/chain"
)

// Metrics is every metric chainsink exports. Build it with New; a nil *Metrics is not allowed.
type Metrics struct {
	Registry *prometheus.Registry

	Lag                *prometheus.GaugeVec   // topic, partition
	BatchesCommitted   prometheus.Counter     //
	RowsWritten        *prometheus.CounterVec // table
	BatchRows          prometheus.Histogram   //
	CommitSeconds      prometheus.Histogram   //
	DecodeSeconds      prometheus.Histogram   //
	DeadLetters        *prometheus.CounterVec // reason
	FencedBatches      prometheus.Counter     //
	Retries            *prometheus.CounterVec // kind
	AssignedPartitions prometheus.Gauge       //
	EventsDecoded      *prometheus.CounterVec // abi, event
	UndecodedLogs      prometheus.Counter     //
	MessagesConsumed   *prometheus.CounterVec // topic
	PausedPartitions   prometheus.Gauge       //
	HeldSeconds        prometheus.Counter     //
	OffsetAnomalies    *prometheus.GaugeVec   // topic, partition, kind

	// Ready and StuckSeconds are read at scrape time from what ReportReadiness was given, so that alerts see
	// what /readyz sees without probing it.
	Ready        prometheus.GaugeFunc
	StuckSeconds prometheus.GaugeFunc
	readiness    atomic.Pointer[readiness]

	// heldSince is when the poll loop began waiting for a full queue (unix nanoseconds), 0 while it is not.
	heldSince atomic.Int64

	// The children of the vectors counted per message and per event, by their labels.
	consumed counters[string]
	decoded  counters[[2]string]
}

// counters caches a CounterVec's children by their label values: WithLabelValues hashes and checks the
// values and takes a lock on every call, 120–210 ns for each message and each decoded event on two cores
// against 40–55 through the cache (BenchmarkEventDecoded). The set of labels is small and stops growing
// (topics, the ABIs' events), so the cache is a map that is copied when a label set is added, else only read.
type counters[K comparable] struct {
	mu       sync.Mutex
	children atomic.Pointer[map[K]prometheus.Counter]
}

func (c *counters[K]) get(key K, vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if m := c.children.Load(); m != nil {
		if child, ok := (*m)[key]; ok {
			return child
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[K]prometheus.Counter{}
	if m := c.children.Load(); m != nil {
		if child, ok := (*m)[key]; ok {
			return child
		}
		next = maps.Clone(*m)
	}
	child := vec.WithLabelValues(labels...)
	next[key] = child
	c.children.Store(&next)
	return child
}

type readiness struct {
	ready func() bool
	stuck func() time.Duration
}

// New registers every metric, plus the Go and process collectors, on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chainsink_consumer_lag",
			Help: "Messages not yet stored: the broker's high watermark minus the partition's next offset in Postgres."},
			[]string{"topic", "partition"}),
		BatchesCommitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "chainsink_batches_committed_total",
			Help: "Batches committed to Postgres."}),
		RowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chainsink_rows_written_total",
			Help: "Rows written, by table."}, []string{"table"}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chainsink_batch_rows",
			Help: "Rows per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chainsink_commit_seconds",
			Help: "Time to write and commit one batch, retries excluded.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		DecodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chainsink_decode_seconds",
			Help: "Time to decode one message into rows.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16)}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chainsink_dead_letters_total",
			Help: "Messages stored in dead_letters, by reason."}, []string{"reason"}),
		FencedBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "chainsink_fenced_batches_total",
			Help: "Batches rolled back because another owner had advanced the partition."}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chainsink_retries_total",
			Help: "Retried operations, by kind."}, []string{"kind"}),
		AssignedPartitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_assigned_partitions",
			Help: "Partitions this instance owns."}),
		EventsDecoded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chainsink_events_decoded_total",
			Help: "Logs decoded into events, by ABI and event."}, []string{"abi", "event"}),
		UndecodedLogs: prometheus.NewCounter(prometheus.CounterOpts{Name: "chainsink_undecoded_logs_total",
			Help: "Logs whose topic0 an ABI knows but whose topics or data do not fit it; kept raw in logs."}),
		MessagesConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chainsink_messages_consumed_total",
			Help: "Kafka messages handed to partition workers, by topic."}, []string{"topic"}),
		PausedPartitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_paused_partitions",
			Help: "Partitions paused because their worker's queue is full."}),
		HeldSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "chainsink_consumer_held_seconds_total",
			Help: "Time the consumer waited for a worker's full queue to drain (--pause-after): backpressure from " +
				"Postgres. Its rate is the share of the time the instance is held."}),
		OffsetAnomalies: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chainsink_offset_anomaly",
			Help: "1 while a partition is held, not consumed, because its stored offset is outside its log " +
				"(kind log_regressed: above the log's end; retention_gap: below its start)."},
			[]string{"topic", "partition", "kind"}),
	}
	m.Ready = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chainsink_ready",
		Help: "1 when the instance is ready as /readyz says (Postgres answers, the group is joined, no partition " +
			"held or retrying past --stuck-after), else 0."},
		func() float64 {
			if r := m.readiness.Load(); r != nil && r.ready() {
				return 1
			}
			return 0
		})
	m.StuckSeconds = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chainsink_stuck_seconds",
		Help: "How long the partition retrying longest has been retrying one batch; 0 when none is."},
		func() float64 {
			if r := m.readiness.Load(); r != nil {
				return r.stuck().Seconds()
			}
			return 0
		})
	r.MustRegister(m.Lag, m.BatchesCommitted, m.RowsWritten, m.BatchRows, m.CommitSeconds, m.DecodeSeconds,
		m.DeadLetters, m.FencedBatches, m.Retries, m.AssignedPartitions, m.EventsDecoded, m.UndecodedLogs,
		m.MessagesConsumed, m.PausedPartitions, m.HeldSeconds, m.OffsetAnomalies, m.Ready, m.StuckSeconds,
		// The collector's CPU beside process_cpu_seconds_total says what GOGC and the memory limit cost
		// (go_cpu_classes_gc_total_cpu_seconds_total; make bench reports it per run).
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/cpu/classes/gc/total:cpu-seconds$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ReportReadiness makes chainsink_ready and chainsink_stuck_seconds read ready and stuck at each scrape. The
// server that serves /readyz calls it with the same checks.
func (m *Metrics) ReportReadiness(ready func() bool, stuck func() time.Duration) {
	m.readiness.Store(&readiness{ready: ready, stuck: stuck})
}

// The methods below make *Metrics the indexer's Metrics (indexer.Metrics); they are safe for concurrent use.

// MessageConsumed implements indexer.Metrics.
func (m *Metrics) MessageConsumed(topic string) {
	m.consumed.get(topic, m.MessagesConsumed, topic).Inc()
}

// MessageDecoded implements indexer.Metrics.
func (m *Metrics) MessageDecoded(took time.Duration) { m.DecodeSeconds.Observe(took.Seconds()) }

// BatchCommitted implements indexer.Metrics.
func (m *Metrics) BatchCommitted(rows chain.Counts, deadLetterReasons []string, took time.Duration) {
	m.BatchesCommitted.Inc()
	m.CommitSeconds.Observe(took.Seconds())
	var total int64
	for table, n := range rows {
		m.RowsWritten.WithLabelValues(table).Add(float64(n))
		total += n
	}
	m.BatchRows.Observe(float64(total))
	for _, reason := range deadLetterReasons {
		m.DeadLetters.WithLabelValues(reason).Inc()
	}
}

// EventDecoded counts a log decoded into an event (decode.Metrics).
func (m *Metrics) EventDecoded(abiName, event string) {
	m.decoded.get([2]string{abiName, event}, m.EventsDecoded, abiName, event).Inc()
}

// LogUndecoded counts a log an ABI claims but cannot decode (decode.Metrics).
func (m *Metrics) LogUndecoded() { m.UndecodedLogs.Inc() }

// BatchFenced implements indexer.Metrics.
func (m *Metrics) BatchFenced() { m.FencedBatches.Inc() }

// Retried implements indexer.Metrics.
func (m *Metrics) Retried(kind string) { m.Retries.WithLabelValues(kind).Inc() }

// PartitionsOwned implements indexer.Metrics.
func (m *Metrics) PartitionsOwned(n int) { m.AssignedPartitions.Set(float64(n)) }

// PartitionsPaused implements indexer.Metrics.
func (m *Metrics) PartitionsPaused(n int) { m.PausedPartitions.Set(float64(n)) }

// ConsumerHeld implements indexer.Metrics.
func (m *Metrics) ConsumerHeld(held bool) {
	now := time.Now().UnixNano()
	if held {
		m.heldSince.Store(now)
		return
	}
	if since := m.heldSince.Swap(0); since != 0 {
		m.HeldSeconds.Add(time.Duration(now - since).Seconds())
	}
}

// ConsumerLag implements indexer.Metrics.
func (m *Metrics) ConsumerLag(topic string, partition int32, lag int64) {
	m.Lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

// PartitionReleased implements indexer.Metrics.
func (m *Metrics) PartitionReleased(topic string, partition int32) {
	m.Lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// OffsetAnomaly implements indexer.Metrics.
func (m *Metrics) OffsetAnomaly(topic string, partition int32, kind string, active bool) {
	p := strconv.Itoa(int(partition))
	if active {
		m.OffsetAnomalies.WithLabelValues(topic, p, kind).Set(1)
		return
	}
	m.OffsetAnomalies.DeleteLabelValues(topic, p, kind)
}

// Follow is what `chainsink follow` exports, next to the process and readiness metrics of Metrics.
type Follow struct {
	HeadBlock      prometheus.Gauge
	PublishedBlock prometheus.Gauge
	BlocksBehind   prometheus.Gauge
	Reorgs         prometheus.Counter
	ReorgDepth     prometheus.Histogram
	Confirmations  prometheus.Gauge

	head, published atomic.Uint64
}

// NewFollow registers the follower's metrics on m's registry.
func (m *Metrics) NewFollow() *Follow {
	f := &Follow{
		HeadBlock: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_follow_head_block",
			Help: "The node's head, as the follower last saw it."}),
		PublishedBlock: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_follow_published_block",
			Help: "The highest block the follower has published and Kafka acknowledged."}),
		BlocksBehind: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_follow_blocks_behind",
			Help: "The head minus the highest published block (confirmations included)."}),
		Reorgs: prometheus.NewCounter(prometheus.CounterOpts{Name: "chainsink_follow_reorgs_total",
			Help: "Reorgs the follower has handled: kept heights that left the canonical chain."}),
		ReorgDepth: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chainsink_follow_reorg_depth",
			Help: "Blocks replaced or removed per reorg.", Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 64, 128}}),
		Confirmations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chainsink_follow_confirmations",
			Help: "The follower's --confirmations: with K > 0, any reorg it sees was deeper than K."}),
	}
	m.Registry.MustRegister(f.HeadBlock, f.PublishedBlock, f.BlocksBehind, f.Reorgs, f.ReorgDepth, f.Confirmations)
	return f
}

// Head implements follow.Metrics.
func (f *Follow) Head(n uint64) {
	f.head.Store(n)
	f.HeadBlock.Set(float64(n))
	f.behind()
}

// Published implements follow.Metrics.
func (f *Follow) Published(n uint64) {
	f.published.Store(n)
	f.PublishedBlock.Set(float64(n))
	f.behind()
}

// Reorg implements follow.Metrics.
func (f *Follow) Reorg(depth uint64) {
	f.Reorgs.Inc()
	f.ReorgDepth.Observe(float64(depth))
}

func (f *Follow) behind() {
	if h, p := f.head.Load(), f.published.Load(); p > 0 && h >= p {
		f.BlocksBehind.Set(float64(h - p))
	}
}
