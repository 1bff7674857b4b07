package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/internal/logging"
	"github.com/chainsink/chainsink/internal/retry"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Indexer consumes the configured topics with one consumer and writes them through partition workers.
//
// Its lifecycle is river's: Start once; cancelling Start's ctx is a hard stop (workers are cancelled at once,
// their open batches dropped, which the fence makes harmless); Stop is the graceful stop, idempotent and safe
// before Start.
type Indexer struct {
	cfg    Config
	db     store.DB
	writer *store.Writer
	// partitions creates the partitions of the heights batches write; nil when Config.PartitionBlocks < 0.
	partitions *store.Partitioner
	log        *slog.Logger
	metrics    Metrics
	topics     map[string]Topic

	startOnce sync.Once
	started   atomic.Bool
	stopOnce  sync.Once
	stopCh    chan struct{} // closed by Stop: flush and leave
	cancel    context.CancelFunc
	done      chan struct{}
	err       error

	// limits are each partition's share of the memory limit for the partitions owned now (Config.Budget),
	// set by the poll loop when partitions come and go, read by the workers.
	limits atomic.Pointer[Limits]

	// Owned by the poll loop goroutine (and the rebalance callback it runs).
	consumer *kafka.Consumer
	workers  map[partitionKey]*worker
	queued   queuedBytes // what the workers' queues hold together
	ended    chan outcome
	failed   error // set by the rebalance callback: the poll loop stops with it
	paused   int   // number of paused partitions
	joined   atomic.Bool
	lastPoll atomic.Int64

	retryMu  sync.Mutex
	retrying map[partitionKey]time.Time // partitions whose current batch is being retried, since when

	anomMu    sync.Mutex
	anomalies map[partitionKey]OffsetAnomaly // partitions owned but held: their stored offset is outside the log
}

// New checks cfg and prepares an indexer; nothing connects until Start. logger and m may be nil.
func New(cfg Config, db store.DB, logger *slog.Logger, m Metrics) (*Indexer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	tables, _ := chain.CoreTables.With(cfg.ExtraTables...) // Validate checked it
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = nopMetrics{}
	}
	ix := &Indexer{cfg: cfg, db: db, writer: store.NewWriter(tables).WithDiscovery(cfg.Discovery).WithUntyped(cfg.Untyped), log: logger, metrics: m, topics: map[string]Topic{},
		stopCh: make(chan struct{}), done: make(chan struct{}), workers: map[partitionKey]*worker{},
		ended: make(chan outcome, 64), retrying: map[partitionKey]time.Time{},
		anomalies: map[partitionKey]OffsetAnomaly{}}
	if cfg.PartitionBlocks > 0 {
		ix.partitions = store.NewPartitioner(cfg.PartitionBlocks)
	}
	ix.rebudget()
	for _, t := range cfg.Topics {
		ix.topics[t.Name] = t
	}
	return ix, nil
}

// kafkaConfig is chainsink's librdkafka configuration; the user's KafkaConfig is applied over it.
func (ix *Indexer) kafkaConfig() (*kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{
		"bootstrap.servers":             ix.cfg.Brokers,
		"group.id":                      ix.cfg.Group,
		"client.id":                     "chainsink",
		"partition.assignment.strategy": "cooperative-sticky",
		// librdkafka must never move a partition by itself: an out-of-range offset is an anomaly for chainsink
		// to report (continuity.go). The user's auto.offset.reset only picks where a partition that Postgres
		// has never seen starts (readStarts), as a logical offset that needs no reset.
		"auto.offset.reset": "error",
		// Offsets live in Postgres; librdkafka only auto-commits what we store after each Postgres commit, so
		// that lag tools see progress.
		"enable.auto.commit":       true,
		"enable.auto.offset.store": false,
		"auto.commit.interval.ms":  1000,
		// Bounded prefetch keeps memory flat with a large backlog: with pausing, the consumer holds at most
		// this much in librdkafka (one queue for all partitions) plus QueueMaxBytes per partition in its
		// workers. 4 MiB (and fetch.max.bytes below) was as fast as 16 in make bench, for ≈20 MB less RSS;
		// a --memory-limit below 256 MiB lowers both (Config.prefetchBytes).
		"queued.max.messages.kbytes": ix.cfg.prefetchBytes() >> 10,
		// librdkafka's pre-fetch queue is one for the whole consumer; once it is over the limit above, the
		// next fetch waits this long (default 1000 ms). Measured by make bench: with the default every
		// partition idled ~0.7 s before each batch; 10 ms took bundles from ~120 to ~175 blocks/s.
		"fetch.queue.backoff.ms": 10,
		// Kafka returns a record batch larger than this anyway (KIP-74), so it bounds memory, not messages.
		"fetch.max.bytes":      ix.cfg.prefetchBytes(),
		"enable.metrics.push":  false,
		"enable.partition.eof": false,
		// librdkafka's own lines go through the logger (logging.ForwardKafkaLogs), not raw to stderr.
		"go.logs.channel.enable": true,
	}
	if ix.cfg.InstanceID != "" {
		cm["group.instance.id"] = ix.cfg.InstanceID
	}
	for k, v := range ix.cfg.KafkaConfig {
		if k == "auto.offset.reset" {
			continue
		}
		if err := cm.SetKey(k, v); err != nil {
			return nil, fmt.Errorf("kafka config %s: %w", k, err)
		}
	}
	return &cm, nil
}

