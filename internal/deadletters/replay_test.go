package deadletters_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/internal/deadletters"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// storeDead stores one dead letter per entry of values, at offsets from, from+1, … of topic/partition, and
// returns their ids in order.
func storeDead(t *testing.T, ctx context.Context, db store.DB, topic string, partition int32, from int64, reason string,
	values ...string) []int64 {
	t.Helper()
	b := store.NewBatch("g", topic, partition, from, chain.ReplaceRows)
	for i, v := range values {
		off := from + int64(i)
		b.Add(store.Message{Offset: off, Key: []byte(fmt.Sprintf("key-%s-%d-%d", topic, partition, off)), Value: []byte(v),
			Failure: &chain.Failure{Reason: reason, Err: errors.New("decode: " + reason)}})
	}
	before, err := store.MaxDeadLetterID(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteBatch(ctx, db, b); err != nil {
		t.Fatalf("write batch of %s/%d: %v", topic, partition, err)
	}
	rows, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{AfterID: before})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	if len(ids) != len(values) {
		t.Fatalf("stored %d dead letters, want %d", len(ids), len(values))
	}
	return ids
}

func storedIDs(t *testing.T, ctx context.Context, db store.DB) []int64 {
	t.Helper()
	rows, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// fakeProducer reports every delivery from a goroutine of its own, as librdkafka does, so that a replay that
// did not wait for its reports would be caught. It records what it was given and the most payload that was
// ever produced and not yet reported.
type fakeProducer struct {
	// refuse, when it returns an error, makes Produce fail; fail makes the delivery fail.
	refuse, fail func(*kafka.Message) error
	// onProduce runs inside Produce, before the message is accepted.
	onProduce func(*kafka.Message)

	mu                     sync.Mutex
	sent                   []*kafka.Message
	pendingBytes, maxBytes int
	maxAtOnce              int // the most messages pending at once
	pending                int
}

func (p *fakeProducer) Produce(msg *kafka.Message, reports chan kafka.Event) error {
	if p.onProduce != nil {
		p.onProduce(msg)
	}
	if p.refuse != nil {
		if err := p.refuse(msg); err != nil {
			return err
		}
	}
	size := len(msg.Key) + len(msg.Value)
	p.mu.Lock()
	p.sent = append(p.sent, msg)
	p.pending++
	p.pendingBytes += size
	p.maxBytes = max(p.maxBytes, p.pendingBytes)
	p.maxAtOnce = max(p.maxAtOnce, p.pending)
	p.mu.Unlock()
	go func() {
		report := *msg
		if p.fail != nil {
			report.TopicPartition.Error = p.fail(msg)
		}
		p.mu.Lock()
		p.pending--
		p.pendingBytes -= size
		p.mu.Unlock()
		reports <- &report
	}()
	return nil
}

func (p *fakeProducer) sentIDs() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []int64
	for _, m := range p.sent {
		ids = append(ids, m.Opaque.(int64))
	}
	return ids
}

func TestReplayPublishesInIDOrderInBoundedChunks(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	// Two partitions interleaved, so that id order is not partition order; one value bigger than a chunk.
	ids := storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "aaaaaaaaaa", "bbbbbbbbbb")
	ids = append(ids, storeDead(t, ctx, db, "logs", 1, 0, "bad_field", strings.Repeat("x", 300))...)
	ids = append(ids, storeDead(t, ctx, db, "logs", 0, 2, "bad_field", "cccccccccc", "dddddddddd", "eeeeeeeeee")...)
	other := storeDead(t, ctx, db, "logs", 0, 5, "invalid_json", "not selected")

	p := &fakeProducer{}
	// Every small dead letter is 22 bytes of key and value: two fit in 60 bytes, three do not.
	cfg := deadletters.Config{Filter: store.DeadLetterFilter{Reason: "bad_field"}, Delete: true, PageRows: 4, PageBytes: 60}
	res, err := deadletters.Replay(ctx, db, p, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.sentIDs(); !slices.Equal(got, ids) {
		t.Fatalf("published %v, want %v in id order", got, ids)
	}
	// Reports come from goroutines, so fewer may be pending at once, never more.
	if p.maxAtOnce > 2 || p.maxBytes > 300+len("key-logs-1-0") {
		t.Errorf("%d messages and %d bytes awaited delivery at once, want at most 2 and the big one alone",
			p.maxAtOnce, p.maxBytes)
	}
	for i, m := range p.sent {
		want := []int32{0, 0, 1, 0, 0, 0}[i]
		if *m.TopicPartition.Topic != "logs" || m.TopicPartition.Partition != want {
			t.Errorf("dead letter %d published to %s/%d, want logs/%d", ids[i], *m.TopicPartition.Topic,
				m.TopicPartition.Partition, want)
		}
	}
	if string(p.sent[3].Value) != "cccccccccc" || string(p.sent[3].Key) != "key-logs-0-2" {
		t.Errorf("fourth message = %q/%q", p.sent[3].Key, p.sent[3].Value)
	}
	if want := (deadletters.Result{Replayed: 6, Delivered: 6, Deleted: 6}); res.Replayed != want.Replayed ||
		res.Delivered != want.Delivered || res.Deleted != want.Deleted || len(res.Failed) != 0 {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, other) {
		t.Errorf("left %v, want only the unselected %v", got, other)
	}
}

