package format

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// A bundle's optional "traces" is the node's debug_traceBlockByNumber(N, {"tracer": "callTracer"}) result:
// one entry per transaction, in block order, each the transaction's call frame with its subcalls nested
// (go-ethereum's eth/tracers/native callTracer; reth and erigon serve the same shape).

type rpcTraceResult struct {
	TxHash hash          `json:"txHash"`
	Result *rpcCallFrame `json:"result"`
	// Error is the node's failure to trace the transaction (not the transaction's own failure, which is the
	// frame's error).
	Error string `json:"error"`
}

// rpcFrameFields are a call frame's own fields; rpcCallFrame adds its subcalls, and rawCallFrame keeps them
// raw, so that locateTraceError can find a failure at any depth.
type rpcFrameFields struct {
	Type    string      `json:"type"`
	From    address     `json:"from"`
	To      address     `json:"to"`
	Value   bigQuantity `json:"value"`
	Gas     quantity    `json:"gas"`
	GasUsed quantity    `json:"gasUsed"`
	Input   data        `json:"input"`
	Output  data        `json:"output"`
	Error   string      `json:"error"`
}

type rpcCallFrame struct {
	rpcFrameFields
	Calls []rpcCallFrame `json:"calls"`
}

type rawCallFrame struct {
	rpcFrameFields
	Calls []json.RawMessage `json:"calls"`
}

