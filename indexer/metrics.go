package indexer

import (
	"time"

	"github.com/chainsink/chainsink/store/chain"
)

// Metrics receives what the indexer measures. chainsink's own implementation is Prometheus
// (internal/metrics); a nil Metrics in New measures nothing. Methods are called from the poll loop and from
// every partition's goroutines, so an implementation must be safe for concurrent use, and cheap: some run once
// per message.
type Metrics interface {
	// MessageConsumed counts a message handed to a partition worker.
	MessageConsumed(topic string)
	// MessageDecoded observes the time one message took to decode.
	MessageDecoded(took time.Duration)
	// BatchCommitted reports a committed batch: the rows it wrote per table, the reason of each message it
	// stored as a dead letter, and how long the write and commit took.
	BatchCommitted(rows chain.Counts, deadLetterReasons []string, took time.Duration)
	// BatchFenced counts a batch rolled back because another owner had advanced its partition.
	BatchFenced()
	// Retried counts an operation retried after a transient error; kind is "postgres" or "kafka".
	Retried(kind string)
	// PartitionsOwned is the number of partitions this instance owns, after each rebalance.
	PartitionsOwned(n int)
	// PartitionsPaused is the number of partitions paused for backpressure, after each change.
	PartitionsPaused(n int)
	// ConsumerHeld reports that the poll loop starts (true) or stops (false) waiting for room in a full
	// worker queue (Config.PauseAfter).
	ConsumerHeld(held bool)
	// ConsumerLag is the broker's high watermark minus the partition's stored next offset.
	ConsumerLag(topic string, partition int32, lag int64)
	// PartitionReleased forgets what was measured per partition when the instance no longer owns it.
	PartitionReleased(topic string, partition int32)
	// OffsetAnomaly reports that a partition is held (active) or no longer held because its stored offset is
	// outside its log; kind is AnomalyLogRegressed or AnomalyRetentionGap.
	OffsetAnomaly(topic string, partition int32, kind string, active bool)
}

type nopMetrics struct{}

func (nopMetrics) MessageConsumed(string)                               {}
func (nopMetrics) MessageDecoded(time.Duration)                         {}
func (nopMetrics) BatchCommitted(chain.Counts, []string, time.Duration) {}
func (nopMetrics) BatchFenced()                                         {}
func (nopMetrics) Retried(string)                                       {}
func (nopMetrics) PartitionsOwned(int)                                  {}
func (nopMetrics) PartitionsPaused(int)                                 {}
func (nopMetrics) ConsumerHeld(bool)                                    {}
func (nopMetrics) ConsumerLag(string, int32, int64)                     {}
func (nopMetrics) PartitionReleased(string, int32)                      {}
func (nopMetrics) OffsetAnomaly(string, int32, string, bool)            {}
