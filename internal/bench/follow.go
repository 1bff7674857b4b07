package bench

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/simchain"
)

// simulatedNode starts a go-ethereum simulated chain serving JSON-RPC over HTTP on a free port, with one
// funded account, key.
func simulatedNode() (sim *simchain.Node, key *ecdsa.PrivateKey, err error) {
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, nil, err
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	sim, err = simchain.Start(types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(1e6), big.NewInt(1e18))}})
	return sim, key, err
}

// followLatency measures the live path: a go-ethereum simulated chain serving JSON-RPC over HTTP mines a
// block every FollowInterval with a few transfers, `chainsink follow` (confirmations 0, polling every 100 ms)
// publishes it, `chainsink run` stores it; the latency of a block is from its Commit at the node to its row
// being visible in Postgres (polled every 5 ms). p50 and p99 over FollowBlocks blocks, after a warm-up.
func (b *bencher) followLatency(ctx context.Context) error {
	const schema = "bench_follow"
	st, done, err := b.scratchSchema(ctx, schema, 2)
	if err != nil {
		return err
	}
	defer done()

	sim, key, err := simulatedNode()
	if err != nil {
		return err
	}
	defer sim.Close()
	rpcURL := sim.URL

	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"follow": 1}})
	if err != nil {
		return err
	}
	defer broker.Close()
	db := []string{"--database-url", b.dbURL, "--schema", schema, "--log-format", "json"}
	follow := exec.CommandContext(ctx, b.o.Binary, append([]string{"follow", "--rpc", rpcURL, "--brokers", broker.Addr(),
		"--topic", "follow", "--poll-interval", "100ms"}, db...)...)
	// run at its defaults (and --chainsink-arg), as deployed: what a block waits for in run is part of the
	// latency measured.
	run := exec.CommandContext(ctx, b.o.Binary, append(append([]string{"run", "--brokers", broker.Addr(), "--group", "follow",
		"--topics", "follow:bundle"}, db...), b.o.ChainsinkArgs...)...)
	run.Env = append(os.Environ(), b.o.ChainsinkEnv...)
	for _, c := range []*exec.Cmd{follow, run} {
		if b.o.KeepLogs {
			c.Stderr = os.Stderr
		}
		if err := c.Start(); err != nil {
			return err
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	}

	client := sim.Client()
	nonce := uint64(0)
	var latencies []time.Duration
	warmUp := 5
	began := time.Now()
	b.logf("==> follow latency: a block every %s, %d blocks", b.o.FollowInterval, b.o.FollowBlocks)
	for i := 0; i < b.o.FollowBlocks+warmUp; i++ {
		for range 3 {
			if err := sendTransfer(ctx, client, key, nonce); err != nil {
				return err
			}
			nonce++
		}
		hash := sim.Commit()
		mined := time.Now()
		blk, err := client.BlockByHash(ctx, hash)
		if err != nil {
			return err
		}
		deadline := mined.Add(30 * time.Second)
		for {
			var n int
			if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM blocks WHERE number = $1 AND hash = $2`,
				blk.Number().Int64(), hash.Bytes()).Scan(&n); err != nil {
				return err
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("block %d not stored 30 s after it was mined", blk.NumberU64())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if i >= warmUp {
			latencies = append(latencies, time.Since(mined))
		}
		if wait := b.o.FollowInterval - time.Since(mined); wait > 0 {
			time.Sleep(wait)
		}
	}
	slices.Sort(latencies)
	q := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	r := Result{Key: "follow", Name: "(f) chainsink follow + run, block to row", Format: "bundle", Indexes: "live",
		Blocks: len(latencies), Seconds: time.Since(began).Seconds(), CommitP50: q(0.5).Seconds(), CommitP99: q(0.99).Seconds()}
	b.rep.add(r)
	b.rep.FollowLatency = &LatencyReport{Blocks: len(latencies), Interval: b.o.FollowInterval.Seconds(),
		P50: q(0.5).Seconds(), P99: q(0.99).Seconds(), Max: latencies[len(latencies)-1].Seconds()}
	b.logf("    block to row: p50 %s, p99 %s, max %s over %d blocks", q(0.5).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond), len(latencies))
	return nil
}

// LatencyReport is the follow scenario's result: seconds from a block's mining to its row in Postgres.
type LatencyReport struct {
	Blocks   int     `json:"blocks"`
	Interval float64 `json:"block_interval_seconds"`
	P50      float64 `json:"p50_seconds"`
	P99      float64 `json:"p99_seconds"`
	Max      float64 `json:"max_seconds"`
}

func sendTransfer(ctx context.Context, c simulated.Client, key *ecdsa.PrivateKey, nonce uint64) error {
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return err
	}
	to := common.Address{0x42}
	tip := big.NewInt(1e9)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, To: &to, Value: big.NewInt(1),
		Gas: 21000, GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(1337)), key)
	if err != nil {
		return err
	}
	return c.SendTransaction(ctx, signed)
}
