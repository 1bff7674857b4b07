package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/store"
)

func newOffsetsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsets",
		Short: "List the stored partition offsets and set one explicitly (resolves an offset anomaly)",
		Long: `chainsink keeps each partition's next offset in PostgreSQL (kafka_offsets), in the transaction of every
batch. When a stored offset is outside its partition's log, "chainsink run" does not consume the partition:

  - log_regressed: the stored offset is above the log's end. The topic was deleted and recreated, the
    consumer was pointed at another cluster (a DR failover), or an unclean leader election lost messages.
  - retention_gap: the stored offset is below the log's start. Retention deleted messages that were never
    stored.

Nothing is dropped and the offset never moves by itself; the partition is held, logged at ERROR, counted in
chainsink_offset_anomaly and reported by /readyz and "chainsink status". An operator decides where it goes on
with "chainsink offsets set", which is recorded in offset_changes (who, when, from, to, why) in the same
transaction; a running instance picks the new offset up within --offset-recheck and consumes from there.`,
	}
	cmd.AddCommand(newOffsetsListCmd(g), newOffsetsSetCmd(g))
	return cmd
}

type offsetsListOptions struct {
	db      store.Config
	kafka   kafkaFlags
	group   string
	changes int
	timeout time.Duration
}

func newOffsetsListCmd(g *globals) *cobra.Command {
	o := &offsetsListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored offsets (with --brokers: against each partition's log) and the recorded changes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(o.db.Validate(), positive("--kafka-timeout", o.timeout)); err != nil {
				return err
			}
			return runOffsetsList(cmd.Context(), g.stdout, o)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers; when set, each offset is compared with its partition's log")
	f := cmd.Flags()
	f.StringVar(&o.group, "group", "", "only this consumer group (all groups when empty)")
	f.IntVar(&o.changes, "changes", 20, "show this many of the newest recorded offset changes")
	f.DurationVar(&o.timeout, "kafka-timeout", 5*time.Second, "how long to wait for the brokers")
	return cmd
}

func positive(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %v: must be positive", flag, d)
	}
	return nil
}

