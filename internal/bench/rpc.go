package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/chainsink/chainsink/internal/localkafka"
	"github.com/chainsink/chainsink/internal/rpcreplay"
	"github.com/chainsink/chainsink/store"
)

// The rpc scenario (issue 17) measures the producer side: a go-ethereum simulated chain of RPCBlocks blocks
// with RPCCallsPerBlock calls of a contract that emits 10 Ping(address indexed caller, uint256 value) each,
// 100,000 events in all, indexed into one typed table by `chainsink backfill` + `chainsink run`, in full mode
// and in filtered mode; once against the node (behind a recording proxy that counts the requests) and once
// against rpcreplay's Server answering from that recording, which takes the node's CPU out of the figures.
const (
	RPCBlocks        = 2000
	RPCCallsPerBlock = 5
	pingsPerCall     = 10
)

// pingABI is the contract's ABI: the event alone, any call emits it.
const pingABI = `[{"type":"event","name":"Ping","anonymous":false,"inputs":[` +
	`{"name":"caller","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":false}]}]`

// pingCode is the creation code of a contract whose every call emits Ping(msg.sender, i) for i = 0 … 9,
// assembled by hand (there is no compiler here):
//
//	runtime:  PUSH1 0                    i = 0
//	loop:     JUMPDEST                   (offset 2)
//	          DUP1 PUSH1 0 MSTORE        mem[0:32] = i
//	          CALLER PUSH32 topic0       topics: topic0, caller
//	          PUSH1 32 PUSH1 0 LOG2      log mem[0:32]
//	          PUSH1 1 ADD                i++
//	          DUP1 PUSH1 10 GT           10 > i ?
//	          PUSH1 2 JUMPI STOP
//	creation: PUSH1 len DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN, then the runtime
func pingCode() []byte {
	topic0 := crypto.Keccak256([]byte("Ping(address,uint256)"))
	runtime := []byte{0x60, 0x00, 0x5b, 0x80, 0x60, 0x00, 0x52, 0x33, 0x7f}
	runtime = append(runtime, topic0...)
	runtime = append(runtime, 0x60, 0x20, 0x60, 0x00, 0xa2, 0x60, 0x01, 0x01, 0x80, 0x60, pingsPerCall, 0x11, 0x60, 0x02, 0x57, 0x00)
	creation := []byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}
	return append(creation, runtime...)
}

// RPCRun is one measured backfill + run of the rpc scenario.
type RPCRun struct {
	Name string `json:"name"`
	// Source is "node" (the simulated chain, through the recording proxy) or "replay".
	Source string `json:"source"`
	// Seconds is from the backfill's start (run already up and idle, as in a deployment) to every event
	// stored in the typed table.
	Seconds float64 `json:"seconds"`
	// BackfillSeconds is from the backfill's start to its exit, after its last message was acknowledged.
	BackfillSeconds float64 `json:"backfill_seconds"`
	// Requests are the JSON-RPC requests the backfill made, batch elements counted one by one.
	Requests       int64   `json:"requests"`
	RequestsPerBlk float64 `json:"requests_per_block"`
	BackfillCPU    float64 `json:"backfill_cpu_seconds"`
	RunCPU         float64 `json:"run_cpu_seconds"`
	PostgresCPU    float64 `json:"postgres_cpu_seconds"`
	// SourceCPU is the benchmark process's own: the node (or the replay server), the recording proxy and
	// the in-process broker.
	SourceCPU float64 `json:"source_cpu_seconds"`
	// BackfillMsPerBlock is the backfill's CPU per block.
	BackfillMsPerBlock float64 `json:"backfill_cpu_ms_per_block"`
	Events             int64   `json:"events"`
	Rows               int64   `json:"rows"`
}

// countingHandler counts the JSON-RPC requests it passes on (batch elements one by one).
type countingHandler struct {
	next http.Handler
	n    atomic.Int64
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := 1
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err == nil {
			n = len(batch)
		}
	}
	h.n.Add(int64(n))
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.next.ServeHTTP(w, r)
}

