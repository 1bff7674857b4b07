package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/store"
)

func newDeadLettersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List and replay the messages stored in dead_letters",
		Long: `Messages that could not be stored (not decodable, or rows that PostgreSQL rejected) are kept, with their
Kafka key and value and the reason, in the dead_letters table, so that the partition moves on. These commands
list them and publish them again once the cause is fixed; see "chainsink dead-letters replay --help".`,
	}
	cmd.AddCommand(newDeadLettersListCmd(g), newDeadLettersReplayCmd(g))
	return cmd
}

type listOptions struct {
	db     store.Config
	filter store.DeadLetterFilter
	limit  int
	json   bool
}

func newDeadLettersListCmd(g *globals) *cobra.Command {
	o := &listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored dead letters, oldest first",
		Long: `List the stored dead letters, oldest first (by id): id, consumer group, topic, partition, offset, reason,
when it was stored, the size of its value, and its error (truncated to one line; --json has it whole).

--json prints {"total": N, "dead_letters": [{"id", "group", "topic", "partition", "offset", "reason", "error",
"created_at", "key_size", "value_size"}]}; total counts every match, also those beyond --limit; the sizes are
in bytes, null for a NULL key or value.`,
		Example: `  chainsink dead-letters list --reason invalid_json
  chainsink dead-letters list --topic blocks --limit 0 --json | jq '.dead_letters[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runList(cmd.Context(), g.stdout, o)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	f := cmd.Flags()
	f.StringVar(&o.filter.Topic, "topic", "", "only dead letters of this topic")
	f.StringVar(&o.filter.Reason, "reason", "", "only dead letters of this reason, e.g. invalid_json, bad_field, rejected_by_postgres")
	f.StringVar(&o.filter.Group, "group", "", "only dead letters of this consumer group (all groups when empty)")
	f.IntVar(&o.limit, "limit", 100, "show at most this many (0: all)")
	f.BoolVar(&o.json, "json", false, "print a JSON document instead of a table")
	return cmd
}

func (o *listOptions) validate() error {
	var errs []error
	if o.limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: must be 0 (all) or more", o.limit))
	}
	errs = append(errs, o.db.Validate())
	return errors.Join(errs...)
}

// deadLetterJSON is an entry of `dead-letters list --json`; its field names are a public contract.
type deadLetterJSON struct {
	ID        int64     `json:"id"`
	Group     string    `json:"group"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at"`
	KeySize   *int      `json:"key_size"`
	ValueSize *int      `json:"value_size"`
}

type deadLettersJSON struct {
	Total       int64            `json:"total"`
	DeadLetters []deadLetterJSON `json:"dead_letters"`
}

