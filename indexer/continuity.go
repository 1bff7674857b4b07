package indexer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Offset continuity. Postgres says where a partition goes on (its stored next offset); the broker says which
// offsets exist (the log start and end). When the two disagree, consuming would lose data without a word: a
// log that restarted at 0 (a recreated topic, a failover to another cluster, an unclean leader election)
// would have every message below the stored offset dropped as "delivered again", and a log whose start
// passed the stored offset (retention) would have the batch's range jump the deleted messages. So such a
// partition is not consumed: it is held paused, reported (log, metric, /readyz, `chainsink status`), and
// rechecked until an operator resolves it with `chainsink offsets set`, which is recorded.

// Anomaly kinds.
const (
	// AnomalyLogRegressed: the stored offset is above the log's end.
	AnomalyLogRegressed = "log_regressed"
	// AnomalyRetentionGap: the stored offset is below the log's start; the messages in between are gone.
	AnomalyRetentionGap = "retention_gap"
)

// OffsetOK is the state of a stored offset inside its log.
const OffsetOK = "ok"

// OffsetState says where a stored next offset stands against its partition's log [start, end]: OffsetOK,
// AnomalyLogRegressed or AnomalyRetentionGap. `chainsink status` and `offsets list` use the same rule.
func OffsetState(stored, start, end int64) string {
	switch {
	case stored > end:
		return AnomalyLogRegressed
	case stored < start:
		return AnomalyRetentionGap
	}
	return OffsetOK
}

// OffsetAnomaly is a partition that is not consumed because its stored offset is outside its log.
type OffsetAnomaly struct {
	Topic     string
	Partition int32
	Kind      string
	// Stored is the partition's next offset in Postgres; LogStart and LogEnd the broker's first offset and
	// high watermark.
	Stored, LogStart, LogEnd int64
	Since                    time.Time
}

func (a OffsetAnomaly) String() string {
	what := "is above the log's end: the topic was recreated or the log regressed"
	if a.Kind == AnomalyRetentionGap {
		what = "is below the log's start: retention deleted messages that were never stored"
	}
	return fmt.Sprintf("%s/%d: stored next offset %d %s (log %d to %d); resolve with chainsink offsets set",
		a.Topic, a.Partition, a.Stored, what, a.LogStart, a.LogEnd)
}

// OffsetAnomalies lists the partitions this instance owns but does not consume, oldest first.
func (ix *Indexer) OffsetAnomalies() []OffsetAnomaly {
	ix.anomMu.Lock()
	defer ix.anomMu.Unlock()
	out := make([]OffsetAnomaly, 0, len(ix.anomalies))
	for _, a := range ix.anomalies {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b OffsetAnomaly) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(fmt.Sprint(a.Topic, a.Partition), fmt.Sprint(b.Topic, b.Partition))
	})
	return out
}

// Anomalies describes OffsetAnomalies for /readyz.
func (ix *Indexer) Anomalies() []string {
	var out []string
	for _, a := range ix.OffsetAnomalies() {
		out = append(out, a.String())
	}
	return out
}

// watermarkTimeout bounds each broker query of a partition's log start and end.
const watermarkTimeout = 5 * time.Second

// checkContinuity compares the stored offset of each of parts with its log and returns the anomaly, if any.
// A partition with no stored offset (Offset < 0: it starts at the reset point) cannot have one. When the
// broker cannot be asked, the partition is taken as it is, with a warning: an assignment has just come from
// that broker, and an offset that is really out of range is caught when the fetch fails (see route).
//
// The broker is asked until deadline at the latest (each query at most watermarkTimeout): this runs on the
// poll loop, often inside the rebalance callback. Past it, partitions are taken unchecked, with a warning.
func (ix *Indexer) checkContinuity(p kafka.TopicPartition, deadline time.Time) (OffsetAnomaly, bool) {
	if p.Offset < 0 {
		return OffsetAnomaly{}, false
	}
	timeout := min(watermarkTimeout, time.Until(deadline))
	if timeout <= 0 {
		ix.log.Warn("no time left to check the stored offset against the log", "topic", *p.Topic,
			"partition", p.Partition, "stored_next_offset", int64(p.Offset))
		return OffsetAnomaly{}, false
	}
	low, high, err := ix.consumer.QueryWatermarkOffsets(*p.Topic, p.Partition, int(timeout.Milliseconds()))
	if err != nil {
		ix.log.Warn("cannot read the log's start and end to check the stored offset", "topic", *p.Topic,
			"partition", p.Partition, "stored_next_offset", int64(p.Offset), "error", err)
		return OffsetAnomaly{}, false
	}
	a := OffsetAnomaly{Topic: *p.Topic, Partition: p.Partition, Stored: int64(p.Offset), LogStart: low, LogEnd: high,
		Since: time.Now(), Kind: OffsetState(int64(p.Offset), low, high)}
	return a, a.Kind != OffsetOK
}