// rpcScenario builds the chain and measures each mode against the node and against its recording.
func (b *bencher) rpcScenario(ctx context.Context) error {
	b.logf("==> rpc: a simulated chain of %d blocks × %d calls × %d Ping events", RPCBlocks, RPCCallsPerBlock, pingsPerCall)
	t0 := time.Now()
	sim, url, contract, head, err := pingChain(ctx, RPCBlocks)
	if err != nil {
		return err
	}
	defer sim.Close()
	b.logf("    mined in %s (head %d, contract %s)", time.Since(t0).Round(time.Millisecond), head, contract)

	dir, err := os.MkdirTemp("", "chainsink-bench-rpc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Ping.json"), []byte(pingABI), 0o644); err != nil {
		return err
	}
	conf, untyped := filepath.Join(dir, "ping.yaml"), filepath.Join(dir, "ping-untyped.yaml")
	sets := fmt.Sprintf("abi_dir: %s\ncontracts:\n  - {name: ping, abi: Ping, address: %q, events: [Ping]}\n", dir, strings.ToLower(contract.Hex()))
	if err := os.WriteFile(conf, []byte(sets), 0o644); err != nil {
		return err
	}
	// The same set with the events kept out of the generic events table: one row per event fewer.
	if err := os.WriteFile(untyped, []byte("events_table: untyped\n"+sets), 0o644); err != nil {
		return err
	}
	// conf is run's configuration (and, with --config in args, backfill's filter).
	for _, mode := range []struct {
		name, conf string
		args       []string
	}{
		{"full mode, defaults", conf, nil},
		{"full mode, --concurrency 8 --batch-size 50", conf, []string{"--concurrency", "8", "--batch-size", "50"}},
		{"filtered mode, defaults", conf, []string{"--config", conf}},
		{"filtered mode, --batch-size 500", conf, []string{"--config", conf, "--batch-size", "500"}},
		{"filtered mode, --batch-size 500, events_table: untyped", untyped, []string{"--config", untyped, "--batch-size", "500"}},
	} {
		rec := rpcreplay.NewRecorder(url)
		live, err := b.rpcPass(ctx, mode.name, "node", rec, head, mode.conf, mode.args)
		if err != nil {
			return err
		}
		b.rep.RPC = append(b.rep.RPC, live)
		replay := &rpcreplay.Server{Answers: rec.Answers}
		again, err := b.rpcPass(ctx, mode.name, "replay", replay, head, mode.conf, mode.args)
		if err != nil {
			return err
		}
		if missed := replay.Missed(); len(missed) > 0 {
			return fmt.Errorf("%s: the replay was asked %d requests it has no answer for, e.g. %s", mode.name, len(missed), missed[0])
		}
		b.rep.RPC = append(b.rep.RPC, again)
	}
	return nil
}

