package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/logging"
)

// Publisher sends messages to the topic. done is called exactly once per accepted message, from any
// goroutine, with the delivery result (nil once Kafka has acknowledged it).
type Publisher interface {
	Publish(ctx context.Context, key, value []byte, done func(error)) error
}

// ProducerConfig is the librdkafka configuration of the backfill producer, before the user's --kafka-config.
func ProducerConfig() kafka.ConfigMap {
	return kafka.ConfigMap{
		"client.id":           "chainsink-backfill",
		"enable.metrics.push": false,
		"linger.ms":           5,
		"compression.type":    "lz4",
		"message.max.bytes":   format.MaxMessageBytes + 1<<20, // a 16 MiB value plus key and framing
		// A delivery report is matched to its message by its Opaque: copying each message's key and value
		// back from C into Go for the report (confluent-kafka-go's default) was a tenth of backfill's CPU.
		"go.delivery.report.fields": "none",
		// librdkafka's default partitioner, consistent_random, hashes the key: one height, one partition.
	}
}

// FixedProducerConfig holds the settings that the exactly-once delivery of every block depends on; the user
// may repeat them but not change them.
func FixedProducerConfig() map[string]string {
	return map[string]string{"enable.idempotence": "true", "acks": "all"}
}

// KafkaPublisher is a confluent-kafka-go (librdkafka) idempotent producer. Delivery reports are read from
// the producer's events channel by a goroutine of its own and handed to each message's done callback.
type KafkaPublisher struct {
	producer *kafka.Producer
	topic    string
	logger   *slog.Logger
	events   sync.WaitGroup
	logs     sync.WaitGroup // the forwarder of librdkafka's log lines, which ends when Close closes their channel

	mu    sync.Mutex
	fatal error
}

// NewKafkaPublisher creates the producer. cm must hold bootstrap.servers.
func NewKafkaPublisher(topic string, cm *kafka.ConfigMap, logger *slog.Logger) (*KafkaPublisher, error) {
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
	kp := &KafkaPublisher{producer: p, topic: topic, logger: logger}
	kp.logs.Add(1)
	go func() {
		defer kp.logs.Done()
		logging.ForwardKafkaLogs(p.Logs(), logger)
	}()
	kp.events.Add(1)
	go kp.readEvents()
	return kp, nil
}

func (p *KafkaPublisher) readEvents() {
	defer p.events.Done()
	for ev := range p.producer.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			if done, ok := e.Opaque.(func(error)); ok {
				done(e.TopicPartition.Error)
			}
		case kafka.Error:
			if e.IsFatal() {
				p.mu.Lock()
				if p.fatal == nil {
					p.fatal = e
				}
				p.mu.Unlock()
				p.logger.Error("Kafka producer failed", "error", e)
			} else {
				p.logger.Warn("Kafka producer error (librdkafka retries)", "error", e)
			}
		}
	}
}

// Publish implements Publisher. A full local queue is waited out.
func (p *KafkaPublisher) Publish(ctx context.Context, key, value []byte, done func(error)) error {
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &p.topic, Partition: kafka.PartitionAny},
		Key:            key,
		Value:          value,
		Opaque:         done,
	}
	for {
		p.mu.Lock()
		fatal := p.fatal
		p.mu.Unlock()
		if fatal != nil {
			return fmt.Errorf("kafka producer: %w", fatal)
		}
		err := p.producer.Produce(msg, nil)
		var ke kafka.Error
		if err == nil {
			return nil
		}
		if !errors.As(err, &ke) || ke.Code() != kafka.ErrQueueFull {
			return fmt.Errorf("produce to %s: %w", p.topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the producer. Call it once every delivery has been reported (Run waits for them); what is
// still queued is discarded.
func (p *KafkaPublisher) Close() {
	if p.producer.Len() > 0 {
		_ = p.producer.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
	}
	p.producer.Close()
	p.events.Wait()
	// No log line is written after Close: the caller may own the logger's writer from then on.
	p.logs.Wait()
}
