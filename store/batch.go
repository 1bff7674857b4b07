package store

import (
	"fmt"
	"slices"
)

// Mode says how a message's rows replace rows already stored under the same natural keys.
type Mode uint8

const (
	// ReplaceBlocks is for messages that carry whole blocks (the bundle format): every row of each block
	// number in the message is replaced, in every table. A newer message for a height wins, which is how a
	// reorg lands.
	ReplaceBlocks Mode = iota
	// ReplaceRows is for messages that carry single items (the ethereum-etl format): a block replaces the
	// block and its withdrawals, a transaction its row and its call, a log its row, its event and its token
	// transfers. Nothing else of the block is touched.
	ReplaceRows
)

func (m Mode) String() string {
	switch m {
	case ReplaceBlocks:
		return "replace-blocks"
	case ReplaceRows:
		return "replace-rows"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Failure sends a message to dead_letters instead of the tables.
type Failure struct {
	// Reason is a short, stable category for dashboards and `chainsink status`, e.g. "invalid_json".
	Reason string
	// Err is the full explanation stored with the message.
	Err error
}

// Message is one Kafka message and what it decoded into.
type Message struct {
	Offset int64
	Key    []byte
	Value  []byte
	Rows   Rows
	// Failure, when not nil, makes the message a dead letter; its Rows are ignored.
	Failure *Failure
}

type naturalKey struct {
	table uint8 // 0 block, 1 transaction, 2 log
	block uint64
	index int32
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
	Mode     Mode
	Messages []Message

	rows  int
	bytes int
	keys  map[naturalKey]int
}

// NewBatch starts an empty batch of a partition whose stored next offset is from.
func NewBatch(group, topic string, partition int32, from int64, mode Mode) *Batch {
	return &Batch{Group: group, Topic: topic, Partition: partition, From: from, To: from, Mode: mode,
		keys: make(map[naturalKey]int)}
}

// Grow makes room for n more messages, as slices.Grow does: a caller that knows about how many messages its
// batches hold (the last one's Len) saves the batch from growing its message list by doubling, which under
// a backlog leaves a quarter of it unused on average and copies it over and over.
func (b *Batch) Grow(n int) {
	b.Messages = slices.Grow(b.Messages, n)
	if len(b.keys) == 0 && n > 0 {
		b.keys = make(map[naturalKey]int, n)
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
		for _, k := range b.messageKeys(&m.Rows) {
			if prev, ok := b.keys[k]; ok && prev != idx {
				b.rows -= b.Messages[prev].Rows.Len()
				b.Messages[prev].Rows = Rows{}
			}
			b.keys[k] = idx
		}
		b.rows += m.Rows.Len()
	}
	b.Messages = append(b.Messages, m)
}

func (b *Batch) messageKeys(r *Rows) []naturalKey {
	var ks []naturalKey
	for i := range r.Blocks {
		ks = append(ks, naturalKey{table: 0, block: r.Blocks[i].Number})
	}
	if b.Mode == ReplaceBlocks {
		return ks
	}
	for i := range r.Transactions {
		t := &r.Transactions[i]
		ks = append(ks, naturalKey{table: 1, block: t.BlockNumber, index: t.TransactionIndex})
	}
	for i := range r.Logs {
		l := &r.Logs[i]
		ks = append(ks, naturalKey{table: 2, block: l.BlockNumber, index: l.LogIndex})
	}
	return ks
}

// Rows is the number of rows the batch will write.
func (b *Batch) Rows() int { return b.rows }

// Bytes is the size of the batch's raw messages.
func (b *Batch) Bytes() int { return b.bytes }

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.Messages) }
