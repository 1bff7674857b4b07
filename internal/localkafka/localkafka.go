package localkafka

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configure a broker. The zero value listens on a random loopback port with no topics.
type Options struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// Topics to create, with their partition counts.
	Topics map[string]int32
	// DataDir, if set, persists the log so that a restarted broker keeps its messages.
	DataDir string
	// RetentionMs, if set, is the topics' retention.ms, applied by ApplyRetention.
	RetentionMs int64
}

// Broker is a running in-process broker.
type Broker struct {
	cluster  *kfake.Cluster
	producer *kgo.Client
}

// Start starts a single-node broker.
func Start(opts Options) (*Broker, error) {
	kopts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		// Let tests use short sessions so that a killed consumer's partitions move within seconds.
		kfake.GroupMinSessionTimeout(1000)}
	if opts.Port != 0 {
		kopts = append(kopts, kfake.Ports(opts.Port))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start local Kafka broker: %w", err)
	}
	var topicConfigs map[string]string
	if opts.RetentionMs > 0 {
		topicConfigs = map[string]string{"retention.ms": fmt.Sprint(opts.RetentionMs)}
	}
	for t, n := range opts.Topics {
		if err := c.CreateTopic(t, n, topicConfigs); err != nil && !strings.Contains(err.Error(), "exists") {
			c.Close()
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.MaxBufferedRecords(100000))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("create producer: %w", err)
	}
	return &Broker{cluster: c, producer: p}, nil
}

// Addr is the bootstrap address, host:port.
func (b *Broker) Addr() string { return strings.Join(b.cluster.ListenAddrs(), ",") }

// Cluster exposes kfake's controls (faults, group inspection) to tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Refetches counts, from the broker's side, the messages consumers fetch a second time: a fetch of a partition
// at an offset below one already asked for (a consumer that paused the partition dropped what it had fetched
// ahead, and fetches it again from where it stopped). Make one with Broker.CountRefetches.
type Refetches struct {
	mu    sync.Mutex
	asked map[refetchKey]int64
	n     int64
}

type refetchKey struct {
	topic     string
	partition int32
}

// CountRefetches starts counting refetches for the broker's life. A consumer that starts again from an
// earlier offset (a new group on the same topic) counts too: Reset between such consumers.
func (b *Broker) CountRefetches() *Refetches {
	r := &Refetches{asked: map[refetchKey]int64{}}
	c := b.cluster
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, t := range req.(*kmsg.FetchRequest).Topics {
			for _, p := range t.Partitions {
				k := refetchKey{fmt.Sprint(t.Topic, t.TopicID), p.Partition} // newer fetches name topics by ID
				if last, ok := r.asked[k]; ok && p.FetchOffset < last {
					r.n += last - p.FetchOffset
				}
				r.asked[k] = max(r.asked[k], p.FetchOffset)
			}
		}
		return nil, nil, false // the broker answers as always
	})
	return r
}

// Messages is how many messages were fetched again since the start or the last Reset.
func (r *Refetches) Messages() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Reset forgets the offsets asked for and the count.
func (r *Refetches) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.asked)
	r.n = 0
}

// Close stops the broker.
func (b *Broker) Close() {
	b.producer.Close()
	b.cluster.Close()
}

// Record is a message to publish into an explicit partition.
type Record struct {
	Topic     string
	Partition int32
	Key       []byte
	Value     []byte
}

// Produce publishes records and waits until the broker has them all, in order per partition.
func (b *Broker) Produce(ctx context.Context, records []Record) error {
	rs := make([]*kgo.Record, len(records))
	for i, r := range records {
		rs[i] = &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	}
	if err := b.producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d records: %w", len(records), err)
	}
	return nil
}

// HighWatermarks returns each partition's high watermark (the offset the next message will get).
func (b *Broker) HighWatermarks(topic string) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range b.cluster.PartitionInfos(topic) {
		if p != nil {
			out[p.Partition] = p.HighWatermark
		}
	}
	return out
}

// ApplyRetention deletes what the topics' retention settings allow; kfake never does it by itself.
func (b *Broker) ApplyRetention() { b.cluster.ApplyRetention() }

// DeleteRecords deletes the messages of a partition below offset before, as Kafka's retention does (and as
// kafka-delete-records does by hand): the partition's log start becomes before.
func (b *Broker) DeleteRecords(ctx context.Context, topic string, partition int32, before int64) error {
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx, b.producer)
	if err != nil {
		return fmt.Errorf("delete records of %s/%d below %d: %w", topic, partition, before, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("delete records of %s/%d below %d: %w", topic, partition, before, err)
			}
		}
	}
	return nil
}

// CommitGroupOffsets stores offsets for group in the broker, as a consumer's commit (or kafka-consumer-groups
// --reset-offsets) does, without joining the group.
func (b *Broker) CommitGroupOffsets(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	// From v10 the request names the topic by its ID, which the metadata gives.
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, b.producer)
	if err != nil || len(mresp.Topics) != 1 {
		return fmt.Errorf("metadata of %s: %v", topic, err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, mresp.Topics[0].TopicID
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.producer)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit offset of group %s on %s/%d: %w", group, topic, p.Partition, err)
			}
		}
	}
	return nil
}