// hold records a and keeps its partition assigned but paused, with no worker, until it is resolved.
func (ix *Indexer) hold(a OffsetAnomaly) {
	tp := partitionKey{a.Topic, a.Partition}
	topic := a.Topic
	if err := ix.consumer.Pause([]kafka.TopicPartition{{Topic: &topic, Partition: a.Partition}}); err != nil {
		ix.log.Warn("pause partition with an offset anomaly", "topic", a.Topic, "partition", a.Partition, "error", err)
	}
	ix.anomMu.Lock()
	if old, ok := ix.anomalies[tp]; ok {
		a.Since = old.Since
	}
	ix.anomalies[tp] = a
	ix.anomMu.Unlock()
	ix.metrics.OffsetAnomaly(a.Topic, a.Partition, a.Kind, true)
	ix.metrics.ConsumerLag(a.Topic, a.Partition, a.LogEnd-a.Stored)
	ix.log.Error("offset anomaly: partition not consumed until resolved", "group", ix.cfg.Group, "topic", a.Topic,
		"partition", a.Partition, "kind", a.Kind, "stored_next_offset", a.Stored, "log_start", a.LogStart,
		"log_end", a.LogEnd, "resolve", fmt.Sprintf("chainsink offsets set --group %s --topic %s --partition %d --to N|earliest|latest",
			ix.cfg.Group, a.Topic, a.Partition))
}

// release forgets the anomaly of tp (revoked, or resolved) and reports whether there was one.
func (ix *Indexer) release(tp partitionKey) bool {
	ix.anomMu.Lock()
	a, ok := ix.anomalies[tp]
	delete(ix.anomalies, tp)
	ix.anomMu.Unlock()
	if ok {
		ix.metrics.OffsetAnomaly(a.Topic, a.Partition, a.Kind, false)
	}
	return ok
}

func (ix *Indexer) held(tp partitionKey) bool {
	ix.anomMu.Lock()
	defer ix.anomMu.Unlock()
	_, ok := ix.anomalies[tp]
	return ok
}

// recheckAnomalies looks at every held partition again: when its stored offset (changed by `chainsink
// offsets set`) is inside its log now, the partition is assigned again there and consumed. It is bounded like
// the rebalance callback, and a failure only waits for the next tick: the partitions stay held and reported.
func (ix *Indexer) recheckAnomalies(ctx context.Context) {
	held := ix.OffsetAnomalies()
	if len(held) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, ix.startsBudget())
	defer cancel()
	tps := make([]kafka.TopicPartition, len(held))
	for i, a := range held {
		topic := a.Topic
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: a.Partition}
	}
	starts, err := ix.readStarts(rctx, tps)
	if err != nil {
		if ctx.Err() == nil {
			ix.log.Warn("recheck of held partitions failed; next try at the next tick", "error", err)
		}
		return
	}
	deadline := time.Now().Add(ix.startsBudget())
	for i, a := range held {
		start := starts[i]
		if b, still := ix.checkContinuity(start, deadline); still {
			if b.Stored != a.Stored || b.Kind != a.Kind || b.LogStart != a.LogStart || b.LogEnd != a.LogEnd {
				ix.hold(b)
			}
			continue
		}
		if err := ix.reassign(start); err != nil {
			_ = ix.consumer.Pause([]kafka.TopicPartition{{Topic: start.Topic, Partition: start.Partition}})
			ix.log.Warn("assign partition again after its offset anomaly; it stays held", "topic", a.Topic,
				"partition", a.Partition, "error", err)
			continue
		}
		key := partitionKey{a.Topic, a.Partition}
		ix.release(key)
		ix.startWorker(ctx, key, int64(start.Offset))
		ix.metrics.PartitionsOwned(len(ix.workers))
		ix.log.Info("offset anomaly resolved; consuming the partition", "topic", a.Topic, "partition", a.Partition,
			"next_offset", int64(start.Offset))
	}
}

