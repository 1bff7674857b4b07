package format

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

const callTracerDir = "../../testdata/go-ethereum/eth/tracers/internal/tracetest/testdata/call_tracer"

// callTracerCase is one of go-ethereum's callTracer tests: a signed transaction (mostly of mainnet) and the
// call frame the tracer must report for it.
type callTracerCase struct {
	Context struct {
		Number    string `json:"number"`
		Timestamp string `json:"timestamp"`
	} `json:"context"`
	Input  string          `json:"input"`
	Result json.RawMessage `json:"result"`
}

// expectFrames walks a call frame as generic JSON, depth first, into the rows it must become: the test's own
// reading of the callTracer's shape, written apart from the decoder.
func expectFrames(t *testing.T, tx *chain.Transaction, f map[string]any, path []int32, failed bool, out *[]chain.Trace) {
	t.Helper()
	str := func(k string) string { s, _ := f[k].(string); return s }
	hexOrNil := func(k string) []byte {
		if s := str(k); s != "" {
			return hexutil.MustDecode(s)
		}
		return nil
	}
	opt := func(k string) *int64 {
		if s := str(k); s != "" {
			v := int64(hexutil.MustDecodeUint64(s))
			return &v
		}
		return nil
	}
	failed = failed || str("error") != ""
	calls, _ := f["calls"].([]any)
	typ := strings.ToLower(str("type"))
	class := map[string]string{"create": "create", "create2": "create", "selfdestruct": "suicide"}[typ]
	if class == "" {
		class = "call"
	}
	row := chain.Trace{BlockNumber: tx.BlockNumber, TransactionIndex: tx.TransactionIndex,
		TraceAddress: append([]int32{}, path...), TransactionHash: tx.Hash, BlockTimestamp: tx.BlockTimestamp,
		Type: typ, TraceType: class, FromAddress: hexOrNil("from"), ToAddress: hexOrNil("to"),
		Gas: opt("gas"), GasUsed: opt("gasUsed"), Input: hexOrNil("input"), Output: hexOrNil("output"),
		Error: str("error"), Status: 1, Subtraces: int32(len(calls)), BlockHash: tx.BlockHash}
	if s := str("value"); s != "" {
		row.Value = hexutil.MustDecodeBig(s)
	}
	if failed {
		row.Status = 0
	}
	*out = append(*out, row)
	for i, c := range calls {
		expectFrames(t, tx, c.(map[string]any), append(path, int32(i)), failed, out)
	}
}

// TestTracesLikeGoEthereum decodes the callTracer output of go-ethereum's tracer tests (real mainnet
// transactions: deep call trees, delegatecalls, creates, selfdestructs, reverts under a successful parent and
// successes under a reverted one) into trace rows, every frame with its path, and every frame under a failed
// one failed too.
func TestTracesLikeGoEthereum(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(callTracerDir, "*.json"))
	if err != nil || len(files) < 10 {
		t.Fatalf("%d callTracer fixtures (%v)", len(files), err)
	}
	var frames, failedUnderOK, okUnderFailed int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c callTracerCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(hexutil.MustDecode(c.Input)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var number, ts uint64
		fmt.Sscan(c.Context.Number, &number)
		fmt.Sscan(c.Context.Timestamp, &ts)
		tx := chain.Transaction{BlockNumber: number, TransactionIndex: 0, Hash: signed.Hash().Bytes(),
			BlockTimestamp: time.Unix(int64(ts), 0).UTC()}
		item := fmt.Sprintf(`[{"txHash": %q, "result": %s}]`, signed.Hash().Hex(), c.Result)
		var traces []rpcTraceResult
		if err := json.Unmarshal([]byte(item), &traces); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, derr := decodeTraces([]chain.Transaction{tx}, traces)
		if derr != nil {
			t.Fatalf("%s: %v", filepath.Base(f), derr)
		}
		var frame map[string]any
		if err := json.Unmarshal(c.Result, &frame); err != nil {
			t.Fatal(err)
		}
		var want []chain.Trace
		expectFrames(t, &tx, frame, []int32{}, false, &want)
		expectSame(t, filepath.Base(f), got, want)
		frames += len(got)
		for _, r := range got {
			if r.Error != "" && r.Status == 0 && len(r.TraceAddress) > 0 && got[0].Status == 1 {
				failedUnderOK++
			}
			if r.Error == "" && r.Status == 0 {
				okUnderFailed++
			}
		}
	}
	// The fixtures hold both kinds of failure, so that the status rule is tested both ways.
	if frames < 50 || failedUnderOK == 0 || okUnderFailed == 0 {
		t.Errorf("%d frames, %d failed under a successful parent, %d succeeded under a failed one", frames, failedUnderOK, okUnderFailed)
	}
}

