package deadletters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/chainsink/chainsink/store"
)

// Config says which dead letters a replay publishes, and where. The zero value of every tuning field means
// its default.
type Config struct {
	// Filter selects the dead letters to replay. It must select by IDs, Reason or Topic: an empty filter
	// would replay every dead letter, which is never what a forgotten field meant. Group narrows any of them.
	// AfterID and UpToID narrow the selection further (UpToID is capped at the newest id when Replay
	// starts); Limit must be 0, as Replay pages by itself.
	Filter store.DeadLetterFilter
	// ToTopic, when set, receives every message, partitioned by key, instead of each message's original
	// topic and partition.
	ToTopic string
	// Delete removes each dead letter once Kafka has acknowledged its message, and only then.
	Delete bool

	// PageRows is how many dead letters are listed at a time. Default 500.
	PageRows int
	// PageBytes bounds the keys and values read from Postgres and waiting in the producer at once. A dead
	// letter bigger than that is replayed on its own. Default 64 MiB.
	PageBytes int
}

const (
	defaultPageRows  = 500
	defaultPageBytes = 64 << 20
	// deleteTimeout bounds the delete of acknowledged rows, which does not stop when the replay's context is
	// cancelled.
	deleteTimeout = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.PageRows == 0 {
		c.PageRows = defaultPageRows
	}
	if c.PageBytes == 0 {
		c.PageBytes = defaultPageBytes
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	f := c.Filter
	if len(f.IDs) == 0 && f.Reason == "" && f.Topic == "" {
		errs = append(errs, errors.New("no dead letters selected: set Filter.IDs, Filter.Reason or Filter.Topic"))
	}
	if f.Limit != 0 {
		errs = append(errs, fmt.Errorf("a replay pages by itself: Filter.Limit must be 0, not %d", f.Limit))
	}
	if c.PageRows < 0 {
		errs = append(errs, fmt.Errorf("negative PageRows %d", c.PageRows))
	}
	if c.PageBytes < 0 {
		errs = append(errs, fmt.Errorf("negative PageBytes %d", c.PageBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid replay config: %w", err)
	}
	return nil
}

// Result tallies a replay. Replay returns it also with an error, and it then counts what was done before.
type Result struct {
	// Replayed is how many dead letters were published or tried: Delivered plus len(Failed).
	Replayed int64
	// Delivered is how many of them Kafka acknowledged.
	Delivered int64
	// Deleted is how many rows were deleted (Config.Delete): Delivered, less those another replay deleted first.
	Deleted int64
	// Failed lists the dead letters that were not delivered, whose rows are kept.
	Failed []Failure
}

// Failure is a dead letter that was not delivered.
type Failure struct {
	ID int64
	// Err is the producer's refusal or the delivery report's error.
	Err error
}

// MissingError is returned, before anything is published, when Config.Filter.IDs names dead letters that do
// not exist (or not in Filter.Group): a replay of a list of ids is all or nothing about which rows it means.
type MissingError struct {
	IDs []int64
}

func (e *MissingError) Error() string {
	ids := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	return fmt.Sprintf("no dead letter %s: nothing was replayed", strings.Join(ids, ", "))
}

// InterruptedError is returned when ctx was cancelled before every selected dead letter was replayed. What
// was published up to then is settled: its delivery reports were awaited and, with Config.Delete, the
// acknowledged rows deleted; a rerun replays the rest.
type InterruptedError struct {
	// Replayed is Result.Replayed.
	Replayed int64
	// Err is ctx.Err().
	Err error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("replay interrupted after %d dead letters: %v", e.Replayed, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// Replay publishes the dead letters that cfg selects through producer, in id order, and with cfg.Delete
// deletes those that Kafka acknowledged (see the package documentation for the guarantees). Dead letters
// that were not delivered are kept and listed in Result.Failed without making an error. The error is
// *MissingError when cfg.Filter.IDs names rows that do not exist, *InterruptedError when ctx was cancelled
// first, and otherwise a failure of Postgres, after which the Result still counts what was done. A nil
// logger logs nothing.
func Replay(ctx context.Context, db store.DB, producer Producer, cfg Config, logger *slog.Logger) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := cfg.Filter
	if len(f.IDs) > 0 {
		found, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{IDs: f.IDs, Group: f.Group})
		if err != nil {
			return Result{}, err
		}
		var missing []int64
		for _, id := range f.IDs {
			if !slices.ContainsFunc(found, func(d store.DeadLetterRow) bool { return d.ID == id }) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return Result{}, &MissingError{IDs: missing}
		}
	}
	// Replay what exists now, not what this replay's own failures add while it runs.
	newest, err := store.MaxDeadLetterID(ctx, db)
	if err != nil {
		return Result{}, err
	}
	if newest == 0 {
		return Result{}, nil // and UpToID 0 would mean no bound at all
	}
	if f.UpToID == 0 || f.UpToID > newest {
		f.UpToID = newest
	}
	f.Limit = cfg.PageRows

	r := &replayer{db: db, producer: producer, cfg: cfg, log: logger}
	for ctx.Err() == nil {
		page, err := store.ListDeadLetters(ctx, db, f)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return r.res, err
		}
		if len(page) == 0 {
			break
		}
		for len(page) > 0 && ctx.Err() == nil {
			n := chunkLen(page, cfg.PageBytes)
			if err := r.replayChunk(ctx, page[:n]); err != nil {
				return r.res, err
			}
			f.AfterID = page[n-1].ID
			page = page[n:]
		}
	}
	if err := ctx.Err(); err != nil {
		return r.res, &InterruptedError{Replayed: r.res.Replayed, Err: err}
	}
	return r.res, nil
}

// chunkLen is how many rows from the first fit in maxBytes of payload: at least one, or a dead letter bigger
// than the bound could never be replayed.
func chunkLen(rows []store.DeadLetterRow, maxBytes int) int {
	n, bytes := 0, 0
	for n < len(rows) {
		size := max(rows[n].KeySize, 0) + max(rows[n].ValueSize, 0)
		if n > 0 && bytes+size > maxBytes {
			break
		}
		bytes += size
		n++
	}
	return n
}

type replayer struct {
	db       store.DB
	producer Producer
	cfg      Config
	log      *slog.Logger
	res      Result
}

// replayChunk publishes rows, waits for every delivery report, and with Delete removes the delivered ones.
func (r *replayer) replayChunk(ctx context.Context, rows []store.DeadLetterRow) error {
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.ID
	}
	payloads, err := store.DeadLetterPayloads(ctx, r.db, ids)
	if err != nil {
		return err
	}
	reports := make(chan kafka.Event, len(rows))
	pending := 0
	for _, row := range rows {
		pl, ok := payloads[row.ID]
		if !ok {
			continue // deleted since it was listed, e.g. by another replay
		}
		r.res.Replayed++
		topic, partition := row.Topic, row.Partition
		if r.cfg.ToTopic != "" {
			topic, partition = r.cfg.ToTopic, kafka.PartitionAny
		}
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition},
			Key: pl.Key, Value: pl.Value, Opaque: row.ID}
		if err := r.producer.Produce(msg, reports); err != nil {
			r.res.Failed = append(r.res.Failed, Failure{ID: row.ID, Err: err})
			r.log.Error("dead letter not published", "id", row.ID, "topic", topic, "partition", partition, "error", err)
			continue
		}
		pending++
	}
	// Not abandoned when ctx is cancelled: only a report tells whether the row may be deleted, and every
	// report arrives within the producer's message.timeout.ms.
	var delivered []int64
	for ; pending > 0; pending-- {
		m, ok := (<-reports).(*kafka.Message)
		if !ok {
			continue
		}
		id, _ := m.Opaque.(int64)
		if err := m.TopicPartition.Error; err != nil {
			r.res.Failed = append(r.res.Failed, Failure{ID: id, Err: err})
			r.log.Error("dead letter not delivered", "id", id, "topic", *m.TopicPartition.Topic,
				"partition", m.TopicPartition.Partition, "error", err)
			continue
		}
		delivered = append(delivered, id)
		r.log.Debug("dead letter replayed", "id", id, "topic", *m.TopicPartition.Topic,
			"partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset))
	}
	r.res.Delivered += int64(len(delivered))
	if r.cfg.Delete && len(delivered) > 0 {
		// Not ctx: a cancelled replay must still forget what Kafka has acknowledged, or a rerun publishes it twice.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		n, err := store.DeleteDeadLetters(dctx, r.db, delivered)
		if err != nil {
			return fmt.Errorf("%d dead letters were delivered but not deleted (a rerun publishes them again): %w",
				len(delivered), err)
		}
		r.res.Deleted += n
	}
	r.log.Info("replayed dead letters", "up_to_id", rows[len(rows)-1].ID, "delivered", len(delivered),
		"failed_so_far", len(r.res.Failed))
	return nil
}
