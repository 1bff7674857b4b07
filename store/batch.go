package store

import (
	"fmt"
	"slices"

	"github.com/chainsink/chainsink/store/chain"
)

// Message is one Kafka message and what it decoded into.
type Message struct {
	Offset int64
	Key    []byte
	Value  []byte
	Rows   chain.Rows
	// Failure, when not nil, makes the message a dead letter; its Rows are ignored.
	Failure *chain.Failure
}

// Batch is the unit of the exactly-once write: the decoded messages of offsets [From, To) of one partition.
// Build it with NewBatch and Add; a Batch is not safe for concurrent use.
type Batch struct {
	Group     string
	Topic     string
	Partition int32
	// From is the partition's stored next offset when the batch began; the fence compares against it.
	From int64
	// To is one past the last offset in the batch; it becomes the stored next offset.
	To       int64
	Mode     chain.Mode
	Messages []Message
	// RejectConflicts makes a unique violation a rejection like any other (its messages become dead letters)
	// instead of ErrConflict. A caller sets it when retries have not resolved a conflict: then it is the
	// data's (a decoder that emits one key twice), not a race's.
	RejectConflicts bool

	rows    int
	bytes   int
	keys    map[chain.Key]int
	kbuf    []chain.Key
	heights map[uint64]struct{}
}

// NewBatch starts an empty batch of a partition whose stored next offset is from.
func NewBatch(group, topic string, partition int32, from int64, mode chain.Mode) *Batch {
	return &Batch{Group: group, Topic: topic, Partition: partition, From: from, To: from, Mode: mode,
		keys: make(map[chain.Key]int), heights: make(map[uint64]struct{})}
}

// Grow makes room for n more messages, as slices.Grow does: a caller that knows about how many messages its
// batches hold (the last one's Len) saves the batch from growing its message list by doubling, which under
// a backlog leaves a quarter of it unused on average and copies it over and over.
func (b *Batch) Grow(n int) {
	b.Messages = slices.Grow(b.Messages, n)
	if len(b.keys) == 0 && n > 0 {
		b.keys = make(map[chain.Key]int, n)
	}
}

// Add appends a message, whose offset must not be below To. When an earlier message of the batch holds a
// natural key that m holds too, the earlier message's rows are dropped: the batch then writes what the last
// delivery says, exactly as if the two had been written by two batches in order. Producers put one natural
// key in a message (one block, or one item), which is what makes dropping the earlier message whole exact.
func (b *Batch) Add(m Message) {
	if m.Offset < b.To {
		panic(fmt.Sprintf("store: batch of %s/%d: offset %d added after %d", b.Topic, b.Partition, m.Offset, b.To))
	}
	b.To = m.Offset + 1
	b.bytes += len(m.Key) + len(m.Value)
	idx := len(b.Messages)
	if m.Failure == nil {
		b.kbuf = m.Rows.Keys(b.kbuf[:0], b.Mode)
		for _, k := range b.kbuf {
			if prev, ok := b.keys[k]; ok && prev != idx {
				b.rows -= b.Messages[prev].Rows.Len()
				b.Messages[prev].Rows = chain.Rows{}
			}
			b.keys[k] = idx
			b.heights[k.Block] = struct{}{}
		}
		b.rows += m.Rows.Len()
	}
	b.Messages = append(b.Messages, m)
}

// Rows is the number of rows the batch will write.
func (b *Batch) Rows() int { return b.rows }

// Heights is the number of distinct block heights the batch's messages hold. The write takes a lock per
// height (see fence), and locks come from a table that Postgres sizes for the whole server.
func (b *Batch) Heights() int { return len(b.heights) }

// BlockHeights are the distinct block heights of the batch's messages, in no order.
func (b *Batch) BlockHeights() []uint64 {
	out := make([]uint64, 0, len(b.heights))
	for h := range b.heights {
		out = append(out, h)
	}
	return out
}

// Bytes is the size of the batch's raw messages.
func (b *Batch) Bytes() int { return b.bytes }

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.Messages) }