// Start connects to Kafka and starts consuming in the background. Cancelling ctx stops the indexer hard, as
// a Stop whose own ctx has expired does. Start fails if called twice or after Stop.
func (ix *Indexer) Start(ctx context.Context) error {
	var err error
	ran := false
	ix.startOnce.Do(func() {
		ran = true
		select {
		case <-ix.stopCh:
			err = errors.New("indexer already stopped")
			close(ix.done) // it never runs, so nothing else will
			return
		default:
		}
		if err = ix.start(ctx); err == nil {
			ix.started.Store(true)
		} else {
			close(ix.done)
		}
	})
	if !ran {
		select {
		case <-ix.stopCh:
			return errors.New("indexer already stopped")
		default:
			return errors.New("indexer already started")
		}
	}
	return err
}

func (ix *Indexer) start(ctx context.Context) error {
	cm, err := ix.kafkaConfig()
	if err != nil {
		return err
	}
	c, err := kafka.NewConsumer(cm)
	if err != nil {
		return fmt.Errorf("create Kafka consumer: %w", err)
	}
	go logging.ForwardKafkaLogs(c.Logs(), ix.log)
	names := make([]string, 0, len(ix.cfg.Topics))
	for _, t := range ix.cfg.Topics {
		names = append(names, t.Name)
	}
	// The run ctx reaches the workers and the rebalance callback as arguments (librdkafka calls the callback
	// from Poll, on the poll loop's goroutine); cancelling it is the hard stop.
	ctx, cancel := context.WithCancel(ctx)
	rebalance := func(c *kafka.Consumer, ev kafka.Event) error { return ix.rebalance(ctx, c, ev) }
	if err := c.SubscribeTopics(names, rebalance); err != nil {
		cancel()
		c.Close()
		return fmt.Errorf("subscribe to %v: %w", names, err)
	}
	ix.consumer = c
	ix.cancel = cancel
	ix.log.Info("consumer started", "brokers", ix.cfg.Brokers, "group", ix.cfg.Group, "topics", names)
	go ix.pollLoop(ctx)
	return nil
}

// Stop stops consuming, lets every worker commit what it holds, leaves the group and returns the error that
// ended the indexer, if any. When ctx is done first, the workers still flushing are cancelled (their batches
// are consumed again by the next owner) and Stop returns once the consumer has closed. It is safe to call
// more than once, concurrently, and before Start.
func (ix *Indexer) Stop(ctx context.Context) error {
	ix.stopOnce.Do(func() { close(ix.stopCh) })
	// Wait for a Start in progress to finish (so that Stop never returns while the indexer it started runs),
	// or keep Start from ever running; either way started is settled below.
	ix.startOnce.Do(func() { close(ix.done) })
	if !ix.started.Load() {
		return nil
	}
	select {
	case <-ix.done:
	case <-ctx.Done():
		select {
		case <-ix.done: // both were ready: the stop was not late
		default:
			ix.log.Warn("graceful stop timed out; cancelling the batches still being written", "error", ctx.Err())
			ix.cancel()
			<-ix.done
		}
	}
	return ix.err
}

