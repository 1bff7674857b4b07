package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The big tables are range-partitioned by block number (migration 00012): one partition per range of heights,
// plus a default partition that takes any height no partition covers. A Partitioner creates the partitions
// of the heights a batch is about to write, and of the range after them, before the batch begins, so that
// rows land in their own range's partition and the next range is there before its first block.

// DefaultPartitionBlocks is the heights per partition when nothing else is configured: about 139 days of
// mainnet, a few hundred million rows of its biggest table.
const DefaultPartitionBlocks = 1_000_000

// partitionLockTimeout bounds a partition attach's wait for its locks. Attaching takes an exclusive lock on
// the default partition, which every batch in flight holds a share of; a batch that begins meanwhile queues
// behind the attach. So the attach waits for at most this long, and gives up: the batch goes on with its
// rows in the default partition, from which the next attempt moves them.
const partitionLockTimeout = 2 * time.Second

// Span is one partition's range of heights, [From, To).
type Span struct {
	Name     string
	From, To int64
}

// DefaultPartitionRetry is how long a Partitioner waits after a failed creation before it tries again.
const DefaultPartitionRetry = 30 * time.Second

// Partitioner keeps the partitioned tables of one schema partitioned ahead of the data. It is safe for
// concurrent use: the workers of every owned Kafka partition share one. Instances that share a schema take
// turns through an advisory lock and each reads what the others created.
type Partitioner struct {
	blocks int64
	// Retry is how long batches go on without trying to create partitions after a creation failed: a
	// creation that waits on a long query (an analyst's over a partitioned table holds its default
	// partition) must not stall every batch by partitionLockTimeout. Default DefaultPartitionRetry.
	Retry time.Duration
	// failedAt is when the last creation failed (UnixNano), 0 after a success.
	failedAt atomic.Int64

	// creating is held by the one Ensure that creates partitions; a channel, so that a worker waiting for
	// it gives up with its context (a revoked partition's flush must end in time).
	creating chan struct{}
	// mu guards tables, which creators replace whole: a batch whose partitions exist only reads them, and
	// never waits for a creation of others.
	mu     sync.RWMutex
	tables map[string]*PartitionedTable // nil until read
}

// NewPartitioner returns a partitioner that creates ranges of blocks heights, aligned to multiples of blocks
// (clipped where a range created otherwise, like the _p0 partition of a migrated table, is in the way).
// blocks <= 0 means DefaultPartitionBlocks.
func NewPartitioner(blocks int64) *Partitioner {
	if blocks <= 0 {
		blocks = DefaultPartitionBlocks
	}
	return &Partitioner{blocks: blocks, creating: make(chan struct{}, 1)}
}

// Blocks is the heights per partition.
func (p *Partitioner) Blocks() int64 { return p.blocks }

// Ensure makes every partitioned table of the schema have a partition for each of heights and for the range
// after the highest of them. It costs nothing when they exist; otherwise it creates the missing ones (see
// partitionLockTimeout), and moves the rows of their range out of the default partition. An error leaves
// the tables as they were: a batch may be written anyway, its rows go to the default partition. After an
// error it does not try again for Retry, and returns nil meanwhile.
func (p *Partitioner) Ensure(ctx context.Context, db DB, heights []uint64) error {
	if len(heights) == 0 {
		return nil
	}
	p.mu.RLock()
	tables := p.tables
	p.mu.RUnlock()
	if tables != nil && len(missing(tables, p.blocks, heights)) == 0 {
		return nil
	}
	retry := p.Retry
	if retry == 0 {
		retry = DefaultPartitionRetry
	}
	if at := p.failedAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < retry {
		return nil // the rows go to the default partition until the next try moves them
	}
	if err := p.ensure(ctx, db, heights); err != nil {
		p.failedAt.Store(time.Now().UnixNano())
		return err
	}
	p.failedAt.Store(0)
	return nil
}

