package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chainsink/chainsink/store"
)

// Result is one scenario's measurement.
type Result struct {
	Key     string `json:"key"`
	Name    string `json:"name"`
	Format  string `json:"format"`  // rows (written directly), bundle or ethereum-etl
	Indexes string `json:"indexes"` // live or deferred
	// Tuned runs use TunedBundles or TunedETL instead of chainsink's defaults.
	Tuned     bool  `json:"tuned,omitempty"`
	Preloaded int64 `json:"preloaded_rows,omitempty"`
	Messages  int   `json:"messages,omitempty"`
	Blocks    int   `json:"blocks"`
	// Rows is every row the scenario wrote, in all tables, decoded events, calls and transfers included.
	Rows    int64   `json:"rows"`
	Seconds float64 `json:"seconds"`
	// FirstCommit is, for chainsink, the time from process start to the first stored offset (start-up,
	// consumer-group join, first batch).
	FirstCommit float64 `json:"first_commit_seconds,omitempty"`
	PeakRSS     int64   `json:"peak_rss_bytes,omitempty"`
	// PeakSample is chainsink's memory at the highest RSS sampled every 250 ms: RSS, the Go runtime's share
	// and its heap in use; RSS − Go is C memory (librdkafka's buffers).
	PeakSample   memSample `json:"peak_memory_sample"`
	CommitP50    float64   `json:"commit_p50_seconds,omitempty"`
	CommitP99    float64   `json:"commit_p99_seconds,omitempty"`
	Batches      float64   `json:"batches,omitempty"`
	IndexRebuild float64   `json:"index_rebuild_seconds,omitempty"`
	// Refetched is how many messages the broker served chainsink a second time: a partition paused drops
	// what librdkafka had fetched ahead for it (docs/performance.md, "Held, not paused"). Absent is none.
	Refetched int64 `json:"messages_fetched_again,omitempty"`
	// CPU seconds used during the timed window by chainsink, by every postgres process, and by this
	// benchmark process (the writers of (a) and (b); the in-process Kafka broker in the chainsink runs).
	ChainsinkCPU float64 `json:"chainsink_cpu_seconds,omitempty"`
	// ChainsinkGCCPU is the part of ChainsinkCPU that Go's garbage collector used, by the runtime's estimate
	// (go_cpu_classes_gc_total_cpu_seconds_total at the end of the window, since the start).
	ChainsinkGCCPU float64 `json:"chainsink_gc_cpu_seconds,omitempty"`
	PostgresCPU    float64 `json:"postgres_cpu_seconds"`
	ClientCPU      float64 `json:"bench_cpu_seconds"`
	// OtherCPU is what every other process of the machine used in the window: noise from other work.
	OtherCPU float64 `json:"other_processes_cpu_seconds"`
	// WALBytes and Checkpoints are the server's WAL written and checkpoints done during the window.
	WALBytes    int64 `json:"wal_bytes"`
	Checkpoints int64 `json:"checkpoints"`

	BlocksPerSec float64 `json:"blocks_per_second"`
	RowsPerSec   float64 `json:"rows_per_second"`
	VsCeiling    float64 `json:"rows_per_second_vs_ceiling,omitempty"`
	// PostgresVsCeiling is Postgres's CPU a row in this run against the ceiling's of the same run: what
	// chainsink's statements cost Postgres beyond a plain COPY of the rows. The machine's speed, which moves
	// both, drops out of it.
	PostgresVsCeiling float64 `json:"postgres_cpu_per_row_vs_ceiling,omitempty"`
	VsBaseline        float64 `json:"rows_per_second_vs_baseline,omitempty"`
	// VsBaseline1 is against (b1), the one-row-per-statement baseline.
	VsBaseline1 float64 `json:"rows_per_second_vs_baseline1,omitempty"`
	// WithRebuildBlocksPerSec counts the index rebuild in (deferred scenario).
	WithRebuildBlocksPerSec float64 `json:"blocks_per_second_with_rebuild,omitempty"`
}

func (r *Result) compute() {
	for _, f := range []*float64{&r.CommitP50, &r.CommitP99} {
		if math.IsNaN(*f) {
			*f = 0 // no observation; JSON has no NaN
		}
	}
	if r.Seconds > 0 {
		r.BlocksPerSec = float64(r.Blocks) / r.Seconds
		r.RowsPerSec = float64(r.Rows) / r.Seconds
	}
	if r.IndexRebuild > 0 {
		r.WithRebuildBlocksPerSec = float64(r.Blocks) / (r.Seconds + r.IndexRebuild)
	}
}

