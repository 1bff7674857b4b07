package e2e

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/follow"
	"github.com/chainsink/chainsink/store"
)

// waitCanonical waits until the stored blocks are exactly the node's canonical chain 0..head: every height,
// each with the node's hash, and nothing above.
func waitCanonical(t *testing.T, c *simChain, s *store.Store, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, what, func() (bool, error) {
		head := c.head()
		rows, err := s.Pool().Query(context.Background(), `SELECT number, hash FROM blocks ORDER BY number`)
		if err != nil {
			return false, err
		}
		stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
			N int64
			H []byte
		}])
		if err != nil || len(stored) != int(head)+1 {
			return false, err
		}
		for _, b := range stored {
			if b.N > int64(head) || !bytes.Equal(b.H, c.block(uint64(b.N)).Hash().Bytes()) {
				return false, nil
			}
		}
		return true, nil
	})
}

// TestFollowThroughReorgs: `chainsink follow` and `chainsink run` live on a simulated chain that reorgs 1, 2
// and 5 blocks deep, onto a shorter branch that then grows longer, and once with the follower SIGKILLed right
// after the fork and started again. After each, the stored chain is the node's canonical one, every table
// agrees with it, and `chainsink verify --rpc` passes.
func TestFollowThroughReorgs(t *testing.T) {
	t.Parallel()
	c := newSimChain(t)
	_, pack, weth := deployWETH(t, c)
	deposits := func(blocks, perBlock int) {
		for range blocks {
			var txs []common.Hash
			for i := range perBlock {
				txs = append(txs, c.send(i%3, &weth, big.NewInt(1e15), pack("deposit")))
			}
			c.commit(txs...)
		}
	}
	deposits(4, 2)

	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 2})
	dbArgs := []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
	followArgs := append([]string{"follow", "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--poll-interval", "50ms", "--log-format", "json", "--log-level", "debug"}, dbArgs...)
	follower := start(t, followArgs...)
	run := start(t, runArgs(cfg, b.Addr(), "follow", "blocks:bundle")...)
	waitCanonical(t, c, s, "the chain followed to its head")
	requireVerified(t, dbArgs, c.url, int64(c.head())+1, nil)

	reorg := func(depth int, grow int, name string) {
		t.Helper()
		head := c.head()
		old := len(c.block(head).Transactions())
		if err := c.backend.Fork(c.block(head - uint64(depth)).Hash()); err != nil {
			t.Fatal(err)
		}
		for range grow {
			c.backend.Commit()
		}
		t.Logf("%s: fork %d deep at %d, new head %d (%d blocks mined; the old tip had %d transactions, the new %d)",
			name, depth, head-uint64(depth), c.head(), grow, old, len(c.block(c.head()).Transactions()))
	}
	check := func(what string) {
		t.Helper()
		waitCanonical(t, c, s, what)
		checkEveryTable(t, c, s)
		requireVerified(t, dbArgs, c.url, int64(c.head())+1, nil)
	}
	// New transactions go in before the first fork only: after a fork the pool re-injects the orphaned ones
	// asynchronously, and a send then could read a stale pending nonce.
	mine := func(n int) {
		for range n {
			c.backend.Commit()
		}
	}
	for _, depth := range []int{1, 2, 5} {
		reorg(depth, depth+1, "longer branch")
		check("the stored chain to follow a reorg")
		mine(1)
	}

	// A shorter branch first: the heights above its head are tombstoned; then it grows past the old tip.
	before := c.head()
	reorg(3, 1, "shorter branch")
	if c.head() >= before {
		t.Fatalf("the shorter branch is not canonical: head %d, was %d", c.head(), before)
	}
	check("the stored chain to follow a reorg onto a shorter branch")
	mine(4)
	check("the shorter branch to grow back")

	// SIGKILL at the reorg, then a restart finishes it.
	reorg(2, 3, "kill at the fork")
	follower.kill()
	follower = start(t, followArgs...)
	check("a restarted follower to finish the reorg")

	logs := strings.Join(follower.logLines(), "\n")
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the follower logged an error:\n%s", logs)
	}
	_ = follower.cmd.Process.Signal(syscall.SIGTERM)
	<-follower.done
	if follower.err != nil {
		t.Errorf("follow exited with %v after SIGTERM", follower.err)
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("run exited with %v", err)
	}
}

// TestFollowRefusesAReorgDeeperThanItKeeps: with --keep-hashes 3, a reorg 5 deep leaves no kept height on the
// node's chain; the follower must stop with exit 1 and say what to do, rather than guess a fork point.
func TestFollowRefusesAReorgDeeperThanItKeeps(t *testing.T) {
	t.Parallel()
	c := newSimChain(t)
	for range 8 {
		c.backend.Commit()
	}
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1})
	follower := start(t, "follow", "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks", "--keep-hashes", "3",
		"--poll-interval", "50ms", "--log-format", "json", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema)
	waitFor(t, 30*time.Second, "the follower to publish the chain", keptTipIs(s, c.head()))
	if err := c.backend.Fork(c.block(c.head() - 5).Hash()); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		c.backend.Commit()
	}
	select {
	case <-follower.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the follower goes on after a reorg deeper than its kept hashes")
	}
	if follower.err == nil || !strings.Contains(strings.Join(follower.logLines(), "\n"), "raise --keep-hashes") {
		t.Fatalf("follow exited with %v; want exit 1 naming --keep-hashes:\n%s", follower.err, strings.Join(follower.logLines(), "\n"))
	}
}