func (p *Partitioner) ensure(ctx context.Context, db DB, heights []uint64) error {
	select {
	case p.creating <- struct{}{}:
		defer func() { <-p.creating }()
	case <-ctx.Done():
		return ctx.Err()
	}
	// Another worker or instance may have created them meanwhile: read the catalog again, under the lock.
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin creating partitions: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true),
		pg_advisory_xact_lock(hashtextextended('chainsink:partitions:' || current_schema(), 0))`,
		strconv.FormatInt(partitionLockTimeout.Milliseconds(), 10)); err != nil {
		return fmt.Errorf("take the partition lock: %w", err)
	}
	tables, err := Partitions(ctx, tx)
	if err != nil {
		return err
	}
	need := missing(tables, p.blocks, heights)
	if len(need) == 0 { // created meanwhile: nothing to commit
		p.mu.Lock()
		p.tables = tables
		p.mu.Unlock()
		return nil
	}
	for table, points := range need {
		for _, h := range points {
			if err := p.create(ctx, tx, tables[table], h); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit new partitions: %w", err)
	}
	p.mu.Lock()
	p.tables = tables
	p.mu.Unlock()
	return nil
}

// missing returns, per table, one height of each range of blocks heights that needs a partition.
func missing(tables map[string]*PartitionedTable, blocks int64, heights []uint64) map[string][]int64 {
	top := int64(slices.Max(heights))
	points := []int64{(top/blocks + 1) * blocks} // the range after the highest: ahead of the data
	for _, h := range heights {
		points = append(points, int64(h))
	}
	out := map[string][]int64{}
	for name, t := range tables {
		var ranges []int64 // aligned ranges already asked for
		for _, h := range points {
			if _, ok := covering(t.Spans, h); ok || slices.Contains(ranges, h/blocks) {
				continue
			}
			ranges = append(ranges, h/blocks)
			out[name] = append(out[name], h)
		}
	}
	return out
}

func covering(spans []Span, h int64) (int, bool) {
	i, ok := slices.BinarySearchFunc(spans, h, func(s Span, h int64) int {
		switch {
		case s.To <= h:
			return -1
		case s.From > h:
			return 1
		}
		return 0
	})
	return i, ok
}

// create adds the partition of h's aligned range, clipped to the gap between its neighbours, to table: a
// plain table first, then attached, which locks the partitioned table only against other schema changes,
// not against writers (CREATE TABLE … PARTITION OF would lock out every reader and writer meanwhile).
func (p *Partitioner) create(ctx context.Context, tx pgx.Tx, t *PartitionedTable, h int64) error {
	table, spans := t.Name, t.Spans
	from, to := h/p.blocks*p.blocks, (h/p.blocks+1)*p.blocks
	i, _ := covering(spans, h)
	if i > 0 {
		from = max(from, spans[i-1].To)
	}
	if i < len(spans) {
		to = min(to, spans[i].From)
	}
	var name string
	if err := tx.QueryRow(ctx, `SELECT chainsink_partition_name($1, $2)`, table, "_p"+strconv.FormatInt(from, 10)).
		Scan(&name); err != nil {
		return fmt.Errorf("name the partition of %s from %d: %w", table, from, err)
	}
	parent, part := pgx.Identifier{table}.Sanitize(), pgx.Identifier{name}.Sanitize()
	stmts := []string{
		`CREATE TABLE ` + part + ` (LIKE ` + parent + ` INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED)`,
	}
	if t.Default != "" {
		dflt := pgx.Identifier{t.Default}.Sanitize()
		stmts = append(stmts,
			// The attach locks the default partition anyway; taking it first keeps a writer from adding rows
			// of the range between the move and the attach.
			`LOCK TABLE `+dflt+` IN ACCESS EXCLUSIVE MODE`,
			fmt.Sprintf(`WITH moved AS (DELETE FROM %s WHERE block_number >= %d AND block_number < %d RETURNING *) INSERT INTO %s SELECT * FROM moved`,
				dflt, from, to, part))
	}
	stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)`, parent, part, from, to))
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("create partition %s of %s for heights [%d,%d): %w", name, table, from, to, err)
		}
	}
	t.Spans = slices.Insert(spans, i, Span{Name: name, From: from, To: to})
	return nil
}

// PartitionedTable is a table partitioned by block number and its partitions.
type PartitionedTable struct {
	Name string
	// Default is its default partition, "" when it has none.
	Default string
	// Spans are its range partitions, sorted by height.
	Spans []Span
}

// Partitions reads the tables of the current schema (search_path) partitioned by range of block_number, and
// their partitions; other partitioned tables (an operator's own) are not chainsink's to manage.
func Partitions(ctx context.Context, db DB) (map[string]*PartitionedTable, error) {
	rows, err := db.Query(ctx, `
		SELECT t.relname, p.relname, pg_get_expr(p.relpartbound, p.oid)
		FROM pg_partitioned_table pt
		JOIN pg_class t ON t.oid = pt.partrelid
		LEFT JOIN pg_inherits i ON i.inhparent = t.oid
		LEFT JOIN pg_class p ON p.oid = i.inhrelid
		WHERE t.relnamespace = current_schema()::regnamespace AND pt.partstrat = 'r' AND pt.partnatts = 1
		  AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = pt.partattrs[0]) = 'block_number'`)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	defer rows.Close()
	out := map[string]*PartitionedTable{}
	for rows.Next() {
		var table string
		var name, bound *string
		if err := rows.Scan(&table, &name, &bound); err != nil {
			return nil, fmt.Errorf("read partitions: %w", err)
		}
		t := out[table]
		if t == nil {
			t = &PartitionedTable{Name: table}
			out[table] = t
		}
		switch {
		case name == nil:
		case *bound == "DEFAULT":
			t.Default = *name
		default:
			s, err := parseBound(*bound)
			if err != nil {
				return nil, fmt.Errorf("partition %s of %s: %w", *name, table, err)
			}
			s.Name = *name
			t.Spans = append(t.Spans, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	for _, t := range out {
		slices.SortFunc(t.Spans, func(a, b Span) int { return cmp.Compare(a.From, b.From) })
	}
	return out, nil
}

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \('?(-?\d+|MINVALUE)'?\) TO \('?(-?\d+|MAXVALUE)'?\)$`)

func parseBound(s string) (Span, error) {
	m := boundRE.FindStringSubmatch(s)
	if m == nil {
		return Span{}, fmt.Errorf("bound %q is not a range of block numbers", s)
	}
	num := func(v string, inf int64) (int64, error) {
		if v == "MINVALUE" || v == "MAXVALUE" {
			return inf, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	from, err := num(m[1], math.MinInt64)
	if err != nil {
		return Span{}, err
	}
	to, err := num(m[2], math.MaxInt64)
	if err != nil {
		return Span{}, err
	}
	return Span{From: from, To: to}, nil
}