func (r *Result) summary() string {
	r.compute()
	s := fmt.Sprintf("%d rows in %.2fs: %.0f blocks/s, %s rows/s", r.Rows, r.Seconds, r.BlocksPerSec, human(r.RowsPerSec))
	if r.PeakRSS > 0 {
		s += fmt.Sprintf(", peak RSS %s (sampled peak %s: Go %s, heap in use %s), commit p50 %s p99 %s, first commit after %.2fs",
			mb(r.PeakRSS), mb(r.PeakSample.RSS), mb(r.PeakSample.GoSys), mb(r.PeakSample.HeapInuse),
			ms(r.CommitP50), ms(r.CommitP99), r.FirstCommit)
		if r.Refetched > 0 {
			s += fmt.Sprintf(", %d messages fetched again", r.Refetched)
		}
	}
	if r.IndexRebuild > 0 {
		s += fmt.Sprintf(", index rebuild %.2fs", r.IndexRebuild)
	}
	return s
}

// GrowthPoint is chainsink's bundle speed with rows already in the tables.
type GrowthPoint struct {
	Settings   string  `json:"settings"`
	Preloaded  int64   `json:"preloaded_rows"`
	RowsPerSec float64 `json:"rows_per_second"`
	VsEmpty    float64 `json:"vs_empty_tables"`
}

// DeferredSpeedup compares the bundle run with indexes deferred to the one with every index live.
type DeferredSpeedup struct {
	Settings    string  `json:"settings"`
	Ingest      float64 `json:"ingest_speedup"`
	WithRebuild float64 `json:"speedup_with_rebuild"`
	Rebuild     float64 `json:"rebuild_seconds"`
}