// rpcPass runs one backfill + run of blocks 0..head from the node behind h into a fresh schema.
func (b *bencher) rpcPass(ctx context.Context, name, source string, h http.Handler, head uint64, conf string, args []string) (RPCRun, error) {
	r := RPCRun{Name: name, Source: source}
	const schema = "bench_rpc"
	st, done, err := b.scratchSchema(ctx, schema, 2)
	if err != nil {
		return r, err
	}
	defer done()
	db := []string{"--database-url", b.dbURL, "--schema", schema, "--log-format", "json"}
	if out, err := exec.CommandContext(ctx, b.o.Binary, append([]string{"tables", "apply", "--config", conf}, db...)...).CombinedOutput(); err != nil {
		return r, fmt.Errorf("tables apply: %w\n%s", err, out)
	}
	counter := &countingHandler{next: h}
	srv := httptest.NewServer(counter)
	defer srv.Close()
	broker, err := localkafka.Start(localkafka.Options{Topics: map[string]int32{"rpc": b.o.Partitions}})
	if err != nil {
		return r, err
	}
	defer broker.Close()

	// The logs of both processes stay in the benchmark's log directory, one pair per pass.
	logName := filepath.Join(b.logDir, "rpc-"+strings.NewReplacer(" ", "", ",", "-", "--", "").Replace(name)+"-"+source)
	runLog, err := os.Create(logName + ".run.log")
	if err != nil {
		return r, err
	}
	defer runLog.Close()
	run := exec.CommandContext(ctx, b.o.Binary, append(append([]string{"run", "--config", conf, "--brokers", broker.Addr(), "--group", "rpc",
		"--topics", "rpc:bundle"}, db...), b.o.ChainsinkArgs...)...)
	run.Env = append(os.Environ(), b.o.ChainsinkEnv...)
	joined, err := waitForLog(run, `"msg":"partitions assigned"`, runLog)
	if err != nil {
		return r, err
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	select {
	case <-joined:
	case <-time.After(30 * time.Second):
		return r, fmt.Errorf("%s: chainsink run never got its partitions", name)
	}

	backfill := exec.CommandContext(ctx, b.o.Binary, append(append([]string{"backfill", "--rpc", srv.URL, "--brokers", broker.Addr(),
		"--topic", "rpc", "--from", "0", "--to", fmt.Sprint(head)}, db...), args...)...)
	backfillLog, err := os.Create(logName + ".backfill.log")
	if err != nil {
		return r, err
	}
	defer backfillLog.Close()
	var backfillErr strings.Builder
	backfill.Stderr = io.MultiWriter(&backfillErr, backfillLog)
	pgBefore, selfBefore := postgresCPU(), selfCPU()
	began := time.Now()
	if err := backfill.Start(); err != nil {
		return r, err
	}
	// The end is watched in kafka_offsets, a row per partition: run has stored everything once every
	// partition's next offset is the broker's high watermark as backfill left it. (A count(*) of the typed
	// table every 5 ms, as this loop did before, kept a Postgres backend busy scanning for the whole run, on
	// the same 2 cores as the work it timed.) The time is that of the poll that first saw the final offsets,
	// which may come before backfill's process has exited: backfill exits after its last delivery report.
	backfillExited := make(chan error, 1)
	go func() { backfillExited <- backfill.Wait() }()
	var (
		final      map[int32]int64
		seen       map[int32]int64
		lastChange time.Time
	)
	deadline := time.Now().Add(b.o.RunTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-backfillExited:
			if err != nil {
				return r, fmt.Errorf("%s: backfill: %w\n%s", name, err, backfillErr.String())
			}
			r.BackfillSeconds = time.Since(began).Seconds()
			final, backfillExited = broker.HighWatermarks("rpc"), nil
		default:
		}
		offs, err := store.ListOffsets(ctx, st.Pool(), "rpc")
		if err != nil {
			return r, err
		}
		now := map[int32]int64{}
		for _, o := range offs {
			now[o.Partition] = o.NextOffset
		}
		if !maps.Equal(now, seen) {
			seen, lastChange = now, time.Now()
		}
		if final != nil && caughtUp(seen, final) {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%s: offsets %v of %v after %s; backfill: %s", name, seen, final, b.o.RunTimeout, backfillErr.String())
		}
		<-tick.C
	}
	r.Seconds = lastChange.Sub(began).Seconds()
	want := int64(RPCBlocks * RPCCallsPerBlock * pingsPerCall)
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM ping_evt_ping`).Scan(&r.Events); err != nil {
		return r, err
	}
	if r.Events != want {
		return r, fmt.Errorf("%s: %d of %d events stored with every message committed", name, r.Events, want)
	}
	_ = run.Process.Signal(syscall.SIGTERM)
	if err := run.Wait(); err != nil {
		return r, fmt.Errorf("%s: run: %w", name, err)
	}
	r.PostgresCPU, r.SourceCPU = postgresCPU().since(pgBefore), selfCPU()-selfBefore
	r.BackfillCPU = cpuOf(backfill.ProcessState)
	r.RunCPU = cpuOf(run.ProcessState)
	r.Requests = counter.n.Load()
	r.RequestsPerBlk = float64(r.Requests) / float64(head+1)
	r.BackfillMsPerBlock = r.BackfillCPU / float64(head+1) * 1000
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM blocks) + (SELECT count(*) FROM transactions) +
		(SELECT count(*) FROM logs) + (SELECT count(*) FROM events) + (SELECT count(*) FROM ping_evt_ping)`).Scan(&r.Rows); err != nil {
		return r, err
	}
	b.logf("    %s, %s: %.2fs (backfill %.2fs), %.1f requests/block, CPU backfill %.2fs (%.2f ms/block) run %.2fs postgres %.2fs %s %.2fs; %d rows",
		name, source, r.Seconds, r.BackfillSeconds, r.RequestsPerBlk, r.BackfillCPU, r.BackfillMsPerBlock, r.RunCPU, r.PostgresCPU, source, r.SourceCPU, r.Rows)
	return r, nil
}

