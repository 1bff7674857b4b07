package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/internal/deadletters"
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

// replayOptions are `chainsink dead-letters replay`'s flags.
type replayOptions struct {
	db    store.Config
	kafka kafkaFlags
	cfg   deadletters.Config
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
	f.Int64SliceVar(&o.cfg.Filter.IDs, "id", nil, "replay these dead letters (ids as in list), repeatable or comma-separated")
	f.StringVar(&o.cfg.Filter.Reason, "reason", "", "replay every dead letter of this reason (may be combined with --topic)")
	f.StringVar(&o.cfg.Filter.Topic, "topic", "", "replay every dead letter of this original topic (may be combined with --reason)")
	f.StringVar(&o.cfg.Filter.Group, "group", "", "only dead letters of this consumer group (all groups when empty)")
	f.StringVar(&o.cfg.ToTopic, "to-topic", "", "publish to this topic instead of each message's original topic and partition")
	f.BoolVar(&o.cfg.Delete, "delete", false, "delete each dead letter once Kafka has acknowledged its message")
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
	for _, id := range o.cfg.Filter.IDs {
		if id <= 0 {
			errs = append(errs, fmt.Errorf("--id %d: ids start at 1", id))
		}
	}
	if len(o.cfg.Filter.IDs) == 0 && o.cfg.Filter.Reason == "" && o.cfg.Filter.Topic == "" {
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
	return o.kafka.configMap(deadletters.ProducerConfig(), deadletters.FixedProducerConfig())
}

func runReplay(ctx context.Context, out io.Writer, o *replayOptions, logger *slog.Logger) error {
	st, err := openMigrated(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	cm, err := o.producerConfig()
	if err != nil {
		return err
	}
	p, err := deadletters.NewProducer(cm, logger)
	if err != nil {
		return err
	}
	defer p.Close()

	res, err := deadletters.Replay(ctx, st.Pool(), p, o.cfg, logger)
	var missing *deadletters.MissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("--id: %w", err)
	}
	// An interrupted replay is reported like a finished one, so that the operator sees what was settled.
	var interrupted *deadletters.InterruptedError
	if err != nil && !errors.As(err, &interrupted) {
		return err
	}
	rows := "rows kept (no --delete)"
	if o.cfg.Delete {
		rows = fmt.Sprintf("%d rows deleted", res.Deleted)
	}
	dest := "their original topics and partitions"
	if o.cfg.ToTopic != "" {
		dest = "topic " + o.cfg.ToTopic
	}
	fmt.Fprintf(out, "replayed %d dead letters to %s: %d delivered, %d failed; %s\n", res.Replayed, dest,
		res.Delivered, len(res.Failed), rows)
	for _, fl := range res.Failed {
		fmt.Fprintf(out, "  id %d not delivered (kept): %v\n", fl.ID, fl.Err)
	}
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d of %d dead letters were not delivered; they are kept", len(res.Failed), res.Replayed)
	}
	return nil
}
