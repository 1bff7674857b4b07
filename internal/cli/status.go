package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/store"
)

type statusOptions struct {
	db           store.Config
	kafka        kafkaFlags
	group        string
	kafkaTimeout time.Duration
	exact        bool
	json         bool
}

func newStatusCmd(g *globals) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show offsets, lag, dead letters, table sizes and the newest block",
		Long: `Show what the database knows about the indexer:

  - per (group, topic, partition): the stored next offset and when a batch last committed it; with --brokers,
    also the partition's log start and high watermark, the lag (high watermark − next offset, in messages; never
    clamped, so a negative lag shows a stored offset above the log's end) and the offset state: ok,
    log_regressed (the stored offset is above the log's end: a recreated topic, a failover) or retention_gap
    (below the log's start: retention deleted messages that were never stored). chainsink run holds such a
    partition instead of consuming it; "chainsink offsets set" resolves it. Only partitions with a stored offset
    are listed: a partition that never committed a batch has none yet. The lag counts every offset, so a topic
    written by transactional producers never shows less than its commit markers;
  - dead letters, grouped by topic and reason, with their count and the newest one's time;
  - the rows of every table, ESTIMATED from the catalog by default: the row density measured by the last
    VACUUM/ANALYZE (pg_class.reltuples/relpages) times the table's current size, or the statistics collector's
    live-row counter for a table never analyzed. It costs nothing but can be off by the rows changed since
    autovacuum last looked. --exact counts with count(*) instead, which reads every row of every table;
  - the newest and the oldest stored block with their timestamps, and, after "chainsink retention", the
    block history is kept from.

A high watermark that cannot be read (broker down, timeout) is shown as unknown with the reason, the rest of
the report is printed anyway, and the command exits 1; so it does when a partition's offset state is not ok.

--json prints one JSON document instead of tables; its fields are stable:
  {"schema", "group", "partitions": [{"group", "topic", "partition", "next_offset", "last_commit",
  "log_start", "high_watermark", "lag", "offset_state", "watermark_error"}], "dead_letters": [{"topic", "reason", "count", "newest"}],
  "tables": [{"table", "rows", "exact"}], "newest_block": {"number", "timestamp"}, "oldest_block": {"number",
  "timestamp"}, "retention_horizon": {"block", "keep_blocks", "at"} (only after retention)}
Times are RFC 3339 in UTC; log_start, high_watermark, lag, offset_state and watermark_error are null when not
queried or not known,
newest_block and oldest_block are null when no block is stored.`,
		Example: `  chainsink status --database-url postgres://chainsink@localhost/chain
  chainsink status --brokers localhost:9092 --group chainsink --json | jq '.partitions[] | select(.lag > 1000)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runStatus(cmd.Context(), g.stdout, o)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers, host:port[,host:port…]; when set, high watermarks and lag are shown")
	f := cmd.Flags()
	f.StringVar(&o.group, "group", "", "show only this consumer group's offsets and dead letters (all groups when empty)")
	f.DurationVar(&o.kafkaTimeout, "kafka-timeout", 5*time.Second, "how long to wait for the brokers' high watermarks")
	f.BoolVar(&o.exact, "exact", false, "count every table's rows with count(*) instead of estimating them (slow on big tables)")
	f.BoolVar(&o.json, "json", false, "print a JSON document instead of tables")
	return cmd
}

func (o *statusOptions) validate() error {
	var errs []error
	errs = append(errs, o.db.Validate())
	if o.kafkaTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--kafka-timeout %v: must be positive", o.kafkaTimeout))
	}
	if _, err := parseKeyValues(o.kafka.config); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// statusJSON is the --json document. Its field names are a public contract: scripts and monitors parse them.
type statusJSON struct {
	Schema      string              `json:"schema"`
	Group       string              `json:"group"`
	Partitions  []partitionJSON     `json:"partitions"`
	DeadLetters []deadLetterSumJSON `json:"dead_letters"`
	Tables      []tableJSON         `json:"tables"`
	NewestBlock *blockJSON          `json:"newest_block"`
	OldestBlock *blockJSON          `json:"oldest_block"`
	// Horizon is where `chainsink retention` made history start; absent without retention.
	Horizon *horizonJSON `json:"retention_horizon,omitempty"`
	// TablePartitions are the tables partitioned by block number (not Kafka's partitions).
	TablePartitions []tablePartitionsJSON `json:"table_partitions"`
}

type tablePartitionsJSON struct {
	Table  string `json:"table"`
	Ranges int    `json:"range_partitions"`
	// From and To are the heights the range partitions cover, [from, to).
	From int64 `json:"from_block"`
	To   int64 `json:"to_block"`
	// InDefault is the rows of the default partition, counted up to 10,001.
	InDefault int64 `json:"rows_in_default_partition"`
}

type horizonJSON struct {
	Block      int64     `json:"block"`
	KeepBlocks int64     `json:"keep_blocks"`
	At         time.Time `json:"at"`
}

type partitionJSON struct {
	Group          string    `json:"group"`
	Topic          string    `json:"topic"`
	Partition      int32     `json:"partition"`
	NextOffset     int64     `json:"next_offset"`
	LastCommit     time.Time `json:"last_commit"`
	HighWatermark  *int64    `json:"high_watermark"`
	LogStart       *int64    `json:"log_start"`
	Lag            *int64    `json:"lag"`
	OffsetState    *string   `json:"offset_state"`
	WatermarkError *string   `json:"watermark_error"`
}

type deadLetterSumJSON struct {
	Topic  string    `json:"topic"`
	Reason string    `json:"reason"`
	Count  int64     `json:"count"`
	Newest time.Time `json:"newest"`
}

type tableJSON struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	Exact bool   `json:"exact"`
}

type blockJSON struct {
	Number    uint64    `json:"number"`
	Timestamp time.Time `json:"timestamp"`
}

type topicPartition struct {
	topic     string
	partition int32
}

func runStatus(ctx context.Context, out io.Writer, o *statusOptions) error {
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := store.Status(ctx, st.Pool(), o.group, o.exact)
	if err != nil {
		return err
	}
	doc := statusJSON{Schema: st.Schema(), Group: o.group, Partitions: []partitionJSON{},
		DeadLetters: []deadLetterSumJSON{}, Tables: []tableJSON{}}
	for _, p := range rep.Offsets {
		doc.Partitions = append(doc.Partitions, partitionJSON{Group: p.Group, Topic: p.Topic, Partition: p.Partition,
			NextOffset: p.NextOffset, LastCommit: p.UpdatedAt.UTC()})
	}
	for _, d := range rep.DeadLetters {
		doc.DeadLetters = append(doc.DeadLetters, deadLetterSumJSON{Topic: d.Topic, Reason: d.Reason, Count: d.Count,
			Newest: d.Newest.UTC()})
	}
	for _, t := range rep.Tables {
		doc.Tables = append(doc.Tables, tableJSON{Table: t.Table, Rows: t.Rows, Exact: t.Exact})
	}
	if rep.NewestBlock != nil {
		doc.NewestBlock = &blockJSON{Number: rep.NewestBlock.Number, Timestamp: rep.NewestBlock.Timestamp.UTC()}
	}
	if rep.OldestBlock != nil {
		doc.OldestBlock = &blockJSON{Number: rep.OldestBlock.Number, Timestamp: rep.OldestBlock.Timestamp.UTC()}
	}
	doc.TablePartitions = []tablePartitionsJSON{}
	for _, p := range rep.Partitioned {
		doc.TablePartitions = append(doc.TablePartitions, tablePartitionsJSON{Table: p.Table, Ranges: p.Ranges, From: p.From,
			To: p.To, InDefault: p.InDefault})
	}
	if h := rep.Horizon; h != nil {
		doc.Horizon = &horizonJSON{Block: h.Block, KeepBlocks: h.KeepBlocks, At: h.At.UTC()}
	}

	var kafkaErr error
	if o.kafka.brokers != "" && len(doc.Partitions) > 0 {
		kafkaErr = o.addWatermarks(ctx, doc.Partitions)
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
	} else if err := printStatus(out, &doc, o.kafka.brokers != "", time.Now()); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return kafkaErr
}

// addWatermarks fills each partition's log start and end (high watermark), lag and offset state, or the reason
// it could not. It fails when a partition is unknown or its stored offset is outside its log.
func (o *statusOptions) addWatermarks(ctx context.Context, parts []partitionJSON) error {
	var tps []topicPartition
	seen := map[topicPartition]bool{}
	for _, p := range parts {
		tp := topicPartition{p.Topic, p.Partition}
		if !seen[tp] { // several groups may read the same partition
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	bounds, errs := o.kafka.logBounds(ctx, o.kafkaTimeout, tps)
	failed, anomalous := 0, 0
	for i := range parts {
		tp := topicPartition{parts[i].Topic, parts[i].Partition}
		if b, ok := bounds[tp]; ok {
			// Not clamped: a negative lag is a stored offset above the log's end.
			lag := b.end - parts[i].NextOffset
			state := b.state(parts[i].NextOffset)
			parts[i].HighWatermark, parts[i].LogStart, parts[i].Lag, parts[i].OffsetState = &b.end, &b.start, &lag, &state
			if state != indexer.OffsetOK {
				anomalous++
			}
			continue
		}
		msg := "no answer from the brokers"
		if e := errs[tp]; e != nil {
			msg = e.Error()
		}
		parts[i].WatermarkError = &msg
		failed++
	}
	var errs2 []error
	if failed > 0 {
		errs2 = append(errs2, fmt.Errorf("query high watermarks at %s: %d of %d partitions unknown (see watermark_error / the table)",
			o.kafka.brokers, failed, len(parts)))
	}
	if anomalous > 0 {
		errs2 = append(errs2, fmt.Errorf("%d partitions have a stored offset outside their log (offset_state); "+
			"chainsink run does not consume them until `chainsink offsets set` resolves them", anomalous))
	}
	return errors.Join(errs2...)
}

func printStatus(w io.Writer, doc *statusJSON, withKafka bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITIONS")
	if len(doc.Partitions) == 0 {
		fmt.Fprintln(tw, "  no stored offsets: no batch has been committed yet")
	} else {
		fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEXT OFFSET\tLOG START\tHIGH WATERMARK\tLAG\tSTATE\tLAST COMMIT")
		for _, p := range doc.Partitions {
			start, hw, lag, state := "-", "-", "-", "-"
			if p.HighWatermark != nil {
				start, hw, lag = strconv.FormatInt(*p.LogStart, 10), strconv.FormatInt(*p.HighWatermark, 10), strconv.FormatInt(*p.Lag, 10)
				state = *p.OffsetState
			} else if withKafka {
				start, hw, lag, state = "unknown", "unknown", "unknown", "unknown"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Group, p.Topic, p.Partition, p.NextOffset, start, hw,
				lag, state, stamp(p.LastCommit, now))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DEAD LETTERS")
	if len(doc.DeadLetters) == 0 {
		fmt.Fprintln(tw, "  none")
	} else {
		fmt.Fprintln(tw, "TOPIC\tREASON\tCOUNT\tNEWEST")
		for _, d := range doc.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.Topic, d.Reason, d.Count, stamp(d.Newest, now))
		}
	}
	fmt.Fprintln(tw)
	if len(doc.Tables) > 0 && doc.Tables[0].Exact {
		fmt.Fprintln(tw, "TABLES (rows counted)")
	} else {
		fmt.Fprintln(tw, "TABLES (rows estimated from the catalog; --exact counts them)")
	}
	fmt.Fprintln(tw, "TABLE\tROWS")
	for _, t := range doc.Tables {
		n := strconv.FormatInt(t.Rows, 10)
		if !t.Exact {
			n = "~" + n
		}
		fmt.Fprintf(tw, "%s\t%s\n", t.Table, n)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "BLOCKS")
	if doc.NewestBlock == nil {
		fmt.Fprintln(tw, "  no blocks stored")
	} else {
		fmt.Fprintln(tw, "\tNUMBER\tTIMESTAMP")
		fmt.Fprintf(tw, "newest\t%d\t%s\n", doc.NewestBlock.Number, stamp(doc.NewestBlock.Timestamp, now))
		fmt.Fprintf(tw, "oldest\t%d\t%s\n", doc.OldestBlock.Number, stamp(doc.OldestBlock.Timestamp, now))
	}
	if h := doc.Horizon; h != nil {
		fmt.Fprintf(tw, "history kept from block %d (retention of %d blocks, %s)\n", h.Block, h.KeepBlocks, stamp(h.At, now))
	}
	if len(doc.TablePartitions) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "TABLE PARTITIONS (by block number)")
		fmt.Fprintln(tw, "TABLE	RANGES	HEIGHTS	IN DEFAULT")
		stray := false
		for _, p := range doc.TablePartitions {
			heights := "-"
			if p.Ranges > 0 {
				heights = fmt.Sprintf("%d-%d", p.From, p.To-1)
			}
			n := strconv.FormatInt(p.InDefault, 10)
			if p.InDefault > 10_000 {
				n = "> 10000"
			}
			stray = stray || p.InDefault > 0
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Table, p.Ranges, heights, n)
		}
		if stray {
			fmt.Fprintln(tw, "rows in a default partition: heights stored before their partition was created; the next batch of their range creates it and moves them (docs/operations.md, \"Partitions\")")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var failed []partitionJSON
	for _, p := range doc.Partitions {
		if p.WatermarkError != nil {
			failed = append(failed, p)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "UNKNOWN HIGH WATERMARKS")
		for _, p := range failed {
			if _, err := fmt.Fprintf(w, "  %s/%d: %s\n", p.Topic, p.Partition, *p.WatermarkError); err != nil {
				return err
			}
		}
	}
	return nil
}

// stamp is a time for people: UTC, and how long ago.
func stamp(t, now time.Time) string {
	age := now.Sub(t)
	if age < 0 {
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), roughDuration(age))
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