// TestBundleTracesRefused: traces that are not the block's transactions', a node's failure to trace one and
// a frame of no known type make the bundle a dead letter, never rows of another block.
func TestBundleTracesRefused(t *testing.T) {
	var msg struct {
		Block    json.RawMessage
		Receipts json.RawMessage
	}
	if err := json.Unmarshal(bundle483920(t), &msg); err != nil {
		t.Fatal(err)
	}
	var blk struct {
		Transactions []struct {
			Hash string `json:"hash"`
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"transactions"`
	}
	if err := json.Unmarshal(msg.Block, &blk); err != nil {
		t.Fatal(err)
	}
	frame := func(i int, typ string) string {
		tx := blk.Transactions[i]
		return fmt.Sprintf(`{"txHash": %q, "result": {"type": %q, "from": %q, "to": %q, "value": "0x0", "gas": "0x5208", "gasUsed": "0x5208", "input": "0x"}}`,
			tx.Hash, typ, tx.From, tx.To)
	}
	all := func(typ string, n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, frame(i, typ))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	// The frames are the test's; the block, its transactions and receipts are mainnet's.
	good := all("CALL", 4)
	encode := func(traces string) []byte {
		b, err := EncodeBundle(msg.Block, msg.Receipts, []byte(traces))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rows := decodeOK(t, Bundle, nil, encode(good))
	if len(rows.Traces) != 4 || rows.Traces[3].TransactionIndex != 3 || hex.EncodeToString(rows.Traces[3].TransactionHash) != blk.Transactions[3].Hash[2:] {
		t.Fatalf("traces %+v", rows.Traces)
	}
	swapped := "[" + frame(1, "CALL") + "," + frame(0, "CALL") + "," + frame(2, "CALL") + "," + frame(3, "CALL") + "]"
	for _, c := range []struct{ traces, reason, path string }{
		{all("CALL", 3), ReasonTracesMismatch, ""},
		{swapped, ReasonTracesMismatch, "traces[0].txHash"},
		{strings.Replace(good, `"result": {"type": "CALL"`, `"error": "execution timeout", "result": {"type": "CALL"`, 1), ReasonTracesMismatch, "traces[0].error"},
		{strings.Replace(good, `"type": "CALL"`, `"type": "JUMP"`, 1), ReasonBadField, "traces[0].result.type"},
		{strings.Replace(good, `"gas": "0x5208"`, `"gas": "0xffffffffffffffff"`, 1), ReasonBadField, "traces[0].result.gas"},
		{strings.Replace(good, `"gas": "0x5208"`, `"gas": 7`, 1), ReasonBadField, "traces[0].result"},
		{`{"not": "a list"}`, ReasonBadField, "traces"},
		{strings.Replace(good, `"input": "0x"}}`, `"input": "0x", "calls": [{"type": "CALL", "from": "0x01"}]}}`, 1), ReasonBadField,
			"traces[0].result.calls[0].from"},
		{strings.Replace(good, `"input": "0x"}}`, `"input": "0x", "calls": [{"type": "CALL", "from": "0x0000000000000000000000000000000000000001", "calls": [{"type": "STATICCALL"}]}]}}`, 1),
			ReasonBadField, "traces[0].result.calls[0].calls[0].from"},
	} {
		value := []byte(`{"block": ` + string(msg.Block) + `, "receipts": ` + string(msg.Receipts) + `, "traces": ` + c.traces + `}`)
		_, fail := Decode(Bundle, nil, value)
		if fail == nil || fail.Reason != c.reason || !strings.Contains(fail.Err.Error(), c.path) {
			t.Errorf("traces %.80s: failure %+v, want %s at %q", c.traces, fail, c.reason, c.path)
		}
	}
}

// BenchmarkDecodeTraces flattens go-ethereum's deep_calls case (a mainnet transaction of 29 frames): the
// cost per frame of the traces a bundle carries.
func BenchmarkDecodeTraces(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(callTracerDir, "deep_calls.json"))
	if err != nil {
		b.Fatal(err)
	}
	var c callTracerCase
	if err := json.Unmarshal(raw, &c); err != nil {
		b.Fatal(err)
	}
	item := []byte(`{"traces": [{"txHash": "0x` + strings.Repeat("00", 32) + `", "result": ` + string(c.Result) + `}]}`)
	txs := []chain.Transaction{{BlockNumber: 25001, Hash: make([]byte, 32)}}
	b.ReportAllocs()
	b.SetBytes(int64(len(item)))
	for b.Loop() {
		var msg bundleMsg // as a bundle's traces are read, by the fast path
		if !decodeBundleFast(item, &msg) {
			b.Fatal("not taken by the fast path")
		}
		rows, derr := decodeTraces(txs, *msg.Traces)
		if derr != nil || len(rows) != 29 {
			b.Fatalf("%d frames, %v", len(rows), derr)
		}
	}
}
