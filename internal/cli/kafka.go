package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/indexer"
)

// kafkaFlags are the connection flags of the commands that talk to Kafka besides `run`.
type kafkaFlags struct {
	brokers string
	config  []string
}

func addKafkaFlags(cmd *cobra.Command, k *kafkaFlags, brokersUsage string) {
	f := cmd.Flags()
	f.StringVar(&k.brokers, "brokers", "", brokersUsage)
	f.StringArrayVar(&k.config, "kafka-config", nil, "librdkafka property key=value, repeatable (TLS, SASL, timeouts); in the environment, comma-separated")
}

// configMap is the librdkafka configuration: ours, then the user's --kafka-config over it, except the keys in
// fixed, which the command's guarantees depend on and which the user may only repeat with the same value.
func (k *kafkaFlags) configMap(ours kafka.ConfigMap, fixed map[string]string) (*kafka.ConfigMap, error) {
	user, err := parseKeyValues(k.config)
	if err != nil {
		return nil, err
	}
	cm := kafka.ConfigMap{"bootstrap.servers": k.brokers}
	for key, v := range ours {
		cm[key] = v
	}
	for key, v := range user {
		if want, ok := fixed[key]; ok && v != want {
			return nil, fmt.Errorf("kafka config %s=%s: this command needs %s=%s", key, v, key, want)
		}
		if err := cm.SetKey(key, v); err != nil {
			return nil, fmt.Errorf("kafka config %s: %w", key, err)
		}
	}
	for key, v := range fixed {
		cm[key] = v
	}
	return &cm, nil
}

// logBound is a partition's log: its first offset and its end (the high watermark, the next offset written).
type logBound struct{ start, end int64 }

// state says where next, a stored next offset, stands in the log (indexer.OffsetState).
func (b logBound) state(next int64) string { return indexer.OffsetState(next, b.start, b.end) }

// logBounds asks the brokers for every partition's log start and end (read_uncommitted: the end the consumer can
// eventually read) in two ListOffsets rounds, bounded by timeout.
func (k *kafkaFlags) logBounds(ctx context.Context, timeout time.Duration, tps []topicPartition) (map[topicPartition]logBound, map[topicPartition]error) {
	out := map[topicPartition]logBound{}
	errs := map[topicPartition]error{}
	failAll := func(err error) (map[topicPartition]logBound, map[topicPartition]error) {
		for _, tp := range tps {
			errs[tp] = err
		}
		return out, errs
	}
	cm, err := k.configMap(kafka.ConfigMap{"client.id": "chainsink", "enable.metrics.push": false}, nil)
	if err != nil {
		return failAll(err)
	}
	admin, err := kafka.NewAdminClient(cm)
	if err != nil {
		return failAll(fmt.Errorf("create Kafka admin client: %w", err))
	}
	defer admin.Close()
	list := func(spec kafka.OffsetSpec) (map[topicPartition]int64, error) {
		req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(tps))
		for _, tp := range tps {
			topic := tp.topic
			req[kafka.TopicPartition{Topic: &topic, Partition: tp.partition}] = spec
		}
		qctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		res, err := admin.ListOffsets(qctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadUncommitted),
			kafka.SetAdminRequestTimeout(timeout))
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
		got := map[topicPartition]int64{}
		for key, info := range res.ResultInfos {
			if key.Topic == nil {
				continue
			}
			tp := topicPartition{*key.Topic, key.Partition}
			if info.Error.Code() != kafka.ErrNoError {
				errs[tp] = info.Error
				continue
			}
			got[tp] = int64(info.Offset)
		}
		return got, nil
	}
	ends, err := list(kafka.LatestOffsetSpec)
	if err != nil {
		return failAll(err)
	}
	starts, err := list(kafka.EarliestOffsetSpec)
	if err != nil {
		return failAll(err)
	}
	for tp, end := range ends {
		if start, ok := starts[tp]; ok {
			out[tp] = logBound{start: start, end: end}
		}
	}
	return out, errs
}
