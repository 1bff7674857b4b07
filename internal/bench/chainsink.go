package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// runSpec is one timed run of the real `chainsink run` binary over a topic published beforehand.
type runSpec struct {
	key      string
	schema   string
	topic    string
	format   string
	messages int
	blocks   int
	// wantRows is what the tables must hold afterwards (preloaded rows included); 0 skips the check.
	wantRows int64
	args     []string // after the benchmark's own flags
	env      []string // added to the environment
	// extra are tables beyond the core ones whose rows count towards wantRows (the typed tables).
	extra chain.Schema
}

// runResult is what one run measured.
type runResult struct {
	Seconds        float64
	FirstCommit    float64 // process start → first offset stored
	PeakRSS        int64   // VmHWM just before SIGTERM
	CommitP50      float64
	CommitP99      float64
	Batches        float64
	ChainsinkCPU   float64
	GCCPU          float64 // of ChainsinkCPU, the Go collector's (the runtime's own estimate)
	PostgresCPU    float64
	BenchCPU       float64
	MachineCPU     float64
	RowsInTables   int64
	DeadLetters    int64
	ShutdownSecond float64
	Refetched      int64 // messages the broker served a second time (localkafka.Refetches)
	// At the sampled peak of RSS: the Go runtime's memory from the OS and its heap in use (from /metrics);
	// the rest of RSS is C memory, i.e. librdkafka.
	PeakSample memSample
}

// memSample is one reading of chainsink's memory.
type memSample struct {
	RSS       int64 `json:"rss_bytes"`
	GoSys     int64 `json:"go_sys_bytes"`
	HeapInuse int64 `json:"go_heap_inuse_bytes"`
}