type rawTraceResult struct {
	TxHash hash            `json:"txHash"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// locateTraceError finds the first frame of a bundle's trace entry i that does not decode, at any depth, and
// says which field of it.
func locateTraceError(i int, raw json.RawMessage) *decodeError {
	var r rawTraceResult
	if e := decodeAt(at{list: "traces", i: i}, raw, &r); e != nil {
		return e
	}
	if len(r.Result) == 0 || isNull(r.Result) {
		return nil
	}
	var walk func(path []int32, raw json.RawMessage) *decodeError
	walk = func(path []int32, raw json.RawMessage) *decodeError {
		if len(path) > maxTraceDepth {
			return nil
		}
		var f rawCallFrame
		if e := decodeAt(at{list: framePath(i, path), i: -1}, raw, &f); e != nil {
			return e
		}
		for j, c := range f.Calls {
			if e := walk(append(path, int32(j)), c); e != nil {
				return e
			}
		}
		return nil
	}
	return walk(nil, r.Result)
}

// maxTraceDepth bounds the nesting of frames: the EVM's call depth limit is 1024.
const maxTraceDepth = 1025

// traceTypes maps the callTracer's frame types to Parity's trace class.
var traceTypes = map[string]string{
	"call": "call", "staticcall": "call", "delegatecall": "call", "callcode": "call",
	"create": "create", "create2": "create", "selfdestruct": "suicide",
}

// decodeTraces flattens the traces of a block's transactions into rows, depth first (a frame, then its
// subcalls in order), each with its trace address, and its status 0 when it or a frame above it failed.
func decodeTraces(txs []chain.Transaction, traces []rpcTraceResult) ([]chain.Trace, *decodeError) {
	if len(traces) != len(txs) {
		return nil, failWith(ReasonTracesMismatch,
			fmt.Errorf("block has %d transactions but the bundle has %d traces", len(txs), len(traces)))
	}
	n := 0
	for i := range traces {
		if traces[i].Result != nil {
			n += countFrames(traces[i].Result, 0)
		}
	}
	out := make([]chain.Trace, 0, n)
	// One slab for the nullable gas columns of every frame (two per frame).
	ints := make([]int64, 2*n)
	var path []int32
	for i := range traces {
		tr := &traces[i]
		a := at{list: "traces", i: i}
		tx := &txs[i]
		switch {
		case tr.Error != "":
			return nil, failWith(ReasonTracesMismatch, &FieldError{Path: a.path("error"),
				Err: fmt.Errorf("the node could not trace transaction %x: %s", tx.Hash, clip([]byte(tr.Error)))})
		case tr.Result == nil:
			return nil, a.field("result", errMissing)
		case !tr.TxHash.ok:
			// The block and its traces are asked by number in one batch: a reorg between the two answers is
			// only seen in the hashes, so they are required.
			return nil, a.field("txHash", errMissing)
		case string(tr.TxHash.v[:]) != string(tx.Hash):
			return nil, failWith(ReasonTracesMismatch, &FieldError{Path: a.path("txHash"),
				Err: fmt.Errorf("%s is not the hash of transaction %d, %x", tr.TxHash.v, i, tx.Hash)})
		}
		var err *decodeError
		path = path[:0]
		if out, ints, err = appendFrames(out, ints, tx, tr.Result, path, 1, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func countFrames(f *rpcCallFrame, depth int) int {
	if depth > maxTraceDepth {
		return 1
	}
	n := 1
	for i := range f.Calls {
		n += countFrames(&f.Calls[i], depth+1)
	}
	return n
}

var errTraceDepth = errors.New("frames nested deeper than the EVM's 1024 calls")

// atFrame puts the frame's JSON path in front of the field path of e.
func atFrame(e *decodeError, txPos int, path []int32) *decodeError {
	var fe *FieldError
	if errors.As(e.err, &fe) {
		fe.Path = framePath(txPos, path) + "." + fe.Path
	}
	return e
}

// framePath is the JSON path of the frame at path in the traces of transaction position i, for errors.
func framePath(i int, path []int32) string {
	var b strings.Builder
	b.WriteString("traces[" + strconv.Itoa(i) + "].result")
	for _, p := range path {
		b.WriteString(".calls[" + strconv.Itoa(int(p)) + "]")
	}
	return b.String()
}

// appendFrames appends f and its subcalls. status is 1 while every frame above succeeded; txPos is the
// transaction's position in the traces, for the path of an error.
func appendFrames(out []chain.Trace, ints []int64, tx *chain.Transaction, f *rpcCallFrame, path []int32,
	status int16, txPos int) ([]chain.Trace, []int64, *decodeError) {
	// The frame's path is only spelt out for an error (atFrame): building it for every frame cost an
	// allocation per frame.
	c := conv{at: at{i: -1}}
	if len(path) > maxTraceDepth {
		c.fail("calls", errTraceDepth)
		return out, ints, atFrame(c.err, txPos, path)
	}
	typ := strings.ToLower(f.Type)
	class, ok := traceTypes[typ]
	if !ok {
		c.fail("type", fmt.Errorf("%q is not a callTracer frame type", clip([]byte(f.Type))))
	}
	if f.Error != "" {
		status = 0
	}
	if len(f.Calls) > math.MaxInt32 {
		c.fail("calls", errNotInt32)
	}
	t := chain.Trace{
		BlockNumber:      tx.BlockNumber,
		TransactionIndex: tx.TransactionIndex,
		TraceAddress:     append(make([]int32, 0, len(path)), path...),
		TransactionHash:  tx.Hash,
		BlockTimestamp:   tx.BlockTimestamp,
		Type:             typ,
		TraceType:        class,
		FromAddress:      c.address("from", &f.From),
		ToAddress:        optAddress(&f.To),
		Value:            optBig(&f.Value),
		Gas:              c.optInt64("gas", &f.Gas, &ints[0]),
		GasUsed:          c.optInt64("gasUsed", &f.GasUsed, &ints[1]),
		Input:            optBytes(&f.Input),
		Output:           optBytes(&f.Output),
		Error:            f.Error,
		Status:           status,
		Subtraces:        int32(len(f.Calls)),
		BlockHash:        tx.BlockHash,
	}
	if c.err != nil {
		return out, ints, atFrame(c.err, txPos, path)
	}
	out, ints = append(out, t), ints[2:]
	for i := range f.Calls {
		var err *decodeError
		if out, ints, err = appendFrames(out, ints, tx, &f.Calls[i], append(path, int32(i)), status, txPos); err != nil {
			return out, ints, err
		}
	}
	return out, ints, nil
}