// TestFollowNewHeadsOverWebSocket: over ws the follower subscribes to new heads, so with a poll interval of
// an hour a block mined after it caught up is still published at once; over http it says it polls.
func TestFollowNewHeadsOverWebSocket(t *testing.T) {
	t.Parallel()
	c := newSimChain(t)
	for range 3 {
		c.backend.Commit()
	}
	s, cfg := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1})
	kept := func(want uint64) func() (bool, error) { return keptTipIs(s, want) }
	follower := start(t, "follow", "--rpc", c.wsURL, "--brokers", b.Addr(), "--topic", "blocks",
		"--poll-interval", "1h", "--log-format", "json", "--log-level", "debug", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema)
	waitFor(t, 30*time.Second, "the follower to publish the chain", kept(c.head()))
	follower.waitLog(t, "subscribing to new heads", 10*time.Second)
	for range 2 {
		c.backend.Commit()
		waitFor(t, 10*time.Second, "the new head, pushed, to be published", kept(c.head()))
	}
	_ = follower.cmd.Process.Signal(syscall.SIGTERM)
	<-follower.done
	if follower.err != nil {
		t.Errorf("follow exited with %v after SIGTERM", follower.err)
	}

	httpFollower := start(t, "follow", "--rpc", c.url, "--brokers", b.Addr(), "--topic", "blocks",
		"--poll-interval", "50ms", "--log-format", "json", "--database-url", cfg.DatabaseURL, "--schema", cfg.Schema)
	httpFollower.waitLog(t, "the node cannot push new heads; polling", 10*time.Second)
	c.backend.Commit()
	waitFor(t, 10*time.Second, "the polled head to be published", kept(c.head()))
	_ = httpFollower.cmd.Process.Signal(syscall.SIGTERM)
	<-httpFollower.done
}

// laggingNode is the simulated node seen through a replica that is behind (a restarted node, or one of
// several behind a load balancer): its head is capped, and it has no block above the cap. It counts the
// heads it was asked for, which is how the test knows the follower has looked at it.
type laggingNode struct {
	*backfill.RPCFetcher
	cap   atomic.Uint64 // 0: not behind
	heads atomic.Int64
}

func (n *laggingNode) Head(ctx context.Context) (uint64, error) {
	h, err := n.RPCFetcher.Head(ctx)
	if c := n.cap.Load(); c > 0 && h > c {
		h = c
	}
	n.heads.Add(1)
	return h, err
}

func (n *laggingNode) BlockHashes(ctx context.Context, numbers []uint64) ([][]byte, error) {
	hs, err := n.RPCFetcher.BlockHashes(ctx, numbers)
	for i, x := range numbers {
		if c := n.cap.Load(); err == nil && c > 0 && x > c {
			hs[i] = nil
		}
	}
	return hs, err
}

// TestFollowALaggingNode: a follower restarted against a node 2 blocks behind what it published, on the same
// chain, is not a reorg: it publishes nothing (no tombstone) while it waits, and goes on from its own tip
// once the node has caught up and grown.
func TestFollowALaggingNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newSimChain(t)
	for range 6 {
		c.backend.Commit()
	}
	s, _ := migratedStore(t)
	b := newBroker(t, map[string]int32{"blocks": 1})
	cm := backfill.ProducerConfig()
	for k, v := range backfill.FixedProducerConfig() {
		_ = cm.SetKey(k, v)
	}
	_ = cm.SetKey("bootstrap.servers", b.Addr())
	pub, err := backfill.NewKafkaPublisher("blocks", &cm, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rpcNode, err := backfill.DialRPC(ctx, c.url, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rpcNode.Close()
	node := &laggingNode{RPCFetcher: rpcNode}
	cfg := follow.Config{Topic: "blocks", PollInterval: 20 * time.Millisecond}
	keptTip := func() (int64, error) { return storedKeptTip(s) }
	run := func(f *follow.Follower, cond func() (bool, error), what string) {
		t.Helper()
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, what, cond)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := f.Stop(sctx); err != nil || f.Err() != nil {
			t.Fatalf("stop: %v, %v", err, f.Err())
		}
	}
	head := int64(c.head())
	run(follow.New(cfg, node, pub, s.Pool(), nil, nil), func() (bool, error) {
		n, err := keptTip()
		return n == head, err
	}, "the chain to be published")
	published := b.HighWatermarks("blocks")[0]

	node.cap.Store(uint64(head - 2))
	asked := node.heads.Load()
	run(follow.New(cfg, node, pub, s.Pool(), nil, nil), func() (bool, error) {
		return node.heads.Load() >= asked+10, nil
	}, "the follower to look at the lagging node ten times")
	if hw := b.HighWatermarks("blocks")[0]; hw != published {
		t.Fatalf("against a lagging node the follower published %d messages (tombstones?)", hw-published)
	}
	if n, err := keptTip(); err != nil || n != head {
		t.Fatalf("kept tip %d (%v), want %d kept", n, err, head)
	}

	node.cap.Store(0)
	c.backend.Commit()
	c.backend.Commit()
	run(follow.New(cfg, node, pub, s.Pool(), nil, nil), func() (bool, error) {
		n, err := keptTip()
		return n == int64(c.head()), err
	}, "the follower to go on once the node caught up")
	if hw := b.HighWatermarks("blocks")[0]; hw != published+2 {
		t.Fatalf("%d messages after the node caught up, want the 2 new blocks", hw-published)
	}
}

// storedKeptTip is the highest height whose hash a follower keeps in Postgres, -1 when none.
func storedKeptTip(s *store.Store) (int64, error) {
	var n int64
	err := s.Pool().QueryRow(context.Background(), `SELECT coalesce(max(number), -1) FROM follow_blocks`).Scan(&n)
	return n, err
}

// keptTipIs is a waitFor condition: the kept tip is height want.
func keptTipIs(s *store.Store, want uint64) func() (bool, error) {
	return func() (bool, error) {
		n, err := storedKeptTip(s)
		return n == int64(want), err
	}
}