func runOffsetsList(ctx context.Context, out io.Writer, o *offsetsListOptions) error {
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	offs, err := store.ListOffsets(ctx, st.Pool(), o.group)
	if err != nil {
		return err
	}
	var bounds map[topicPartition]logBound
	var berrs map[topicPartition]error
	if o.kafka.brokers != "" && len(offs) > 0 {
		var tps []topicPartition
		for _, p := range offs {
			tps = append(tps, topicPartition{p.Topic, p.Partition})
		}
		bounds, berrs = o.kafka.logBounds(ctx, o.timeout, tps)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEXT OFFSET\tLOG START\tLOG END\tSTATE\tUPDATED")
	anomalies := 0
	for _, p := range offs {
		start, end, state := "-", "-", "-"
		if o.kafka.brokers != "" {
			tp := topicPartition{p.Topic, p.Partition}
			if b, ok := bounds[tp]; ok {
				start, end, state = strconv.FormatInt(b.start, 10), strconv.FormatInt(b.end, 10), b.state(p.NextOffset)
				if state != indexer.OffsetOK {
					anomalies++
				}
			} else {
				state = "unknown"
				if e := berrs[tp]; e != nil {
					state = "unknown: " + e.Error()
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Group, p.Topic, p.Partition, p.NextOffset, start, end, state,
			p.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if o.changes > 0 {
		changes, err := store.ListOffsetChanges(ctx, st.Pool(), o.group, o.changes)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "CHANGES (newest first)")
		if len(changes) == 0 {
			fmt.Fprintln(tw, "  none")
		} else {
			fmt.Fprintln(tw, "AT\tGROUP\tTOPIC\tPARTITION\tFROM\tTO\tBY\tREASON")
			for _, c := range changes {
				from := "none"
				if c.From != nil {
					from = strconv.FormatInt(*c.From, 10)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", c.ChangedAt.UTC().Format(time.RFC3339), c.Group,
					c.Topic, c.Partition, from, c.To, c.By, c.Reason)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write offsets: %w", err)
	}
	if anomalies > 0 {
		return fmt.Errorf("%d partitions have a stored offset outside their log; see chainsink offsets set --help", anomalies)
	}
	return nil
}

type offsetsSetOptions struct {
	db        store.Config
	kafka     kafkaFlags
	group     string
	topic     string
	partition int32
	to        string
	reason    string
	timeout   time.Duration
}

func newOffsetsSetCmd(g *globals) *cobra.Command {
	o := &offsetsSetOptions{}
	cmd := &cobra.Command{
		Use:   "set --group G --topic T --partition P --to N|earliest|latest",
		Short: "Set a partition's stored next offset, and record who did it and why",
		Long: `Set the next offset that the group stores for a partition, in kafka_offsets, and record the change in
offset_changes in the same transaction. --to takes an offset, or "earliest" / "latest": the partition's log
start or end as the brokers report them now (which needs --brokers).

  - After a recreated topic or a failover (log_regressed), --to earliest consumes the new log from its start;
    rows are replaced by their natural keys, so messages already stored once are stored again harmlessly.
  - After a retention gap, --to earliest skips what retention deleted (record why with --reason; the range
    [old offset, log start) is in the change's from and to) and consumes what is left.

It is safe while "chainsink run" runs: a running owner's next batch is fenced by the change (its compare-and-
set no longer matches), and it restarts from the new offset; a held partition is resumed within
--offset-recheck.`,
		Example: `  chainsink offsets set --brokers kafka:9092 --group chainsink --topic logs --partition 0 --to earliest \
    --reason "topic recreated on 2026-12-01, INC-42"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runOffsetsSet(cmd.Context(), g.stdout, o)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers; needed for --to earliest|latest")
	f := cmd.Flags()
	f.StringVar(&o.group, "group", "chainsink", "consumer group whose offset to set")
	f.StringVar(&o.topic, "topic", "", "topic (required)")
	f.Int32Var(&o.partition, "partition", -1, "partition (required)")
	f.StringVar(&o.to, "to", "", "the new next offset: a number, earliest or latest (required)")
	f.StringVar(&o.reason, "reason", "", "why, recorded with the change (an incident, a ticket)")
	f.DurationVar(&o.timeout, "kafka-timeout", 5*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("partition")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *offsetsSetOptions) validate() error {
	var errs []error
	if strings.TrimSpace(o.group) == "" || strings.TrimSpace(o.topic) == "" {
		errs = append(errs, errors.New("--group and --topic must not be empty"))
	}
	if o.partition < 0 {
		errs = append(errs, fmt.Errorf("--partition %d: must be 0 or more", o.partition))
	}
	switch o.to {
	case "earliest", "latest":
		if o.kafka.brokers == "" {
			errs = append(errs, fmt.Errorf("--to %s needs --brokers to ask the log", o.to))
		}
	default:
		if n, err := strconv.ParseInt(o.to, 10, 64); err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("--to %q: want an offset (0 or more), earliest or latest", o.to))
		}
	}
	errs = append(errs, positive("--kafka-timeout", o.timeout), o.db.Validate())
	return errors.Join(errs...)
}

// actor names who runs the command, for offset_changes: the OS user and host, which is what an operator's
// shell or a Kubernetes Job can tell.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

func runOffsetsSet(ctx context.Context, out io.Writer, o *offsetsSetOptions) error {
	to, err := strconv.ParseInt(o.to, 10, 64)
	if o.to == "earliest" || o.to == "latest" {
		tp := topicPartition{o.topic, o.partition}
		bounds, errs := o.kafka.logBounds(ctx, o.timeout, []topicPartition{tp})
		b, ok := bounds[tp]
		if !ok {
			return fmt.Errorf("--to %s: read the log of %s/%d at %s: %w", o.to, o.topic, o.partition, o.kafka.brokers,
				errors.Join(errs[tp], errors.New("no answer")))
		}
		to, err = b.start, nil
		if o.to == "latest" {
			to = b.end
		}
	}
	if err != nil {
		return fmt.Errorf("--to %q: %w", o.to, err)
	}
	st, err := openMigrated(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	from, err := store.SetOffset(ctx, st.Pool(), store.OffsetChange{Group: o.group, Topic: o.topic,
		Partition: o.partition, To: to, By: actor(), Reason: o.reason})
	if err != nil {
		return err
	}
	was := "had no stored offset"
	if from != nil {
		was = "was at " + strconv.FormatInt(*from, 10)
	}
	_, err = fmt.Fprintf(out, "group %s, %s/%d: next offset set to %d (it %s); recorded in offset_changes\n",
		o.group, o.topic, o.partition, to, was)
	return err
}
