package indexer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chainsink/chainsink/indexer"
	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/metrics"
	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// frozenDB holds the first batch transaction of an indexer at Begin until released: the indexer's committer
// is "frozen" exactly where a stalled process would be, before its fence.
type frozenDB struct {
	store.DB
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (f *frozenDB) Begin(ctx context.Context) (pgx.Tx, error) {
	first := false
	f.once.Do(func() { first = true })
	if first {
		close(f.entered)
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.DB.Begin(ctx)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStaleOwnerIsFenced: while an indexer's committer is frozen before its commit, another owner stores the
// same offsets. When the frozen one wakes, its batch is fenced and rolled back, counted and logged, the
// partition restarts from what Postgres holds, and later messages are stored: every row exactly once.
func TestStaleOwnerIsFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	produce := func(from, to int) []localkafka.Record {
		recs := blockRecords(from, to)
		if err := broker.Produce(ctx, recs); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	first := produce(0, 10)

	db := &frozenDB{DB: s.Pool(), entered: make(chan struct{}), release: make(chan struct{})}
	var logs syncBuffer
	m := metrics.New()
	ix, err := indexer.New(indexer.Config{
		Brokers: broker.Addr(), Group: "fence",
		Topics:      blocksTopic(),
		BatchMaxAge: 50 * time.Millisecond,
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
	}, db, slog.New(slog.NewJSONHandler(&logs, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ix.Stop(context.Background()) //nolint:errcheck // the test checks the result of its own Stop
	<-db.entered

	// The new owner stores offsets 0..10 while the old one is frozen, with rows that differ from what the old
	// one decoded (another miner), so that a leak of the old owner's rows would show.
	owner := ownerBatch("fence", first)
	if _, err := store.WriteBatch(ctx, s.Pool(), owner); err != nil {
		t.Fatal(err)
	}
	close(db.release)

	waitFor(t, 20*time.Second, "the fenced batch to be counted", func() (bool, error) {
		return testutil.ToFloat64(m.FencedBatches) >= 1, nil
	})
	produce(10, 20)
	waitFor(t, 20*time.Second, "offsets after the restart", func() (bool, error) {
		n, err := storedTotal(ctx, s, "fence")
		return n == 20, err
	})
	if err := ix.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	requireBlocks(t, ctx, s, 20)
	requireOwnerRows(t, ctx, s, 10)
	for _, want := range []string{"batch fenced", "fenced partition restarted from Postgres"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// ownerMiner marks the rows of the test's other owner.
var ownerMiner = bytes.Repeat([]byte{0xee}, 20)

// ownerBatch is the batch another owner writes for recs (offsets from 0), its rows marked with ownerMiner.
func ownerBatch(group string, recs []localkafka.Record) *store.Batch {
	b := store.NewBatch(group, "blocks", 0, 0, chain.ReplaceBlocks)
	for i, r := range recs {
		rows, _ := blockDecoder(nil, r.Value)
		rows.Blocks[0].Miner = ownerMiner
		b.Add(store.Message{Offset: int64(i), Value: r.Value, Rows: rows})
	}
	return b
}

// requireOwnerRows fails unless exactly want stored blocks are the other owner's.
func requireOwnerRows(t *testing.T, ctx context.Context, s *store.Store, want int) {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM blocks WHERE miner = $1`, ownerMiner).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d blocks are the other owner's, want %d", n, want)
	}
}

// heldDB holds the indexer's first batch transaction open at one point until released: a zombie frozen with
// its transaction open. at is where: "fence" (the offset row is updated, nothing copied yet), "copy" (inside
// a COPY, after its first row) or "commit" (fence and rows written, COMMIT not sent).
type heldDB struct {
	store.DB
	at      string
	once    sync.Once
	entered chan struct{}
	release chan struct{}
	copied  atomic.Bool // a batch's COPY began: the transactions before it created partitions
}

func (h *heldDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := h.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &heldTx{Tx: tx, h: h, top: true}, nil
}

// hold blocks the first time it is called at the point h holds.
func (h *heldDB) hold(at string) {
	if at != h.at {
		return
	}
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.release
	}
}

type heldTx struct {
	pgx.Tx
	h   *heldDB
	top bool // not a savepoint
}

// Begin wraps the savepoints that the store's bisection opens, so that their COPYs are held too.
func (t *heldTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &heldTx{Tx: sp, h: t.h}, nil
}

// Conn hides the connection, so that store.Copy writes through CopyFrom below, where the test holds it.
func (t *heldTx) Conn() *pgx.Conn { return nil }

func (t *heldTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	t.h.hold("fence")
	t.h.copied.Store(true)
	return t.Tx.CopyFrom(ctx, table, cols, &heldSource{CopyFromSource: src, h: t.h})
}

func (t *heldTx) Commit(ctx context.Context) error {
	if t.top && t.h.copied.Load() {
		t.h.hold("commit")
	}
	return t.Tx.Commit(ctx)
}

type heldSource struct {
	pgx.CopyFromSource
	h    *heldDB
	rows int
}

func (s *heldSource) Next() bool {
	if s.rows == 1 {
		s.h.hold("copy")
	}
	s.rows++
	return s.CopyFromSource.Next()
}

// TestZombieWithAnOpenTransaction: the old owner is frozen with its transaction open (after its fence, inside
// a COPY, at COMMIT) when another owner writes the same offsets with other rows. The other owner must wait on
// the offset row (seen in pg_stat_activity), and once the old one goes on and commits, the other is fenced:
// the stored rows are the old owner's alone, none of the other's, and the old owner goes on.
func TestZombieWithAnOpenTransaction(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"fence", "copy", "commit"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, cfg := pgtest.Open(t)
			broker := blocksBroker(t, 1)
			first := blockRecords(0, 10)
			if err := broker.Produce(ctx, first); err != nil {
				t.Fatal(err)
			}
			db := &heldDB{DB: s.Pool(), at: at, entered: make(chan struct{}), release: make(chan struct{})}
			release := sync.OnceFunc(func() { close(db.release) })
			ix, err := indexer.New(indexer.Config{
				Brokers: broker.Addr(), Group: "zombie",
				Topics:      blocksTopic(),
				BatchMaxAge: 50 * time.Millisecond,
				KafkaConfig: map[string]string{"fetch.wait.max.ms": "10"},
			}, db, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ix.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer ix.Stop(context.Background()) //nolint:errcheck // the test checks the result of its own Stop
			defer release()                     // before Stop, which waits for the held transaction
			<-db.entered

			cfg.ApplicationName = "chainsink-other-owner-" + at
			other, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			otherErr := make(chan error, 1)
			go func() {
				_, err := store.WriteBatch(ctx, other.Pool(), ownerBatch("zombie", first))
				otherErr <- err
			}()
			pgtest.WaitForLockWait(t, s.Pool(), cfg.ApplicationName) // the other owner waits on the offset row
			release()
			if err := <-otherErr; !errors.Is(err, store.ErrFenced) {
				t.Fatalf("the other owner's write = %v, want ErrFenced", err)
			}
			if err := broker.Produce(ctx, blockRecords(10, 20)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the old owner to go on", func() (bool, error) {
				n, err := storedTotal(ctx, s, "zombie")
				return n == 20, err
			})
			if err := ix.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			requireBlocks(t, ctx, s, 20)
			requireOwnerRows(t, ctx, s, 0)
		})
	}
}

// commitGate holds every batch's COMMIT until open is closed and records how each ended: a partition's
// worker with a batch in hand, for as long as the test wants.
type commitGate struct {
	store.DB
	entered chan struct{} // closed at the first held COMMIT
	once    sync.Once
	open    chan struct{}
	mu      sync.Mutex
	results []error
}

func (g *commitGate) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := g.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &gatedTx{Tx: tx, g: g}, nil
}

type gatedTx struct {
	pgx.Tx
	g *commitGate
}

func (t *gatedTx) Commit(ctx context.Context) error {
	t.g.once.Do(func() { close(t.g.entered) })
	select {
	case <-t.g.open:
	case <-ctx.Done(): // a cancelled worker: its COMMIT then fails on ctx as a real one would
	}
	err := t.Tx.Commit(ctx)
	t.g.mu.Lock()
	t.g.results = append(t.g.results, err)
	t.g.mu.Unlock()
	return err
}

func (g *commitGate) ended() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]error(nil), g.results...)
}

// TestRevokedPartitionCommitsWhatItHolds: docs/architecture.md says a revoked partition gets up to
// RevokeFlushTimeout to commit what it holds. The first instance's COMMITs are held; a second instance joins,
// the first is asked to give partitions up while its batches wait, and the gate opens only once the revocation
// has begun: the held batches must commit (not be cancelled), and every message is stored exactly once.
// With a gate that never opens in time, the flush gives up after the timeout instead of blocking the group.
func TestRevokedPartitionCommitsWhatItHolds(t *testing.T) {
	t.Parallel()
	for _, opens := range []bool{true, false} {
		t.Run(map[bool]string{true: "within the timeout", false: "after the timeout"}[opens], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, _ := pgtest.Open(t)
			broker := blocksBroker(t, 2)
			var recs []localkafka.Record
			for i, r := range blockRecords(0, 40) {
				r.Partition = int32(i % 2)
				recs = append(recs, r)
			}
			if err := broker.Produce(ctx, recs); err != nil {
				t.Fatal(err)
			}
			gate := &commitGate{DB: s.Pool(), entered: make(chan struct{}), open: make(chan struct{})}
			openGate := sync.OnceFunc(func() { close(gate.open) })
			var logs syncBuffer
			cfg := indexer.Config{Brokers: broker.Addr(), Group: "revoke", Topics: blocksTopic(),
				BatchMaxAge: 50 * time.Millisecond, RevokeFlushTimeout: 3 * time.Second,
				KafkaConfig: map[string]string{"fetch.wait.max.ms": "10", "session.timeout.ms": "6000"}}
			first, err := indexer.New(cfg, gate,
				slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer first.Stop(context.Background()) //nolint:errcheck // the test checks what was stored
			defer openGate()                       // before Stop, which waits for the held COMMITs
			<-gate.entered
			second, err := indexer.New(cfg, s.Pool(), testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := second.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer second.Stop(context.Background()) //nolint:errcheck // the test checks what was stored
			waitFor(t, 30*time.Second, "the first instance to begin a revocation", func() (bool, error) {
				return strings.Contains(logs.String(), "revoking partitions"), nil
			})
			if opens {
				openGate()
			}
			waitFor(t, 30*time.Second, "the revocation to end", func() (bool, error) {
				return strings.Contains(logs.String(), `"msg":"partitions revoked"`), nil
			})
			if !opens {
				if !strings.Contains(logs.String(), "partition flush interrupted") {
					t.Fatalf("a flush past its timeout did not give up:\n%s", logs.String())
				}
				openGate()
			}
			waitFor(t, 30*time.Second, "every offset stored", func() (bool, error) {
				n, err := storedTotal(ctx, s, "revoke")
				return n == int64(len(recs)), err
			})
			requireBlocks(t, ctx, s, int64(len(recs)))
			if opens {
				for _, err := range gate.ended() {
					if err != nil {
						t.Fatalf("a held COMMIT of the revoked partition was cancelled instead of flushed: %v", err)
					}
				}
			}
		})
	}
}

// TestLostPartitionIsCancelledAtOnce: docs/architecture.md says a lost partition (the group has already moved
// on without this member) is cancelled at once rather than flushed, since another owner may hold it. The
// broker answers one heartbeat with UNKNOWN_MEMBER_ID while a COMMIT is held, which librdkafka reports as a
// lost assignment: the held COMMIT must end on a cancelled context long before RevokeFlushTimeout, and after
// the member rejoins every message is stored exactly once.
func TestLostPartitionIsCancelledAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	broker := blocksBroker(t, 1)
	recs := blockRecords(0, 30)
	if err := broker.Produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	gate := &commitGate{DB: s.Pool(), entered: make(chan struct{}), open: make(chan struct{})}
	openGate := sync.OnceFunc(func() { close(gate.open) })
	var logs syncBuffer
	cfg := indexer.Config{Brokers: broker.Addr(), Group: "lost", Topics: blocksTopic(),
		BatchMaxAge: 50 * time.Millisecond, RevokeFlushTimeout: 10 * time.Minute,
		KafkaConfig: map[string]string{"fetch.wait.max.ms": "10", "session.timeout.ms": "6000",
			"heartbeat.interval.ms": "100"}}
	ix, err := indexer.New(cfg, gate, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ix.Stop(context.Background()) //nolint:errcheck // the test checks what was stored
	defer openGate()                    // before Stop, which waits for the held COMMITs
	<-gate.entered
	broker.Cluster().ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	waitFor(t, 30*time.Second, "the lost partition to be given up", func() (bool, error) {
		return strings.Contains(logs.String(), `"msg":"partitions revoked"`) &&
			strings.Contains(logs.String(), `"lost":true`), nil
	})
	ended := gate.ended()
	if len(ended) == 0 || !errors.Is(ended[0], context.Canceled) {
		t.Fatalf("the held COMMIT of a lost partition ended with %v, want a cancelled context", ended)
	}
	openGate()
	waitFor(t, 60*time.Second, "every offset stored after the rejoin", func() (bool, error) {
		n, err := storedTotal(ctx, s, "lost")
		return n == int64(len(recs)), err
	})
	requireBlocks(t, ctx, s, int64(len(recs)))
}