func TestReplayToTopicKeepsRowsWithoutDelete(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	ids := storeDead(t, ctx, db, "blocks", 3, 7, "bad_field", "one", "two")

	p := &fakeProducer{}
	res, err := deadletters.Replay(ctx, db, p, deadletters.Config{Filter: store.DeadLetterFilter{IDs: ids[1:]},
		ToTopic: "retry"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.sent) != 1 || *p.sent[0].TopicPartition.Topic != "retry" ||
		p.sent[0].TopicPartition.Partition != kafka.PartitionAny || string(p.sent[0].Value) != "two" {
		t.Fatalf("sent %+v, want dead letter %d to retry, any partition", p.sent, ids[1])
	}
	if res.Replayed != 1 || res.Delivered != 1 || res.Deleted != 0 {
		t.Errorf("result = %+v", res)
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, ids) {
		t.Errorf("left %v, want all of %v (no Delete)", got, ids)
	}
}

// Of a refused message and an undelivered one, neither row goes; the others are delivered and deleted.
func TestReplayDeletesOnlyAcknowledged(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	ids := storeDead(t, ctx, db, "logs", 0, 0, "rejected_by_postgres", "a", "refused", "b")
	ids = append(ids, storeDead(t, ctx, db, "logs", 5, 0, "rejected_by_postgres", "no such partition")...)

	errRefused := kafka.NewError(kafka.ErrQueueFull, "queue full", false)
	errUnknown := kafka.NewError(kafka.ErrUnknownPartition, "unknown partition", false)
	p := &fakeProducer{
		refuse: func(m *kafka.Message) error {
			if string(m.Value) == "refused" {
				return errRefused
			}
			return nil
		},
		fail: func(m *kafka.Message) error {
			if m.TopicPartition.Partition == 5 {
				return errUnknown
			}
			return nil
		},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	res, err := deadletters.Replay(ctx, db, p, deadletters.Config{Filter: store.DeadLetterFilter{Topic: "logs"}, Delete: true},
		logger)
	if err != nil {
		t.Fatalf("undelivered messages are reported in the result, not as an error: %v", err)
	}
	if res.Replayed != 4 || res.Delivered != 2 || res.Deleted != 2 {
		t.Errorf("result = %+v, want 4 replayed, 2 delivered and deleted", res)
	}
	failed := map[int64]error{}
	for _, f := range res.Failed {
		failed[f.ID] = f.Err
	}
	code := func(err error) kafka.ErrorCode {
		var ke kafka.Error
		if !errors.As(err, &ke) {
			return kafka.ErrNoError
		}
		return ke.Code()
	}
	if len(failed) != 2 || code(failed[ids[1]]) != kafka.ErrQueueFull || code(failed[ids[3]]) != kafka.ErrUnknownPartition {
		t.Errorf("failed = %v, want %d refused and %d undelivered", res.Failed, ids[1], ids[3])
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, []int64{ids[1], ids[3]}) {
		t.Errorf("left %v, want the two that were not delivered", got)
	}
	for _, want := range []string{`"msg":"dead letter not published","id":` + fmt.Sprint(ids[1]),
		`"msg":"dead letter not delivered","id":` + fmt.Sprint(ids[3]), `"up_to_id":`, `"failed_so_far":2`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// Dead letters stored while a replay runs (its own messages failing again) are left to the next replay.
func TestReplayReplaysWhatExistedAtStart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	ids := storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "a", "b", "c", "d", "e")

	var again []int64
	p := &fakeProducer{onProduce: func(m *kafka.Message) {
		again = append(again, storeDead(t, ctx, db, "logs", 0, int64(5+len(again)), "bad_field", string(m.Value))...)
	}}
	res, err := deadletters.Replay(ctx, db, p, deadletters.Config{Filter: store.DeadLetterFilter{Reason: "bad_field"},
		Delete: true, PageRows: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.sentIDs(); !slices.Equal(got, ids) {
		t.Fatalf("published %v, want only %v, which existed at the start", got, ids)
	}
	if res.Replayed != 5 || res.Deleted != 5 {
		t.Errorf("result = %+v", res)
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, again) {
		t.Errorf("left %v, want the dead letters stored during the replay %v", got, again)
	}
}

func TestReplayMissingIDsPublishNothing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	ids := storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "a", "b")

	for _, f := range []store.DeadLetterFilter{
		{IDs: []int64{ids[0], 999999, ids[1], 999998}},
		{IDs: ids, Group: "other"}, // they exist, but not in this group
	} {
		p := &fakeProducer{}
		_, err := deadletters.Replay(ctx, db, p, deadletters.Config{Filter: f, Delete: true}, nil)
		var missing *deadletters.MissingError
		if !errors.As(err, &missing) {
			t.Fatalf("%+v: err = %v, want a MissingError", f, err)
		}
		if len(p.sent) != 0 {
			t.Errorf("%+v: published %d messages", f, len(p.sent))
		}
		if f.Group == "" && (!slices.Equal(missing.IDs, []int64{999999, 999998}) ||
			err.Error() != "no dead letter 999999, 999998: nothing was replayed") {
			t.Errorf("err = %v (%v)", err, missing.IDs)
		}
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, ids) {
		t.Errorf("left %v, want %v", got, ids)
	}
}

// A cancelled replay stops between chunks, but still waits for what it published and deletes what was
// acknowledged, so that a rerun does not publish it twice.
func TestReplayInterruptedSettlesWhatItPublished(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	ids := storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "a", "b", "c", "d", "e")

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &fakeProducer{onProduce: func(*kafka.Message) { cancel() }}
	res, err := deadletters.Replay(rctx, db, p, deadletters.Config{Filter: store.DeadLetterFilter{Reason: "bad_field"},
		Delete: true, PageRows: 2}, nil)
	var interrupted *deadletters.InterruptedError
	if !errors.As(err, &interrupted) || !errors.Is(err, context.Canceled) || interrupted.Replayed != 2 {
		t.Fatalf("err = %v, want an InterruptedError after 2", err)
	}
	if err.Error() != "replay interrupted after 2 dead letters: context canceled" {
		t.Errorf("err = %q", err)
	}
	if res.Replayed != 2 || res.Delivered != 2 || res.Deleted != 2 {
		t.Errorf("result = %+v, want the first chunk delivered and deleted", res)
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, ids[2:]) {
		t.Errorf("left %v, want %v", got, ids[2:])
	}
}

func TestReplayRefusesConfigs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "a")
	for _, c := range []struct {
		cfg  deadletters.Config
		want string
	}{
		{deadletters.Config{Filter: store.DeadLetterFilter{Group: "g"}}, "no dead letters selected"},
		{deadletters.Config{Filter: store.DeadLetterFilter{Topic: "logs", Limit: 1}}, "Filter.Limit"},
		{deadletters.Config{Filter: store.DeadLetterFilter{Topic: "logs"}, PageRows: -1}, "PageRows"},
		{deadletters.Config{Filter: store.DeadLetterFilter{Topic: "logs"}, PageBytes: -1}, "PageBytes"},
	} {
		p := &fakeProducer{}
		_, err := deadletters.Replay(ctx, db, p, c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want it to mention %s", c.cfg, err, c.want)
		}
		if len(p.sent) != 0 {
			t.Errorf("%+v: published %d messages", c.cfg, len(p.sent))
		}
	}
}