// Done is closed when the indexer has stopped, by Stop (before Start too), by a fatal error (see Err), or
// because Start failed.
func (ix *Indexer) Done() <-chan struct{} { return ix.done }

// Err is the error that stopped the indexer; valid after Done is closed.
func (ix *Indexer) Err() error {
	select {
	case <-ix.done:
		return ix.err
	default:
		return nil
	}
}

// Joined reports whether the consumer has been assigned partitions at least once (readiness).
func (ix *Indexer) Joined() bool { return ix.joined.Load() }

// LastPoll is when the poll loop last returned from Kafka (liveness).
func (ix *Indexer) LastPoll() time.Time { return time.Unix(0, ix.lastPoll.Load()) }

func (ix *Indexer) pollLoop(ctx context.Context) {
	defer close(ix.done)
	defer ix.cancel()
	lagTick := time.NewTicker(5 * time.Second)
	defer lagTick.Stop()
	recheck := time.NewTicker(ix.cfg.OffsetRecheck)
	defer recheck.Stop()
	var fatal error
	// The loop's channels are looked at after an empty poll and every 32nd message otherwise: a select over
	// them for every ethereum-etl item (hundreds a block) was 2 % of chainsink's CPU, and 32 messages take a
	// fraction of a millisecond to route.
	busy := 0
loop:
	for {
		if busy%32 == 0 {
			select {
			case <-ctx.Done():
				break loop
			case <-ix.stopCh:
				fatal = ix.failed
				break loop
			case o := <-ix.ended:
				if err := ix.handleEnded(ctx, o); err != nil {
					fatal = err
					break loop
				}
				continue
			case <-lagTick.C:
				ix.updateLag()
			case <-recheck.C:
				ix.recheckAnomalies(ctx)
			default:
			}
		}
		timeout := 100
		if ix.paused > 0 {
			timeout = 10 // resumeDrained runs after each poll; a drained worker should not wait long
		}
		ev := ix.consumer.Poll(timeout)
		if _, isMessage := ev.(*kafka.Message); isMessage {
			busy++
		} else {
			busy = 0
		}
		ix.lastPoll.Store(time.Now().UnixNano())
		if ix.failed != nil {
			fatal = ix.failed
			break loop
		}
		ix.resumeDrained()
		switch e := ev.(type) {
		case nil:
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				ix.partitionError(ctx, e)
				continue
			}
			ix.route(ctx, e)
		case kafka.Error:
			if e.Code() == kafka.ErrAutoOffsetReset {
				// An out-of-range fetch, reported without its partition: find which one.
				ix.checkFetchPositions(ctx, e)
				continue
			}
			if e.IsFatal() {
				fatal = fmt.Errorf("kafka: %w", e)
				break loop
			}
			// Broker down, all brokers down, timeouts: librdkafka reconnects by itself; we wait.
			ix.metrics.Retried("kafka")
			ix.log.Warn("kafka error; librdkafka retries", "error", e.Error(), "code", e.Code().String())
		case kafka.OffsetsCommitted:
			if e.Error != nil {
				ix.log.Debug("best-effort Kafka offset commit failed", "error", e.Error)
			}
		}
	}
	ix.shutdown(ctx, fatal)
}

// shutdown flushes every worker in parallel until ctx (the run ctx, cancelled by a hard stop) is done; the
// fence makes an unfinished one harmless. After a fatal error nothing more is written.
func (ix *Indexer) shutdown(ctx context.Context, fatal error) {
	if fatal != nil {
		ix.cancel()
	}
	ix.stopWorkers(ctx, ix.allPartitions())
	ix.cancel()
	// Close leaves the group; the revoke it triggers finds no workers left.
	if err := ix.consumer.Close(); err != nil {
		ix.log.Warn("close Kafka consumer", "error", err)
	}
	ix.metrics.PartitionsOwned(0)
	ix.err = fatal
	if fatal != nil {
		ix.log.Error("indexer stopped", "error", fatal)
	} else {
		ix.log.Info("indexer stopped")
	}
}