// Target is a goal the run is reported against.
type Target struct {
	Name string `json:"name"`
	// Settings is "defaults" (chainsink as shipped) or "tuned" (TunedBundles, TunedETL).
	Settings string  `json:"settings"`
	Want     string  `json:"want"`
	Got      float64 `json:"got"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
	// Measured is false when the scenarios it needs were not run.
	Measured bool `json:"measured"`
}

// Report is the JSON written to bench/results/<timestamp>.json.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Machine   struct {
		CPUs             int               `json:"cpus"`
		GoVersion        string            `json:"go_version"`
		ChainsinkVersion string            `json:"chainsink_version"`
		LoadBefore       float64           `json:"load_average_1m_before"`
		LoadAfter        float64           `json:"load_average_1m_after"`
		Postgres         string            `json:"postgres"`
		Settings         map[string]string `json:"postgres_settings"`
	} `json:"machine"`
	Options struct {
		Blocks     int     `json:"blocks"`
		Partitions int32   `json:"partitions"`
		BatchRows  int     `json:"batch_rows"`
		InsertRows int     `json:"insert_rows_per_statement"`
		Growth     []int64 `json:"growth_preload_rows"`
		Backlog    int     `json:"backlog_messages"`
		VerifyRows int64   `json:"verify_rows"`
		IndexMem   string  `json:"index_build_maintenance_work_mem"`
		// The settings of the tuned runs, and any extra settings of every run.
		TunedBundles  string   `json:"tuned_bundles"`
		TunedETL      string   `json:"tuned_ethereum_etl"`
		ChainsinkArgs []string `json:"chainsink_args,omitempty"`
		ChainsinkEnv  []string `json:"chainsink_env,omitempty"`
	} `json:"options"`
	Workload struct {
		RowsPerBlock   int            `json:"rows_per_block"`
		RowsByTable    map[string]int `json:"rows_per_block_by_table"`
		BundleBytes    int            `json:"bundle_bytes_per_block"`
		ETLBytes       int            `json:"etl_item_bytes_per_block"`
		ETLMessages    int            `json:"etl_messages_per_block"`
		BuildSeconds   float64        `json:"build_seconds"`
		TotalBlocks    int            `json:"blocks"`
		BundledBlocks  int            `json:"bundled_blocks"`
		TotalBundleRow int64          `json:"rows"`
	} `json:"workload"`
	Results []Result `json:"results"`
	// Summaries, per settings ("defaults", "tuned").
	Growth   []GrowthPoint     `json:"cost_growth"`
	Deferred []DeferredSpeedup `json:"deferred_index_speedup"`
	Targets  []Target          `json:"targets"`
	// FollowLatency is the follow scenario's block-to-row latency, when it ran.
	FollowLatency *LatencyReport `json:"follow_latency,omitempty"`
	// RPC are the rpc scenario's backfill + run passes, when it ran.
	RPC          []RPCRun `json:"rpc,omitempty"`
	TotalSeconds float64  `json:"total_seconds"`
}

func newReport(o Options, began time.Time) *Report {
	r := &Report{StartedAt: began.UTC()}
	r.Machine.CPUs = runtime.NumCPU()
	r.Machine.GoVersion = runtime.Version()
	r.Machine.LoadBefore = loadAverage()
	r.Options.Blocks, r.Options.Partitions, r.Options.BatchRows = o.Blocks, o.Partitions, o.BatchRows
	r.Options.InsertRows, r.Options.Growth, r.Options.Backlog = o.InsertRows, o.Growth, o.Backlog
	r.Options.VerifyRows = o.VerifyRows
	r.Options.IndexMem = o.IndexMem
	r.Options.TunedBundles, r.Options.TunedETL = TunedBundles.String(), TunedETL.String()
	r.Options.ChainsinkArgs, r.Options.ChainsinkEnv = o.ChainsinkArgs, o.ChainsinkEnv
	return r
}

func (r *Report) setWorkload(w *Workload, took time.Duration) {
	b := &w.Base
	r.Workload.RowsPerBlock = w.RowsPerBlock()
	r.Workload.RowsByTable = map[string]int{"blocks": len(b.Blocks), "withdrawals": len(b.Withdrawals),
		"transactions": len(b.Transactions), "logs": len(b.Logs), "token_transfers": len(b.TokenTransfers),
		"events": len(b.Events), "calls": len(b.Calls)}
	if w.Bundled > 0 {
		r.Workload.BundleBytes = len(w.Blocks[0].Bundle)
	}
	if len(w.Blocks) > 0 {
		for _, it := range w.Blocks[0].Items {
			r.Workload.ETLBytes += len(it)
		}
		r.Workload.ETLMessages = len(w.Blocks[0].Items)
	}
	r.Workload.BuildSeconds = took.Seconds()
	r.Workload.TotalBlocks, r.Workload.BundledBlocks = len(w.Blocks), w.Bundled
	r.Workload.TotalBundleRow = int64(w.Bundled * w.RowsPerBlock())
}

func (r *Report) add(res Result) {
	res.compute()
	r.Results = append(r.Results, res)
}

func (r *Report) result(key string) *Result {
	for i := range r.Results {
		if r.Results[i].Key == key {
			return &r.Results[i]
		}
	}
	return nil
}

// finish computes the ratios and the targets.
func (r *Report) finish(total time.Duration) {
	r.TotalSeconds = total.Seconds()
	r.Machine.LoadAfter = loadAverage()
	baseline, baseline1 := r.result("baseline"), r.result("baseline1")
	for i := range r.Results {
		x := &r.Results[i]
		if x.Format == "rows" {
			continue
		}
		// A run with the typed tables, or with traces, is measured against the ceiling that copies them too.
		ceiling := r.result("ceiling")
		for _, p := range []string{"typed-", "traced-"} {
			if strings.HasPrefix(x.Key, p) {
				ceiling = r.result(p + "ceiling")
			}
		}
		if ceiling != nil && ceiling.RowsPerSec > 0 {
			x.VsCeiling = x.RowsPerSec / ceiling.RowsPerSec
		}
		if ceiling != nil && ceiling.PostgresCPU > 0 && ceiling.Rows > 0 && x.Rows > 0 {
			x.PostgresVsCeiling = (x.PostgresCPU / float64(x.Rows)) / (ceiling.PostgresCPU / float64(ceiling.Rows))
		}
		if baseline != nil && baseline.RowsPerSec > 0 {
			x.VsBaseline = x.RowsPerSec / baseline.RowsPerSec
		}
		if baseline1 != nil && baseline1.RowsPerSec > 0 {
			x.VsBaseline1 = x.RowsPerSec / baseline1.RowsPerSec
		}
	}
	for _, prefix := range []string{"", "tuned-"} {
		empty := r.result(prefix + "bundle")
		if empty == nil || empty.RowsPerSec == 0 {
			continue
		}
		settings := "defaults"
		if prefix != "" {
			settings = "tuned"
		}
		r.Growth = append(r.Growth, GrowthPoint{settings, 0, empty.RowsPerSec, 1})
		for _, x := range r.Results {
			if x.Preloaded > 0 && x.Format == "bundle" && x.Tuned == (prefix != "") {
				r.Growth = append(r.Growth, GrowthPoint{settings, x.Preloaded, x.RowsPerSec, x.RowsPerSec / empty.RowsPerSec})
			}
		}
	}
	for _, prefix := range []string{"", "tuned-"} {
		live, def := r.result(prefix+"bundle"), r.result(prefix+"deferred")
		if live == nil || def == nil || live.BlocksPerSec == 0 {
			continue
		}
		settings := "defaults"
		if prefix != "" {
			settings = "tuned"
		}
		r.Deferred = append(r.Deferred, DeferredSpeedup{Settings: settings, Ingest: def.BlocksPerSec / live.BlocksPerSec,
			WithRebuild: def.WithRebuildBlocksPerSec / live.BlocksPerSec, Rebuild: def.IndexRebuild})
	}
	for _, prefix := range []string{"", "tuned-"} {
		bundle, deferred, backlog := r.result(prefix+"bundle"), r.result(prefix+"deferred"), r.result(prefix+"backlog")
		if prefix != "" && bundle == nil && deferred == nil && backlog == nil {
			continue
		}
		settings := "defaults"
		if prefix != "" {
			settings = "tuned"
		}
		t := func(name, want, unit string, got float64, measured bool, met func(float64) bool) {
			r.Targets = append(r.Targets, Target{Name: name, Settings: settings, Want: want, Got: got, Unit: unit,
				Measured: measured, Met: measured && met(got)})
		}
		var ca, cb, blocks, rss float64
		if bundle != nil {
			ca, cb = bundle.VsCeiling, bundle.VsBaseline
		}
		if deferred != nil {
			blocks = deferred.BlocksPerSec
		}
		if backlog != nil {
			rss = float64(backlog.PeakRSS) / (1 << 20)
		}
		t("c/a: chainsink bundles vs COPY ceiling (rows/s, indexes live)", "≥ 0.8", "×", ca, ca > 0, func(v float64) bool { return v >= 0.8 })
		t("c/b: chainsink bundles vs INSERT ON CONFLICT baseline (rows/s)", "≥ 8", "×", cb, cb > 0, func(v float64) bool { return v >= 8 })
		if prefix == "" {
			var typedCA float64
			if x := r.result("typed-bundle"); x != nil {
				typedCA = x.VsCeiling
			}
			t("c/a with the demo's typed tables (both sides write them)", "≥ 0.9", "×", typedCA, typedCA > 0, func(v float64) bool { return v >= 0.9 })
			var tracedCA float64
			if x := r.result("traced-bundle"); x != nil {
				tracedCA = x.VsCeiling
			}
			t("c/a with traces (both sides write traces and contracts)", "≥ 0.9", "×", tracedCA, tracedCA > 0, func(v float64) bool { return v >= 0.9 })
		}
		if prefix == "" {
			var most GrowthPoint
			for _, g := range r.Growth {
				if g.Settings == "defaults" && g.Preloaded > most.Preloaded {
					most = g
				}
			}
			t(fmt.Sprintf("cost growth: bundles rows/s with %s rows stored vs none", human(float64(most.Preloaded))), "≥ 0.9", "×",
				most.VsEmpty, most.Preloaded > 0, func(v float64) bool { return v >= 0.9 })
		}
		t("blocks/s with indexes deferred (decoded rows included)", "≥ 150", "blocks/s", blocks, blocks > 0, func(v float64) bool { return v >= 150 })
		t(fmt.Sprintf("peak RSS draining a %s-message ethereum-etl backlog", human(float64(r.Options.Backlog))), "≤ 200", "MiB", rss, rss > 0,
			func(v float64) bool { return v <= 200 })
		if prefix == "" {
			var rss32 float64
			if x := r.result("backlog32"); x != nil {
				rss32 = float64(x.PeakRSS) / (1 << 20)
			}
			t("peak RSS draining it on 32 partitions (the default --memory-limit)", "≤ 256", "MiB", rss32, rss32 > 0,
				func(v float64) bool { return v <= 256 })
		}
		if prefix == "" {
			var secs float64
			if v := r.result("verify"); v != nil {
				secs = v.Seconds
			}
			t(fmt.Sprintf("chainsink verify over %s stored rows, every check", human(float64(r.Options.VerifyRows))), "≤ 60", "s",
				secs, secs > 0, func(v float64) bool { return v <= 60 })
			var p99 float64
			if r.FollowLatency != nil {
				p99 = r.FollowLatency.P99
			}
			t("follow + run, block mined to row stored, p99 (confirmations 0)", "≤ 1", "s", p99, p99 > 0,
				func(v float64) bool { return v <= 1 })
			best := func(filtered bool, source string) (secs, perBlock, reqs float64) {
				for _, x := range r.RPC {
					if strings.HasPrefix(x.Name, "filtered") == filtered && x.Source == source && (secs == 0 || x.Seconds < secs) {
						secs, perBlock, reqs = x.Seconds, x.BackfillMsPerBlock, x.RequestsPerBlk
					}
				}
				return
			}
			nodeSecs, _, nodeReqs := best(true, "node")
			replaySecs, _, _ := best(true, "replay")
			_, fullMs, _ := best(false, "node")
			t("filtered backfill + run of 100k events vs the node (Shovel tuned: 1.08 s)", "≤ 1.08", "s", nodeSecs, nodeSecs > 0,
				func(v float64) bool { return v <= 1.08 })
			t("filtered backfill + run of 100k events vs a replay (Shovel tuned: 0.66 s)", "≤ 0.66", "s", replaySecs, replaySecs > 0,
				func(v float64) bool { return v <= 0.66 })
			t("filtered backfill: node requests per block (headers + eth_getLogs)", "≤ 1.05", "req", nodeReqs, nodeReqs > 0,
				func(v float64) bool { return v <= 1.05 })
			t("full backfill: CPU per block of 5 calls (a third of 0.85 ms)", "≤ 0.28", "ms", fullMs, fullMs > 0,
				func(v float64) bool { return v <= 0.28 })
		}
	}
}

// Print writes the results table and the targets.
func (r *Report) Print(out io.Writer) {
	fmt.Fprintf(out, "chainsink-bench %s: %d CPUs, load average %.2f before / %.2f after; %s\n",
		r.StartedAt.Format(time.RFC3339), r.Machine.CPUs, r.Machine.LoadBefore, r.Machine.LoadAfter, shortPG(r.Machine.Postgres))
	fmt.Fprintf(out, "workload: renumbered copies of mainnet block 17173049, %d rows per block (%d tx, %d logs, %d transfers, %d events, %d calls, %d withdrawals, 1 block); batches of %d rows; %d partitions\n\n",
		r.Workload.RowsPerBlock, r.Workload.RowsByTable["transactions"], r.Workload.RowsByTable["logs"],
		r.Workload.RowsByTable["token_transfers"], r.Workload.RowsByTable["events"], r.Workload.RowsByTable["calls"],
		r.Workload.RowsByTable["withdrawals"], r.Options.BatchRows, r.Options.Partitions)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tindexes\tblocks\trows\tseconds\tblocks/s\trows/s\tc/a\tc/b\tc/b1\tpeak RSS\tcommit p50\tp99\t")
	for _, x := range r.Results {
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", v)
		}
		rss, p50, p99 := "-", "-", "-"
		if x.PeakRSS > 0 {
			rss, p50, p99 = mb(x.PeakRSS), ms(x.CommitP50), ms(x.CommitP99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.Name, x.Indexes, x.Blocks, x.Rows,
			x.Seconds, x.BlocksPerSec, human(x.RowsPerSec), ratio(x.VsCeiling), ratio(x.VsBaseline), ratio(x.VsBaseline1), rss, p50, p99)
		if x.IndexRebuild > 0 {
			fmt.Fprintf(tw, "  … + %.1fs rebuilding the %d secondary indexes\t\t\t\t%.1f\t%.0f\t%s\t\t\t\t\t\t\t\n",
				x.IndexRebuild, len(store.SecondaryIndexes), x.Seconds+x.IndexRebuild, x.WithRebuildBlocksPerSec,
				human(float64(x.Rows)/(x.Seconds+x.IndexRebuild)))
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "\nwhere the time went (CPU seconds in the timed window; bench = the writers of (a)/(b), else the in-process broker;")
	fmt.Fprintln(out, "others = every other process of the machine, ±0.5 s of accounting granularity):")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tfirst commit\tbatches\tCPU chainsink\tof it GC\tCPU postgres\ta row vs (a)\tCPU bench\tCPU others\tCPU busy\tWAL\tWAL/row\tcheckpoints\t")
	for _, x := range r.Results {
		first, batches, cs, gc, pgRow := "-", "-", "-", "-", "-"
		if x.PostgresVsCeiling > 0 {
			pgRow = fmt.Sprintf("%.2f", x.PostgresVsCeiling)
		}
		if x.PeakRSS > 0 {
			first, batches, cs = fmt.Sprintf("%.2fs", x.FirstCommit), fmt.Sprintf("%.0f", x.Batches), fmt.Sprintf("%.1f", x.ChainsinkCPU)
		}
		if x.ChainsinkGCCPU > 0 {
			gc = fmt.Sprintf("%.1f", x.ChainsinkGCCPU)
		}
		busy := (x.ChainsinkCPU + x.PostgresCPU + x.ClientCPU + x.OtherCPU) / (x.Seconds * float64(r.Machine.CPUs))
		walRow := 0.0
		if x.Rows > 0 {
			walRow = float64(x.WALBytes) / float64(x.Rows)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%.1f\t%.1f\t%.0f%%\t%s\t%.0f B\t%d\t\n", x.Name, first, batches, cs, gc, x.PostgresCPU,
			pgRow, x.ClientCPU, max(x.OtherCPU, 0), 100*busy, mb(x.WALBytes), walRow, x.Checkpoints)
	}
	_ = tw.Flush()
	if len(r.Options.ChainsinkArgs)+len(r.Options.ChainsinkEnv) > 0 {
		fmt.Fprintf(out, "\nevery chainsink run also had: %s\n", strings.Join(append(slices.Clone(r.Options.ChainsinkArgs), r.Options.ChainsinkEnv...), " "))
	}
	for _, x := range r.Results {
		if x.Tuned {
			fmt.Fprintf(out, "\n— tuned (docs/performance.md): bundles %s; ethereum-etl %s\n", TunedBundles, TunedETL)
			break
		}
	}
	if len(r.Growth) > 1 {
		fmt.Fprintln(out)
	}
	for i, g := range r.Growth {
		if g.Preloaded == 0 {
			if i+1 == len(r.Growth) || r.Growth[i+1].Preloaded == 0 {
				continue // no growth run with these settings
			}
			fmt.Fprintf(out, "cost growth (%s), chainsink bundles with rows already stored:", g.Settings)
		}
		fmt.Fprintf(out, "  %s → %s rows/s (×%.2f)", human(float64(g.Preloaded)), human(g.RowsPerSec), g.VsEmpty)
		if i+1 == len(r.Growth) || r.Growth[i+1].Preloaded == 0 {
			fmt.Fprintln(out)
		}
	}
	for _, d := range r.Deferred {
		fmt.Fprintf(out, "deferred secondary indexes (%s): ×%.2f blocks/s while ingesting, ×%.2f counting the %.1fs rebuild\n",
			d.Settings, d.Ingest, d.WithRebuild, d.Rebuild)
	}
	if len(r.RPC) > 0 {
		fmt.Fprintf(out, "\nrpc: backfill + run of %d blocks, %d Ping events into one typed table (seconds from the backfill's start, run already up; CPU seconds)\n",
			RPCBlocks+1, RPCBlocks*RPCCallsPerBlock*pingsPerCall)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "mode\tsource\tseconds\tbackfill s\trequests/block\tCPU backfill\tms/block\tCPU run\tCPU postgres\tCPU source\trows\t")
		for _, x := range r.RPC {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.2f\t%.2f\t%.2f\t%d\t\n", x.Name, x.Source, x.Seconds, x.BackfillSeconds, x.RequestsPerBlk,
				x.BackfillCPU, x.BackfillMsPerBlock, x.RunCPU, x.PostgresCPU, x.SourceCPU, x.Rows)
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(out, "\ntargets:")
	for _, t := range r.Targets {
		state := "MET"
		switch {
		case !t.Measured:
			state = "not measured"
		case !t.Met:
			state = "MISSED"
		}
		fmt.Fprintf(out, "  %-66s %-8s want %-6s got %8.2f %-8s %s\n", t.Name, t.Settings, t.Want, t.Got, t.Unit, state)
	}
}

// Write stores the report as JSON in dir/<timestamp>.json (via a .tmp file and a rename) and returns the path.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.StartedAt.Format("20060102T150405Z")+".json")
	if err := os.WriteFile(path+".tmp", append(raw, '\n'), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

func shortPG(v string) string {
	if i := strings.Index(v, " on "); i > 0 {
		return v[:i]
	}
	return v
}

func human(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return trim(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case v >= 1e3:
		return trim(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func mb(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(s float64) string {
	if math.IsNaN(s) || s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f ms", s*1000)
}
