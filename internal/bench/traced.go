package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

const topicTraced = "bench-traced"

// callTracerDir holds go-ethereum's callTracer test data: real mainnet transactions with the node's
// callTracer output (deep call trees, delegatecalls, creates, reverts, selfdestructs).
const callTracerDir = "go-ethereum/eth/tracers/internal/tracetest/testdata/call_tracer"

// tracedSetup is the traced scenario's input: every bundled block again, with a "traces" entry per
// transaction, and the rows chainsink decodes from it (traces and the contracts they created included).
type tracedSetup struct {
	bundles      [][]byte
	rows         []chain.Rows
	rowsPerBlock int
	frames       int // frames per block
}

// loadTraced gives each bundled block's transactions call frames: the mainnet block has no recorded traces,
// so transaction j gets the callTracer result of go-ethereum's fixture j mod 15 (3.5 frames and 2.9 KB of
// trace JSON a transaction on average), under its own hash. The frames are real, their pairing with the
// block's transactions is not: it is a workload of realistic frames, not a replay of block 17173049.
func loadTraced(testdata string, w *Workload) (*tracedSetup, error) {
	files, err := filepath.Glob(filepath.Join(testdata, callTracerDir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("callTracer fixtures in %s: %d files, %v", filepath.Join(testdata, callTracerDir), len(files), err)
	}
	slices.Sort(files)
	var frames []json.RawMessage
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var fx struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &fx); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		frames = append(frames, fx.Result)
	}
	reg, err := abi.Default()
	if err != nil {
		return nil, err
	}
	dec := decode.New(reg, nil)
	t := &tracedSetup{bundles: make([][]byte, w.Bundled), rows: make([]chain.Rows, w.Bundled)}
	for i := range w.Bundled {
		blk := &w.Blocks[i]
		var msg map[string]json.RawMessage
		if err := json.Unmarshal(blk.Bundle, &msg); err != nil {
			return nil, fmt.Errorf("bundle of block %d: %w", blk.Number, err)
		}
		type entry struct {
			TxHash string          `json:"txHash"`
			Result json.RawMessage `json:"result"`
		}
		traces := make([]entry, len(blk.Rows.Transactions))
		for j, tx := range blk.Rows.Transactions {
			traces[j] = entry{TxHash: fmt.Sprintf("0x%x", tx.Hash), Result: frames[j%len(frames)]}
		}
		if msg["traces"], err = json.Marshal(traces); err != nil {
			return nil, err
		}
		if t.bundles[i], err = json.Marshal(msg); err != nil {
			return nil, err
		}
		rows, failure := dec.Decode(format.Bundle, format.BundleKey(blk.Number), t.bundles[i])
		if failure != nil {
			return nil, fmt.Errorf("decode traced bundle of block %d: %w", blk.Number, failure.Err)
		}
		t.rows[i] = rows
	}
	if w.Bundled > 0 {
		t.rowsPerBlock, t.frames = t.rows[0].Len(), len(t.rows[0].Traces)
	}
	return t, nil
}

// tracedRuns are the ceiling and chainsink's bundle run with traces: (a) copies the same rows, traces and
// contracts included, and chainsink decodes the traced bundles.
func (b *bencher) tracedRuns(ctx context.Context) error {
	t := b.traced
	want := int64(b.w.Bundled * t.rowsPerBlock)
	if err := b.directOf(ctx, "traced-ceiling", "(a) ceiling with traces", CopyRows,
		func(i int) chain.Rows { return t.rows[i] }, want, nil); err != nil {
		return err
	}
	spec := b.bundleSpec("traced-bundle")
	spec.topic, spec.wantRows = topicTraced, want
	return b.chainsinkRun(ctx, Result{Key: "traced-bundle", Name: "(c) chainsink, bundles with traces", Format: "bundle", Indexes: "live"},
		spec, nil, nil)
}