func (ix *Indexer) allPartitions() []partitionKey {
	out := make([]partitionKey, 0, len(ix.workers))
	for tp := range ix.workers {
		out = append(out, tp)
	}
	return out
}

func (ix *Indexer) route(ctx context.Context, m *kafka.Message) {
	if m.TopicPartition.Topic == nil {
		return
	}
	tp := partitionKey{*m.TopicPartition.Topic, m.TopicPartition.Partition}
	w, ok := ix.workers[tp]
	if !ok {
		return // a message of a partition revoked a moment ago
	}
	ix.metrics.MessageConsumed(tp.topic)
	queued, messages := w.q.push(record{offset: int64(m.TopicPartition.Offset), key: m.Key, value: m.Value})
	w.fetchNext = max(w.fetchNext, m.TopicPartition.Offset+1)
	if at := pauseAt(ix.limits.Load().QueueMaxBytes, queued, messages); at > 0 && !w.paused.Load() {
		if ix.holdForRoom(ctx, w) {
			return
		}
		if err := ix.consumer.Pause([]kafka.TopicPartition{m.TopicPartition}); err != nil {
			ix.log.Warn("pause partition", "topic", tp.topic, "partition", tp.partition, "error", err)
			return
		}
		w.paused.Store(true)
		w.q.release()
		w.resumeBelow = max(at/2, 1) // an empty queue resumes whatever the limit, even --queue-max-bytes 1
		ix.paused++
		ix.metrics.PartitionsPaused(ix.paused)
		ix.log.Debug("partition paused: worker queue full", "topic", tp.topic, "partition", tp.partition,
			"queued_bytes", queued)
	}
}

// holdForRoom is the poll loop's answer to w's queue reaching its limit, and says whether the partition can go
// on without a pause. A queue fills while its worker's last batch commits; pausing the partition would make
// librdkafka drop what it had fetched ahead for it and fetch it again on the resume. So w may go over its
// share while the queues of the partitions not paused hold less than half of theirs together (as full queues
// of small messages do); at that, the loop waits for any worker to work the total down by a quarter, for at
// most PauseAfter, and pauses only a worker still full after it. A paused partition's queue leaves the total
// until its resume, so that a stuck worker holds no one else back. While the loop waits, librdkafka keeps what it has fetched and
// fetches no further than its bounded prefetch, and rebalances wait too, by about a commit. When the indexer
// or w is ending there is nothing to pause for.
func (ix *Indexer) holdForRoom(ctx context.Context, w *worker) bool {
	share := max(len(ix.workers)-ix.paused, 1) * max(ix.limits.Load().QueueMaxBytes/2, 1) // paused ones' do not count
	room := ix.queued.roomFor(share, share-share/4)
	if room == nil {
		return true
	}
	ix.metrics.ConsumerHeld(true)
	defer ix.metrics.ConsumerHeld(false)
	timer := time.NewTimer(min(ix.cfg.PauseAfter, ix.startsBudget())) // never near max.poll.interval.ms
	defer timer.Stop()
	select {
	case <-room:
		return true
	case <-timer.C:
		return false
	case <-ctx.Done():
	case <-ix.stopCh:
	case <-w.done:
	}
	return true
}

// queueMinMessages is how many messages a worker's queue holds before half of QueueMaxBytes makes it full.
const queueMinMessages = 16

// pauseAt returns the limit a worker's queue of bytes and messages has reached, where it is full (and, past
// holdForRoom, its partition paused), or 0 while it may grow. A pause drops what librdkafka had fetched ahead
// for the partition, and the resume, at half the limit reached, fetches again: the queue must hold enough
// to decode from meanwhile. Half
// of QueueMaxBytes holds thousands of small messages (ethereum-etl items, ≈ 1 KB), and the bytes queued are
// heap the collector carries at 1+GOGC/100 times their size, so a queue of small messages pauses there; a
// queue of large ones (a mainnet bundle is ≈ 600 KB) fills the whole limit, since half of it is only a few
// blocks, less than one batch: with 4 MiB queues the bundle scenario of make bench took 5–10 % longer and its
// broker refetched more, with 8 MiB items cost 35 MiB more RSS at GOGC 80 (docs/performance.md).
func pauseAt(limit, bytes, messages int) int {
	switch {
	case bytes >= limit:
		return limit
	case bytes >= limit/2 && messages >= queueMinMessages:
		return limit / 2
	}
	return 0
}

