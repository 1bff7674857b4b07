package deadletters

import (
	"fmt"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/internal/logging"
)

// Producer is what Replay needs from a Kafka producer; *kafka.Producer satisfies it. Produce queues msg and,
// when it returns nil, later sends exactly one delivery report on deliveryChan: a *kafka.Message carrying
// msg's Opaque, with TopicPartition.Error set when the message was not delivered.
type Producer interface {
	Produce(msg *kafka.Message, deliveryChan chan kafka.Event) error
}

var _ Producer = (*kafka.Producer)(nil)

// ProducerConfig is the librdkafka configuration of a replay's producer, before bootstrap.servers and the
// user's overrides.
func ProducerConfig() kafka.ConfigMap {
	return kafka.ConfigMap{
		"client.id": "chainsink-replay",
		// Bundles of big blocks are several MiB; librdkafka's default of 1 MB would refuse them.
		"message.max.bytes": 32 << 20,
		// Bounds how long Replay waits for a delivery report (librdkafka's default is 5 minutes), which it
		// does even after its context is cancelled.
		"message.timeout.ms":  60000,
		"linger.ms":           5,
		"enable.metrics.push": false,
	}
}

// FixedProducerConfig holds the settings that a replay's guarantees depend on; a user may repeat them but not
// change them. Idempotence keeps librdkafka's retries from duplicating or reordering messages.
func FixedProducerConfig() map[string]string {
	return map[string]string{"enable.idempotence": "true"}
}

// NewProducer creates a producer from cm (ProducerConfig, then bootstrap.servers and the user's settings,
// then FixedProducerConfig) and logs its client-level errors, which are not delivery reports and so would
// otherwise go unseen. Close it once Replay has returned.
func NewProducer(cm *kafka.ConfigMap, logger *slog.Logger) (*kafka.Producer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// librdkafka's own lines go through the logger, not raw to stderr.
	if err := cm.SetKey("go.logs.channel.enable", true); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	p, err := kafka.NewProducer(cm)
	if err != nil {
		return nil, fmt.Errorf("create Kafka producer: %w", err)
	}
	go logging.ForwardKafkaLogs(p.Logs(), logger)
	go func() { // ends when Close closes the channel
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				logger.Warn("kafka producer", "error", e, "fatal", e.IsFatal())
			}
		}
	}()
	return p, nil
}