// The real producer against a real broker: the report of each message finds its row, also when Kafka refuses
// the message.
func TestReplayThroughKafka(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := pgtest.Open(t)
	db := s.Pool()
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"logs": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	ids := storeDead(t, ctx, db, "logs", 0, 0, "bad_field", "a", "b")
	ids = append(ids, storeDead(t, ctx, db, "logs", 5, 0, "bad_field", "no such partition")...) // topic has one

	cm := deadletters.ProducerConfig()
	cm["bootstrap.servers"] = broker.Addr()
	for k, v := range deadletters.FixedProducerConfig() {
		cm[k] = v
	}
	p, err := deadletters.NewProducer(&cm, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := deadletters.Replay(ctx, db, p, deadletters.Config{Filter: store.DeadLetterFilter{Reason: "bad_field"},
		Delete: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 3 || res.Delivered != 2 || res.Deleted != 2 || len(res.Failed) != 1 || res.Failed[0].ID != ids[2] {
		t.Fatalf("result = %+v, want 2 delivered and %d failed", res, ids[2])
	}
	if hw := broker.HighWatermarks("logs"); hw[0] != 2 {
		t.Errorf("logs/0 high watermark = %d, want 2", hw[0])
	}
	if got := storedIDs(t, ctx, db); !slices.Equal(got, ids[2:]) {
		t.Errorf("left %v, want %v", got, ids[2:])
	}
}