// resumeDrained resumes paused partitions whose worker has worked its queue down below half the limit it
// was paused at. Checking here, on every poll, rather than on a signal from the worker cannot miss a drain
// that happened between the push that filled the queue and the pause.
func (ix *Indexer) resumeDrained() {
	if ix.paused == 0 {
		return
	}
	for tp, w := range ix.workers {
		if w.paused.Load() && w.q.size() < w.resumeBelow {
			ix.resumePartition(tp, w)
		}
	}
}

func (ix *Indexer) resumePartition(tp partitionKey, w *worker) {
	topic := tp.topic
	if err := ix.consumer.Resume([]kafka.TopicPartition{{Topic: &topic, Partition: tp.partition}}); err != nil {
		ix.log.Warn("resume partition", "topic", tp.topic, "partition", tp.partition, "error", err)
		return
	}
	// librdkafka applies a resume only when the broker thread next wakes, up to a second later (the debug
	// log shows fetches resuming on a one-second beat; confluent-kafka-go#630), and a pause has already
	// dropped what it had pre-fetched for the partition. A seek to the next offset we need starts the
	// fetcher at once. The offset is exactly the one after the last message routed to the worker, so
	// nothing is skipped; anything delivered twice is dropped by the worker (offsets below its next).
	if w.fetchNext > 0 {
		seek := kafka.TopicPartition{Topic: &topic, Partition: tp.partition, Offset: w.fetchNext}
		if err := ix.consumer.Seek(seek, 0); err != nil {
			ix.log.Warn("seek resumed partition", "topic", tp.topic, "partition", tp.partition, "error", err)
		}
	}
	w.paused.Store(false)
	w.q.count(&ix.queued)
	ix.paused--
	ix.metrics.PartitionsPaused(ix.paused)
	ix.log.Debug("partition resumed", "topic", tp.topic, "partition", tp.partition)
}

// partitionError handles a fetch error of one partition, delivered as a message with an error.
func (ix *Indexer) partitionError(ctx context.Context, m *kafka.Message) {
	if m.TopicPartition.Topic == nil {
		return
	}
	tp := partitionKey{*m.TopicPartition.Topic, m.TopicPartition.Partition}
	var kerr kafka.Error
	if errors.As(m.TopicPartition.Error, &kerr) && kerr.Code() == kafka.ErrAutoOffsetReset {
		ix.fetchOutOfRange(ctx, tp, m.TopicPartition.Error)
		return
	}
	ix.metrics.Retried("kafka")
	ix.log.Warn("partition fetch error; librdkafka retries", "topic", tp.topic, "partition", tp.partition,
		"error", m.TopicPartition.Error)
}

// handleEnded deals with a worker that stopped by itself: a fence restarts the partition, an error is fatal.
func (ix *Indexer) handleEnded(ctx context.Context, o outcome) error {
	w, ok := ix.workers[o.tp]
	if !ok || w != o.w {
		return nil // already stopped by a revoke or shutdown, maybe reassigned since
	}
	if o.err != nil {
		return fmt.Errorf("partition %s/%d: %w", o.tp.topic, o.tp.partition, o.err)
	}
	if !o.fenced {
		return nil
	}
	// Fenced: pause, forget what was queued, and start again from what Postgres holds. If this instance is a
	// zombie, the group revokes the partition soon and this worker goes with it.
	topic := o.tp.topic
	tp := kafka.TopicPartition{Topic: &topic, Partition: o.tp.partition}
	if !w.paused.Load() {
		if err := ix.consumer.Pause([]kafka.TopicPartition{tp}); err != nil {
			ix.log.Warn("pause fenced partition", "topic", topic, "partition", o.tp.partition, "error", err)
		}
	} else {
		ix.paused--
		ix.metrics.PartitionsPaused(ix.paused)
	}
	delete(ix.workers, o.tp)
	w.q.release()
	ix.rebudget()
	rctx, cancel := context.WithTimeout(ctx, ix.startsBudget())
	starts, err := ix.readStarts(rctx, []kafka.TopicPartition{tp})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // a hard stop, not a failure of the partition
		}
		return err
	}
	if a, anomalous := ix.checkContinuity(starts[0], time.Now().Add(watermarkTimeout)); anomalous {
		ix.hold(a) // the partition stays paused, with no worker, until the anomaly is resolved
		return nil
	}
	if starts[0].Offset >= 0 {
		tp.Offset = starts[0].Offset
		if err := ix.consumer.Seek(tp, 0); err != nil {
			ix.log.Warn("seek fenced partition", "topic", topic, "partition", o.tp.partition, "error", err)
		}
	}
	ix.startWorker(ctx, o.tp, int64(starts[0].Offset))
	if err := ix.consumer.Resume([]kafka.TopicPartition{tp}); err != nil {
		ix.log.Warn("resume fenced partition", "topic", topic, "partition", o.tp.partition, "error", err)
	}
	ix.log.Info("fenced partition restarted from Postgres", "topic", topic, "partition", o.tp.partition,
		"next_offset", int64(starts[0].Offset))
	return nil
}