func runList(ctx context.Context, out io.Writer, o *listOptions) error {
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	f := o.filter
	f.Limit = o.limit
	rows, err := store.ListDeadLetters(ctx, st.Pool(), f)
	if err != nil {
		return err
	}
	total := int64(len(rows))
	if o.limit > 0 && len(rows) == o.limit {
		if total, err = store.CountDeadLetters(ctx, st.Pool(), f); err != nil {
			return err
		}
	}
	size := func(n int) *int {
		if n < 0 {
			return nil
		}
		return &n
	}
	doc := deadLettersJSON{Total: total, DeadLetters: []deadLetterJSON{}}
	for _, r := range rows {
		doc.DeadLetters = append(doc.DeadLetters, deadLetterJSON{ID: r.ID, Group: r.Group, Topic: r.Topic,
			Partition: r.Partition, Offset: r.Offset, Reason: r.Reason, Error: r.Error, CreatedAt: r.CreatedAt.UTC(),
			KeySize: size(r.KeySize), ValueSize: size(r.ValueSize)})
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write dead letters: %w", err)
		}
		return nil
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(out, "no dead letters match")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tTOPIC\tPARTITION\tOFFSET\tREASON\tCREATED AT\tVALUE SIZE\tERROR")
	for _, d := range doc.DeadLetters {
		vs := "NULL"
		if d.ValueSize != nil {
			vs = strconv.Itoa(*d.ValueSize)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.Group, d.Topic, d.Partition, d.Offset, d.Reason,
			d.CreatedAt.Format(time.RFC3339), vs, oneLine(d.Error, 100))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	if int64(len(rows)) < total {
		_, err = fmt.Fprintf(out, "%d of %d shown; --limit 0 shows all\n", len(rows), total)
	}
	return err
}

// oneLine makes an error fit a table cell: one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

type replayOptions struct {
	db      store.Config
	kafka   kafkaFlags
	filter  store.DeadLetterFilter
	toTopic string
	delete  bool
}

func newDeadLettersReplayCmd(g *globals) *cobra.Command {
	o := &replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay --brokers HOST:PORT (--id N… | --reason R | --topic T)",
		Short: "Publish dead letters to Kafka again, so that chainsink run consumes them again",
		Long: `Publish the stored key and value of the selected dead letters again, to their original topic and partition
(or to --to-topic, partitioned by key), through an idempotent Kafka producer (enable.idempotence=true: acks from
all in-sync replicas, no duplicates or reordering from retries). The command waits for the delivery report of
every message; with --delete it then removes the rows whose delivery succeeded, and only those. Rows whose
delivery failed are kept and reported, and the command exits 1.

Runbook:
  1. Look:    chainsink status; chainsink dead-letters list --reason R   (the error column says why)
  2. Fix:     the cause — a decoder bug (upgrade chainsink), a missing or wrong ABI (--abi-dir, --contracts),
              a producer that sent bad data, a schema that rejected a value.
  3. Deploy:  restart "chainsink run" with the fix, and wait until it runs (chainsink status).
  4. Replay:  chainsink dead-letters replay --brokers … --reason R --delete
              The messages are appended to their partition again; "chainsink run" consumes them like any other
              message and stores their rows, or stores them as dead letters again (new rows, new offsets) if the
              fix did not cover them.
  5. Check:   chainsink dead-letters list --reason R; chainsink status.

What to know:
  - A replayed message is newer than everything already in its partition. A block replayed after the chain
    reorganised at that height replaces the newer version with the replayed one; check the heights before
    replaying old block messages.
  - Every consumer group that reads the topic gets the message again. Rows are replaced by their natural keys,
    so a group that had already stored it stores the same rows again, without duplicates.
  - Messages are replayed in id order, which within a partition is the original offset order. Dead letters
    stored while the replay runs (for instance, replayed messages that fail again) are not replayed by it.
  - If the command dies after publishing and before deleting, the rows stay; replaying them again only
    re-stores the same rows.
  - The producer's message.max.bytes is raised to 32 MiB and message.timeout.ms set to 60 s; the topic's own
    max.message.bytes still applies. --kafka-config overrides both (but not enable.idempotence).`,
		Example: `  chainsink dead-letters replay --brokers kafka:9092 --reason rejected_by_postgres --delete
  chainsink dead-letters replay --brokers kafka:9092 --id 17 --id 18 --to-topic blocks-retry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			return runReplay(cmd.Context(), g.stdout, o, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers to publish to, host:port[,host:port…] (required)")
	f := cmd.Flags()
	f.Int64SliceVar(&o.filter.IDs, "id", nil, "replay these dead letters (ids as in list), repeatable or comma-separated")
	f.StringVar(&o.filter.Reason, "reason", "", "replay every dead letter of this reason (may be combined with --topic)")
	f.StringVar(&o.filter.Topic, "topic", "", "replay every dead letter of this original topic (may be combined with --reason)")
	f.StringVar(&o.filter.Group, "group", "", "only dead letters of this consumer group (all groups when empty)")
	f.StringVar(&o.toTopic, "to-topic", "", "publish to this topic instead of each message's original topic and partition")
	f.BoolVar(&o.delete, "delete", false, "delete each dead letter once Kafka has acknowledged its message")
	_ = cmd.MarkFlagRequired("brokers")
	cmd.MarkFlagsOneRequired("id", "reason", "topic")
	cmd.MarkFlagsMutuallyExclusive("id", "reason")
	cmd.MarkFlagsMutuallyExclusive("id", "topic")
	return cmd
}

func (o *replayOptions) validate() error {
	var errs []error
	if strings.TrimSpace(o.kafka.brokers) == "" {
		errs = append(errs, errors.New("--brokers is empty"))
	}
	for _, id := range o.filter.IDs {
		if id <= 0 {
			errs = append(errs, fmt.Errorf("--id %d: ids start at 1", id))
		}
	}
	if len(o.filter.IDs) == 0 && o.filter.Reason == "" && o.filter.Topic == "" {
		// The flags may be set to "" explicitly; never replay everything by accident.
		errs = append(errs, errors.New("select dead letters with --id, --reason or --topic"))
	}
	if _, err := o.producerConfig(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, o.db.Validate())
	return errors.Join(errs...)
}

func (o *replayOptions) producerConfig() (*kafka.ConfigMap, error) {
	return o.kafka.configMap(kafka.ConfigMap{
		"client.id": "chainsink-replay",
		// Bundles of big blocks are several MiB; librdkafka's default of 1 MB would refuse them.
		"message.max.bytes": 32 << 20,
		// Bounds how long the command waits for a delivery report (librdkafka's default is 5 minutes).
		"message.timeout.ms":  60000,
		"linger.ms":           5,
		"enable.metrics.push": false,
	}, map[string]string{"enable.idempotence": "true"})
}

const (
	replayPageRows  = 500
	replayPageBytes = 64 << 20 // bounds the payloads held in memory at once
)

// replayResult tallies a replay.
type replayResult struct {
	selected, delivered, deleted int64
	failed                       []replayFailure
}

type replayFailure struct {
	id  int64
	err error
}

func runReplay(ctx context.Context, out io.Writer, o *replayOptions, logger *slog.Logger) error {
	if err := store.CheckMigrated(ctx, o.db); err != nil {
		return err
	}
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	db := st.Pool()

	f := o.filter
	if len(f.IDs) > 0 {
		found, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{IDs: f.IDs, Group: f.Group})
		if err != nil {
			return err
		}
		var missing []string
		for _, id := range f.IDs {
			if !slices.ContainsFunc(found, func(d store.DeadLetterRow) bool { return d.ID == id }) {
				missing = append(missing, strconv.FormatInt(id, 10))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("--id: no dead letter %s: nothing was replayed", strings.Join(missing, ", "))
		}
	}
	// Replay what exists now, not what this replay's own failures add while it runs.
	if f.UpToID, err = store.MaxDeadLetterID(ctx, db); err != nil {
		return err
	}

	cm, err := o.producerConfig()
	if err != nil {
		return err
	}
	p, err := kafka.NewProducer(cm)
	if err != nil {
		return fmt.Errorf("create Kafka producer: %w", err)
	}
	defer p.Close()
	go func() { // delivery reports go to per-page channels; this is for client-level errors
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				logger.Warn("kafka producer", "error", e, "fatal", e.IsFatal())
			}
		}
	}()

	var res replayResult
pages:
	for ctx.Err() == nil {
		page, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{IDs: f.IDs, Group: f.Group, Topic: f.Topic,
			Reason: f.Reason, AfterID: f.AfterID, UpToID: f.UpToID, Limit: replayPageRows})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if len(page) == 0 {
			break
		}
		for len(page) > 0 {
			if ctx.Err() != nil {
				break pages
			}
			n, bytes := 0, 0
			for n < len(page) && (n == 0 || bytes+max(page[n].KeySize, 0)+max(page[n].ValueSize, 0) <= replayPageBytes) {
				bytes += max(page[n].KeySize, 0) + max(page[n].ValueSize, 0)
				n++
			}
			if err := o.replayChunk(ctx, db, p, page[:n], &res, logger); err != nil {
				return err
			}
			f.AfterID = page[n-1].ID
			page = page[n:]
		}
	}
	rows := "rows kept (no --delete)"
	if o.delete {
		rows = fmt.Sprintf("%d rows deleted", res.deleted)
	}
	dest := "their original topics and partitions"
	if o.toTopic != "" {
		dest = "topic " + o.toTopic
	}
	fmt.Fprintf(out, "replayed %d dead letters to %s: %d delivered, %d failed; %s\n", res.selected, dest,
		res.delivered, len(res.failed), rows)
	for _, fl := range res.failed {
		fmt.Fprintf(out, "  id %d not delivered (kept): %v\n", fl.id, fl.err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replay interrupted after %d dead letters: %w", res.selected, err)
	}
	if len(res.failed) > 0 {
		return fmt.Errorf("%d of %d dead letters were not delivered; they are kept", len(res.failed), res.selected)
	}
	return nil
}

// replayChunk publishes rows, waits for every delivery report, and with --delete removes the delivered ones.
func (o *replayOptions) replayChunk(ctx context.Context, db store.DB, p *kafka.Producer, rows []store.DeadLetterRow,
	res *replayResult, logger *slog.Logger) error {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	payloads, err := store.DeadLetterPayloads(ctx, db, ids)
	if err != nil {
		return err
	}
	reports := make(chan kafka.Event, len(rows))
	pending := 0
	for _, r := range rows {
		pl, ok := payloads[r.ID]
		if !ok {
			continue // deleted since it was listed, e.g. by another replay
		}
		res.selected++
		topic, partition := r.Topic, r.Partition
		if o.toTopic != "" {
			topic, partition = o.toTopic, kafka.PartitionAny
		}
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition},
			Key: pl.Key, Value: pl.Value, Opaque: r.ID}
		if err := p.Produce(msg, reports); err != nil {
			res.failed = append(res.failed, replayFailure{r.ID, err})
			logger.Error("dead letter not published", "id", r.ID, "topic", topic, "partition", partition, "error", err)
			continue
		}
		pending++
	}
	// Every report arrives within message.timeout.ms, also after ctx is cancelled: only a report tells whether
	// the row may be deleted.
	var delivered []int64
	for ; pending > 0; pending-- {
		m, ok := (<-reports).(*kafka.Message)
		if !ok {
			continue
		}
		id, _ := m.Opaque.(int64)
		if err := m.TopicPartition.Error; err != nil {
			res.failed = append(res.failed, replayFailure{id, err})
			logger.Error("dead letter not delivered", "id", id, "topic", *m.TopicPartition.Topic,
				"partition", m.TopicPartition.Partition, "error", err)
			continue
		}
		delivered = append(delivered, id)
		logger.Debug("dead letter replayed", "id", id, "topic", *m.TopicPartition.Topic,
			"partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset))
	}
	res.delivered += int64(len(delivered))
	if o.delete && len(delivered) > 0 {
		// Not ctx: a cancelled command must still forget what Kafka has acknowledged, or a rerun publishes it twice.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		n, err := store.DeleteDeadLetters(dctx, db, delivered)
		if err != nil {
			return fmt.Errorf("%d dead letters were delivered but not deleted (a rerun publishes them again): %w",
				len(delivered), err)
		}
		res.deleted += n
	}
	logger.Info("replayed dead letters", "up_to_id", rows[len(rows)-1].ID, "delivered", len(delivered),
		"failed_so_far", len(res.failed))
	return nil
}