// caughtUp reports whether the offsets stored reach the high watermark of every partition that has messages.
func caughtUp(stored, hw map[int32]int64) bool {
	for p, end := range hw {
		if end > 0 && stored[p] != end {
			return false
		}
	}
	return true
}

// pingChain mines the scenario's chain on a simulated backend serving JSON-RPC over HTTP: the contract in
// block 1, then blocks blocks of RPCCallsPerBlock calls.
func pingChain(ctx context.Context, blocks int) (*simulated.Backend, string, common.Address, uint64, error) {
	node, key, err := simulatedNode()
	if err != nil {
		return nil, "", common.Address{}, 0, err
	}
	sim, url := node.Backend, node.URL
	from := crypto.PubkeyToAddress(key.PublicKey)
	client := sim.Client()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	nonce := uint64(0)
	send := func(to *common.Address, data []byte, gas uint64) error {
		tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, To: to, Gas: gas,
			GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9), Data: data}), signer, key)
		if err != nil {
			return err
		}
		nonce++
		return client.SendTransaction(ctx, tx)
	}
	contract := crypto.CreateAddress(from, 0)
	fail := func(err error) (*simulated.Backend, string, common.Address, uint64, error) {
		_ = sim.Close()
		return nil, "", common.Address{}, 0, err
	}
	if err := send(nil, pingCode(), 200_000); err != nil {
		return fail(err)
	}
	sim.Commit()
	for range blocks {
		for range RPCCallsPerBlock {
			if err := send(&contract, nil, 100_000); err != nil {
				return fail(err)
			}
		}
		sim.Commit()
	}
	head, err := client.BlockNumber(ctx)
	if err != nil {
		return fail(err)
	}
	logs, err := client.TransactionReceipt(ctx, mustLastTx(ctx, client, head))
	if err != nil {
		return fail(err)
	}
	if len(logs.Logs) != pingsPerCall || logs.Status != 1 {
		return fail(fmt.Errorf("a call emitted %d logs (status %d), want %d", len(logs.Logs), logs.Status, pingsPerCall))
	}
	return sim, url, contract, head, nil
}

func mustLastTx(ctx context.Context, c simulated.Client, head uint64) common.Hash {
	blk, err := c.BlockByNumber(ctx, new(big.Int).SetUint64(head))
	if err != nil || len(blk.Transactions()) == 0 {
		return common.Hash{}
	}
	return blk.Transactions()[0].Hash()
}

// waitForLog starts cmd and closes the returned channel when a line of its stderr contains s.
func waitForLog(cmd *exec.Cmd, s string, copyTo io.Writer) (<-chan struct{}, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		found := false
		for sc.Scan() {
			_, _ = fmt.Fprintln(copyTo, sc.Text())
			if !found && strings.Contains(sc.Text(), s) {
				found = true
				close(seen)
			}
		}
	}()
	return seen, nil
}

func cpuOf(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// selfCPU is the CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