// rebalance runs inside Poll on the poll loop goroutine.
func (ix *Indexer) rebalance(ctx context.Context, c *kafka.Consumer, ev kafka.Event) error {
	cooperative := c.GetRebalanceProtocol() == "COOPERATIVE"
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		// This runs inside Poll: a Postgres that does not answer must not hold it past max.poll.interval.ms,
		// or the group would evict this member while it waits.
		rctx, cancel := context.WithTimeout(ctx, ix.startsBudget())
		parts, err := ix.readStarts(rctx, e.Partitions)
		cancel()
		if err != nil {
			// Without starting offsets we cannot own these partitions safely. The indexer stops with the
			// error (the poll loop sees it after this callback returns): the group moves the partitions to a
			// healthy instance, and a restart resumes from Postgres. After a stop request it is no failure.
			select {
			case <-ix.stopCh:
			default:
				if ctx.Err() == nil {
					ix.failed = err
				}
			}
			ix.log.Error("cannot read starting offsets; stopping", "error", err)
			if cooperative {
				return c.IncrementalAssign(nil)
			}
			return c.Assign(nil)
		}
		// A partition whose stored offset is outside its log is assigned (it is ours) but held paused, at
		// its end, with no worker; see continuity.go.
		var held []OffsetAnomaly
		deadline := time.Now().Add(ix.startsBudget())
		for i, p := range parts {
			if a, anomalous := ix.checkContinuity(p, deadline); anomalous {
				held = append(held, a)
				parts[i].Offset = kafka.OffsetEnd
				continue
			}
			ix.startWorker(ctx, partitionKey{*p.Topic, p.Partition}, int64(p.Offset))
		}
		if cooperative {
			err = c.IncrementalAssign(parts)
		} else {
			err = c.Assign(parts)
		}
		if err != nil {
			ix.log.Error("assign partitions", "error", err)
		}
		// A partition's pause survives its revocation (a held partition, a full queue), so one assigned again
		// must be resumed; a resume of one that is not paused changes nothing.
		var consume []kafka.TopicPartition
		for _, p := range parts {
			if _, ok := ix.workers[partitionKey{*p.Topic, p.Partition}]; ok {
				consume = append(consume, kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition})
			}
		}
		if len(consume) > 0 {
			if rerr := c.Resume(consume); rerr != nil {
				ix.log.Warn("resume assigned partitions", "error", rerr)
			}
		}
		for _, a := range held {
			ix.hold(a)
		}
		ix.joined.Store(true)
		ix.metrics.PartitionsOwned(len(ix.workers))
		ix.log.Info("partitions assigned", "partitions", describe(parts), "protocol", c.GetRebalanceProtocol(),
			"owned", len(ix.workers))
		return err
	case kafka.RevokedPartitions:
		lost := c.AssignmentLost()
		keys := make([]partitionKey, 0, len(e.Partitions))
		for _, p := range e.Partitions {
			keys = append(keys, partitionKey{*p.Topic, p.Partition})
		}
		flush, cancel := context.WithTimeout(ctx, ix.cfg.RevokeFlushTimeout)
		if lost {
			cancel() // someone else may own them already: do not even try to write
		}
		ix.log.Debug("revoking partitions: committing what their workers hold", "partitions", describe(e.Partitions),
			"lost", lost, "flush_timeout", ix.cfg.RevokeFlushTimeout)
		ix.stopWorkers(flush, keys)
		cancel()
		for _, k := range keys {
			ix.release(k)
		}
		var err error
		if cooperative {
			err = c.IncrementalUnassign(e.Partitions)
		} else {
			err = c.Unassign()
		}
		ix.metrics.PartitionsOwned(len(ix.workers))
		ix.log.Info("partitions revoked", "partitions", describe(e.Partitions), "lost", lost, "owned", len(ix.workers))
		return err
	}
	return nil
}