// sampleMemory reads pid's RSS and its Go runtime's memory from /metrics.
func sampleMemory(pid int, metricsURL string) (memSample, error) {
	var s memSample
	var err error
	if s.RSS, err = procStatus(pid, "VmRSS"); err != nil {
		return s, err
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(metricsURL)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	g, err := parseGauges(resp.Body, "go_memstats_sys_bytes", "go_memstats_heap_inuse_bytes")
	s.GoSys, s.HeapInuse = int64(g["go_memstats_sys_bytes"]), int64(g["go_memstats_heap_inuse_bytes"])
	return s, err
}

// gcCPUMetric is the Go runtime's estimate of the CPU its garbage collector has used since the start.
const gcCPUMetric = "go_cpu_classes_gc_total_cpu_seconds_total"

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runChainsink starts `chainsink run` on spec's topic with a fresh consumer group, waits until every
// partition's next_offset in kafka_offsets equals the broker's high watermark, reads the process' peak RSS and
// /metrics, and stops it with SIGTERM. The time measured runs from process start to the last offset stored.
func (b *bencher) runChainsink(ctx context.Context, spec runSpec) (runResult, error) {
	var res runResult
	port, err := freePort()
	if err != nil {
		return res, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	group := "bench-" + spec.key
	logPath := filepath.Join(b.logDir, spec.key+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	args := append([]string{"run", "--brokers", b.broker.Addr(), "--group", group,
		"--topics", spec.topic + ":" + spec.format, "--database-url", b.dbURL, "--schema", spec.schema,
		"--metrics-addr", metricsAddr, "--log-format", "json",
		"--batch-max-rows", strconv.Itoa(b.o.BatchRows)}, spec.args...)
	args = append(args, b.o.ChainsinkArgs...)
	want := map[int32]int64{}
	for p, hw := range b.broker.HighWatermarks(spec.topic) {
		if hw > 0 {
			want[p] = hw
		}
	}
	st, err := store.Open(ctx, store.Config{DatabaseURL: b.dbURL, Schema: spec.schema, MaxConns: 2})
	if err != nil {
		return res, err
	}
	defer st.Close()

	cmd := exec.Command(b.o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(append(os.Environ(), b.o.ChainsinkEnv...), spec.env...)
	if b.refetches != nil {
		b.refetches.Reset() // a run's group starts at the topic's beginning, as earlier runs' did
	}
	pgBefore := postgresCPU()
	selfBefore, _, _ := procCPU(os.Getpid())
	machineBefore := machineCPU()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", b.o.Binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	// Memory is sampled every 250 ms, to split the peak between Go and librdkafka.
	sampleDone := make(chan struct{})
	sampled := make(chan memSample, 1)
	go func() {
		var peak memSample
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleDone:
				sampled <- peak
				return
			case <-t.C:
			}
			if s, err := sampleMemory(cmd.Process.Pid, "http://"+metricsAddr+"/metrics"); err == nil && s.RSS > peak.RSS {
				peak = s
			}
		}
	}()
	var peak memSample
	stopSampling := sync.OnceFunc(func() { close(sampleDone); peak = <-sampled })
	defer stopSampling()
	deadline := time.NewTimer(b.o.RunTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			kill()
			return res, ctx.Err()
		case err := <-exited:
			return res, fmt.Errorf("chainsink run exited early (%v); log: %s", err, logPath)
		case <-deadline.C:
			kill()
			return res, fmt.Errorf("chainsink run not caught up after %s; log: %s", b.o.RunTimeout, logPath)
		case <-tick.C:
		}
		offs, err := store.ListOffsets(ctx, st.Pool(), group)
		if err != nil {
			kill()
			return res, err
		}
		if len(offs) > 0 && res.FirstCommit == 0 {
			res.FirstCommit = time.Since(began).Seconds()
		}
		n := 0
		for _, o := range offs {
			if o.Topic == spec.topic && want[o.Partition] == o.NextOffset {
				n++
			}
		}
		done = n == len(want)
	}
	res.Seconds = time.Since(began).Seconds()
	stopSampling()
	res.PeakSample = peak
	pid := cmd.Process.Pid
	res.PeakRSS, _ = procStatus(pid, "VmHWM")
	res.ChainsinkCPU, _, _ = procCPU(pid)
	res.PostgresCPU = postgresCPU().since(pgBefore)
	selfAfter, _, _ := procCPU(os.Getpid())
	res.BenchCPU = selfAfter - selfBefore
	res.MachineCPU = machineCPU() - machineBefore
	if b.refetches != nil {
		res.Refetched = b.refetches.Messages()
	}
	page, err := scrapeMetrics("http://" + metricsAddr + "/metrics")
	var h histogram
	if err == nil {
		h, err = parseHistogram(bytes.NewReader(page), "chainsink_commit_seconds")
	}
	if err == nil {
		res.CommitP50, res.CommitP99, res.Batches = h.Quantile(0.5), h.Quantile(0.99), h.Count
		if g, err := parseGauges(bytes.NewReader(page), gcCPUMetric); err == nil {
			res.GCCPU = g[gcCPUMetric]
		}
	} else {
		b.logf("    (metrics unavailable: %v)", err)
	}

	stopAt := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return res, fmt.Errorf("chainsink run exited with %v on SIGTERM; log: %s", err, logPath)
		}
	case <-time.After(time.Minute):
		kill()
		return res, fmt.Errorf("chainsink run still running a minute after SIGTERM; log: %s", logPath)
	}
	res.ShutdownSecond = time.Since(stopAt).Seconds()

	counts, err := store.CountRows(ctx, st.Pool())
	if err != nil {
		return res, err
	}
	for _, t := range chain.CoreTables.Names() {
		res.RowsInTables += counts[t]
	}
	for _, t := range spec.extra {
		var n int64
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t.Name}.Sanitize()).Scan(&n); err != nil {
			return res, err
		}
		res.RowsInTables += n
	}
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&res.DeadLetters); err != nil {
		return res, err
	}
	if spec.wantRows > 0 && res.RowsInTables != spec.wantRows {
		return res, fmt.Errorf("%s: the tables hold %d rows, want %d; log: %s", spec.key, res.RowsInTables, spec.wantRows, logPath)
	}
	if res.DeadLetters > 0 {
		return res, fmt.Errorf("%s: %d dead letters; log: %s", spec.key, res.DeadLetters, logPath)
	}
	return res, nil
}

// scrapeMetrics reads a /metrics page whole, once, for every figure taken from it.
func scrapeMetrics(url string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}