// reassign starts fetching a held partition at start. After an out-of-range fetch librdkafka's fetcher for the
// partition is in an error state that a seek cannot leave ("Erroneous state"), so the partition is assigned
// again at the offset, and resumed (a pause is the partition's, kept across assignments).
func (ix *Indexer) reassign(start kafka.TopicPartition) error {
	tp := []kafka.TopicPartition{{Topic: start.Topic, Partition: start.Partition}}
	if ix.consumer.GetRebalanceProtocol() == "COOPERATIVE" {
		if err := ix.consumer.IncrementalUnassign(tp); err != nil {
			return err
		}
		if err := ix.consumer.IncrementalAssign([]kafka.TopicPartition{start}); err != nil {
			return err
		}
		return ix.consumer.Resume(tp)
	}
	// Eager protocol: assigning again would reset every partition's position, so seek; when the fetcher is in
	// the error state the seek fails, and the partition stays held (and reported) rather than silently stuck.
	if err := ix.consumer.Resume(tp); err != nil {
		return err
	}
	return ix.consumer.Seek(start, 0)
}

// fetchOutOfRange handles the broker's answer that a partition's fetch offset does not exist (librdkafka's
// _AUTO_OFFSET_RESET, since chainsink sets auto.offset.reset=error): retention passed the partition while it
// was being consumed, or the log regressed under it. The worker commits what it holds (contiguous, so
// correct), and the partition is held like one found out of range at assignment.
func (ix *Indexer) fetchOutOfRange(ctx context.Context, tp partitionKey, cause error) {
	if ix.held(tp) {
		return
	}
	if _, ok := ix.workers[tp]; ok {
		flush, cancel := context.WithTimeout(ctx, ix.cfg.RevokeFlushTimeout)
		ix.stopWorkers(flush, []partitionKey{tp})
		cancel()
	}
	topic := tp.topic
	rctx, cancel := context.WithTimeout(ctx, ix.startsBudget())
	starts, err := ix.readStarts(rctx, []kafka.TopicPartition{{Topic: &topic, Partition: tp.partition}})
	cancel()
	a, anomalous := OffsetAnomaly{}, false
	if err == nil {
		a, anomalous = ix.checkContinuity(starts[0], time.Now().Add(watermarkTimeout))
	}
	if !anomalous {
		// The log moved again, or Postgres cannot say: hold it anyway, with what is known, and let the recheck
		// decide. Consuming on would be the silent jump this exists to prevent.
		a = OffsetAnomaly{Topic: tp.topic, Partition: tp.partition, Kind: AnomalyRetentionGap, Stored: -1,
			LogStart: -1, LogEnd: -1, Since: time.Now()}
		if err == nil && starts[0].Offset >= 0 {
			a.Stored = int64(starts[0].Offset)
		}
	}
	ix.log.Warn("fetch offset out of range", "topic", tp.topic, "partition", tp.partition, "error", cause)
	ix.hold(a)
	ix.metrics.PartitionsOwned(len(ix.workers))
}

// checkFetchPositions finds the owned partitions whose next fetch offset is outside their log, after librdkafka
// reported an out-of-range fetch as a client error (which does not name the partition), and holds them.
func (ix *Indexer) checkFetchPositions(ctx context.Context, cause error) {
	for tp, w := range ix.workers {
		next := int64(w.fetchNext)
		if next <= 0 {
			next = w.lastNext.Load()
		}
		if next < 0 {
			continue
		}
		low, high, err := ix.consumer.QueryWatermarkOffsets(tp.topic, tp.partition, int(watermarkTimeout.Milliseconds()))
		if err != nil {
			ix.log.Warn("cannot read the log's start and end after an out-of-range fetch", "topic", tp.topic,
				"partition", tp.partition, "error", err)
			continue
		}
		if next < low || next > high {
			ix.fetchOutOfRange(ctx, tp, cause)
		}
	}
}