// readStarts returns parts with the offsets to start from: the stored next offset, or the reset point (with
// Offset < 0) for partitions that have never committed. Transient errors are retried until stop.
func (ix *Indexer) readStarts(ctx context.Context, parts []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	byTopic := map[string][]int32{}
	for _, p := range parts {
		byTopic[*p.Topic] = append(byTopic[*p.Topic], p.Partition)
	}
	stored := map[partitionKey]int64{}
	// Retries end with a stop request too: this runs inside Poll, so the poll loop cannot see one itself.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ix.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	policy := retry.Policy{Initial: ix.cfg.RetryInitial, Max: ix.cfg.RetryMax}
	onRetry := func(attempt int, wait time.Duration, err error) {
		ix.metrics.Retried("postgres")
		ix.log.Info("transient Postgres error reading offsets; retrying", "error", err, "attempt", attempt, "backoff", wait)
	}
	// A read that got no answer in time is worth another try, as long as the indexer itself goes on.
	errNoAnswer := errors.New("no answer from Postgres within 30s")
	retryable := func(err error) bool { return errors.Is(err, errNoAnswer) || store.IsTransient(err) }
	for topic, ps := range byTopic {
		offs, err := retry.DoValue(ctx, policy, retryable, onRetry, func(actx context.Context) (map[int32]int64, error) {
			actx, cancel := context.WithTimeout(actx, 30*time.Second)
			defer cancel()
			offs, err := store.NextOffsets(actx, ix.db, ix.cfg.Group, topic, ps)
			if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("%w: %w", errNoAnswer, err)
			}
			return offs, err
		})
		if err != nil {
			return nil, fmt.Errorf("read starting offsets of %s: %w", topic, err)
		}
		for p, o := range offs {
			stored[partitionKey{topic, p}] = o
		}
	}
	out := make([]kafka.TopicPartition, len(parts))
	for i, p := range parts {
		out[i] = p
		if o, ok := stored[partitionKey{*p.Topic, p.Partition}]; ok {
			out[i].Offset = kafka.Offset(o)
		} else {
			// No row: start at the reset point (auto.offset.reset), never at Kafka's committed offset, which
			// may be ahead of what Postgres holds (a restored or wiped database).
			out[i].Offset = kafka.OffsetInvalid
			if rp, _ := ix.resetPoint(); rp == "latest" || rp == "end" || rp == "largest" {
				out[i].Offset = kafka.OffsetEnd
			} else {
				out[i].Offset = kafka.OffsetBeginning
			}
		}
	}
	return out, nil
}

// startsBudget bounds reading starting offsets on the poll loop (in the rebalance callback, and when a fenced
// partition restarts): a third of max.poll.interval.ms, at most a minute. Past it the indexer stops with the
// error, and the group moves the partitions to a member that can read them.
func (ix *Indexer) startsBudget() time.Duration {
	budget := time.Minute
	if v, ok := ix.cfg.KafkaConfig["max.poll.interval.ms"]; ok {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			budget = min(budget, time.Duration(ms)*time.Millisecond/3)
		}
	}
	return budget
}

func (ix *Indexer) resetPoint() (string, bool) {
	v, ok := ix.cfg.KafkaConfig["auto.offset.reset"]
	return v, ok
}

func (ix *Indexer) startWorker(ctx context.Context, tp partitionKey, start int64) {
	if start < 0 {
		start = -1
	}
	w := &worker{
		tp: tp, topic: ix.topics[tp.topic], cfg: ix.cfg, db: ix.db, writer: ix.writer, partitions: ix.partitions, metrics: ix.metrics,
		log: ix.log.With("topic", tp.topic, "partition", tp.partition), q: newQueue(&ix.queued), start: start,
		onCommit: ix.storeOffset, onRetry: ix.setRetrying, limits: &ix.limits, highWatermark: ix.highWatermark(tp),
	}
	ix.workers[tp] = w
	ix.rebudget()
	w.run(ctx)
	w.lastNext.Store(start) // -1: nothing stored yet
	go func() {
		<-w.done
		if w.result.fenced || w.result.err != nil {
			select {
			case ix.ended <- w.result:
			case <-ix.done:
			}
		}
	}()
}

// highWatermark reads the high watermark that librdkafka cached for tp from its last fetch response (no
// request; safe to call from a worker's goroutine), or -1 while there is none.
func (ix *Indexer) highWatermark(tp partitionKey) func() int64 {
	return func() int64 {
		_, high, err := ix.consumer.GetWatermarkOffsets(tp.topic, tp.partition)
		if err != nil {
			return -1
		}
		return high
	}
}

// stopWorkers stops the workers of keys in parallel, each flushing its last batch until flush is done.
func (ix *Indexer) stopWorkers(flush context.Context, keys []partitionKey) {
	var wg sync.WaitGroup
	for _, tp := range keys {
		w, ok := ix.workers[tp]
		if !ok {
			continue
		}
		delete(ix.workers, tp)
		w.q.release()
		ix.setRetrying(tp, time.Time{})
		if w.paused.Load() {
			ix.paused--
			ix.metrics.PartitionsPaused(ix.paused)
		}
		ix.metrics.PartitionReleased(tp.topic, tp.partition)
		wg.Go(func() { w.stop(flush) })
	}
	ix.rebudget()
	wg.Wait()
}

// rebudget shares the memory limit among the partitions owned now. A partition's queue is checked against
// its new limit at its next message, and a worker's batch at its next add: a partition assigned among many
// gives back what is over its share as it works.
func (ix *Indexer) rebudget() {
	l := ix.cfg.Budget(len(ix.workers))
	ix.limits.Store(&l)
}

// storeOffset hands a committed offset to librdkafka's auto-commit, best effort. It runs on committer
// goroutines; StoreOffsets is safe to call concurrently with Poll.
func (ix *Indexer) storeOffset(tp partitionKey, next int64) {
	topic := tp.topic
	if _, err := ix.consumer.StoreOffsets([]kafka.TopicPartition{{Topic: &topic, Partition: tp.partition,
		Offset: kafka.Offset(next)}}); err != nil {
		ix.log.Debug("store offset for Kafka commit", "topic", topic, "partition", tp.partition, "error", err)
	}
	ix.setLag(tp, next)
}

func (ix *Indexer) setLag(tp partitionKey, next int64) {
	_, high, err := ix.consumer.GetWatermarkOffsets(tp.topic, tp.partition)
	if err != nil || high < 0 {
		return
	}
	// Not clamped: a negative lag is a stored offset above the log's end, which must show.
	ix.metrics.ConsumerLag(tp.topic, tp.partition, high-next)
}

// updateLag refreshes the lag of partitions whose worker has not committed lately (e.g. idle or stuck).
func (ix *Indexer) updateLag() {
	for tp, w := range ix.workers {
		if n := w.lastNext.Load(); n > 0 {
			ix.setLag(tp, n)
		}
	}
}

// setRetrying records that tp has been retrying its batch since since; the zero time clears it.
func (ix *Indexer) setRetrying(tp partitionKey, since time.Time) {
	ix.retryMu.Lock()
	defer ix.retryMu.Unlock()
	if since.IsZero() {
		delete(ix.retrying, tp)
	} else {
		ix.retrying[tp] = since
	}
}

// StuckFor is how long the longest-retrying partition has been retrying its current batch (0 if none).
func (ix *Indexer) StuckFor() time.Duration {
	ix.retryMu.Lock()
	defer ix.retryMu.Unlock()
	var d time.Duration
	for _, since := range ix.retrying {
		d = max(d, time.Since(since))
	}
	return d
}

func describe(parts []kafka.TopicPartition) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s/%d@%s", *p.Topic, p.Partition, p.Offset)
	}
	return s
}
