package format

import (
	"fmt"
	"math"

	"github.com/chainsink/chainsink/store/chain"
)

// etlTrace is ethereum-etl's trace item (export_traces, the stream's trace items): one frame of Parity's
// trace_block, flattened, with its trace address and a status that ethereum-etl has already made 0 under a
// failed parent.
type etlTrace struct {
	Type             string   `json:"type"`
	BlockNumber      etlInt   `json:"block_number"`
	BlockTimestamp   etlInt   `json:"block_timestamp"`
	BlockHash        hash     `json:"block_hash"`
	TransactionIndex etlInt   `json:"transaction_index"`
	TransactionHash  hash     `json:"transaction_hash"`
	FromAddress      address  `json:"from_address"`
	ToAddress        address  `json:"to_address"`
	Value            etlInt   `json:"value"`
	Input            data     `json:"input"`
	Output           data     `json:"output"`
	TraceType        string   `json:"trace_type"`
	CallType         *string  `json:"call_type"`
	Gas              etlInt   `json:"gas"`
	GasUsed          etlInt   `json:"gas_used"`
	Subtraces        etlInt   `json:"subtraces"`
	TraceAddress     []etlInt `json:"trace_address"`
	Error            *string  `json:"error"`
	Status           etlInt   `json:"status"`
}

// etlContract is ethereum-etl's contract item: a contract its traces show created, with the code.
type etlContract struct {
	Type        string  `json:"type"`
	Address     address `json:"address"`
	Bytecode    data    `json:"bytecode"`
	BlockNumber etlInt  `json:"block_number"`
	BlockHash   hash    `json:"block_hash"`
}

// Parity's call types, which ethereum-etl copies into call_type; they are the callTracer's types too.
var parityCallTypes = map[string]bool{"call": true, "staticcall": true, "delegatecall": true, "callcode": true}

// decodeETLTrace decodes a trace item into a row of traces. Frames that are not of a transaction (Parity's
// "reward" of a miner or uncle, "genesis" allocations and the "daofork" balance moves, which ethereum-etl
// writes with no transaction) give no row: the traces table holds what transactions did, and blocks.miner
// tells who was rewarded.
func decodeETLTrace(value []byte) (chain.Rows, *decodeError) {
	var it etlTrace
	if err := unmarshalWire(value, &it); err != nil {
		return chain.Rows{}, decodeAt(at{list: etlTypeTrace, i: -1}, value, &etlTrace{})
	}
	c := conv{at: at{list: etlTypeTrace, i: -1}}
	c.checkType(it.Type, etlTypeTrace)
	var typ string
	switch it.TraceType {
	case "reward", "genesis", "daofork":
		if c.err != nil {
			return chain.Rows{}, c.err
		}
		return chain.Rows{}, nil
	case "call":
		switch {
		case it.CallType == nil:
			c.fail("call_type", errMissing)
		case !parityCallTypes[*it.CallType]:
			c.fail("call_type", fmt.Errorf("%q is not call, staticcall, delegatecall or callcode", clip([]byte(*it.CallType))))
		default:
			typ = *it.CallType
		}
	case "create":
		// Parity does not tell CREATE2 from CREATE, and neither does ethereum-etl.
		typ = "create"
	case "suicide":
		typ = "selfdestruct"
	case "":
		c.fail("trace_type", errMissing)
	default:
		c.fail("trace_type", fmt.Errorf("%q is not call, create, suicide, reward, genesis or daofork", clip([]byte(it.TraceType))))
	}
	ints := make([]int64, 2)
	t := chain.Trace{
		BlockNumber:      c.etlInt64("block_number", &it.BlockNumber),
		TransactionIndex: c.etlInt32("transaction_index", &it.TransactionIndex),
		TraceAddress:     c.traceAddress("trace_address", it.TraceAddress),
		TransactionHash:  c.hash("transaction_hash", &it.TransactionHash),
		BlockTimestamp:   c.etlTime("block_timestamp", &it.BlockTimestamp),
		BlockHash:        optHash(&it.BlockHash),
		Type:             typ,
		TraceType:        it.TraceType,
		FromAddress:      c.address("from_address", &it.FromAddress),
		ToAddress:        optAddress(&it.ToAddress),
		Gas:              c.etlOptInt64("gas", &it.Gas, &ints[0]),
		GasUsed:          c.etlOptInt64("gas_used", &it.GasUsed, &ints[1]),
		Input:            optBytes(&it.Input),
		Output:           optBytes(&it.Output),
		Subtraces:        c.etlInt32("subtraces", &it.Subtraces),
	}
	// Parity writes a value of 0 for the frames that cannot move ether; the callTracer, and so the traces
	// table, has none.
	if typ != "staticcall" && typ != "delegatecall" {
		t.Value = etlOptBig(&it.Value)
	}
	if it.Error != nil {
		t.Error = *it.Error
	}
	if s := c.etlStatus("status", &it.Status); s != nil {
		t.Status = *s
	} else if c.err == nil {
		c.fail("status", errMissing)
	}
	if c.err != nil {
		return chain.Rows{}, c.err
	}
	return chain.Rows{Traces: []chain.Trace{t}}, nil
}

// traceAddress converts a trace address: a list (possibly empty) of subcall positions.
func (c *conv) traceAddress(field string, in []etlInt) []int32 {
	if in == nil {
		c.fail(field, errMissing)
		return nil
	}
	out := make([]int32, len(in))
	for i := range in {
		v, ok := c.etlUint(fmt.Sprintf("%s[%d]", field, i), &in[i], math.MaxInt32, errNotInt32)
		if !ok {
			return nil
		}
		out[i] = int32(v)
	}
	if len(out) > maxTraceDepth {
		c.fail(field, errTraceDepth)
	}
	return out
}

// decodeETLContract checks a contract item and gives no rows. ethereum-etl makes its contract items from
// its create traces (a trace item with trace_type "create" and status 1 whose output is the code), and the
// contracts table is made from those trace items, with the transaction and trace address that a contract
// item lacks and that the table is keyed by; so a contract item adds nothing but its function selectors,
// which chainsink reads from the code itself (abi.Selectors). It is still checked, so that a malformed one
// is a dead letter rather than passing unseen.
func decodeETLContract(value []byte) (chain.Rows, *decodeError) {
	var it etlContract
	if err := unmarshalWire(value, &it); err != nil {
		return chain.Rows{}, decodeAt(at{list: etlTypeContract, i: -1}, value, &etlContract{})
	}
	c := conv{at: at{list: etlTypeContract, i: -1}}
	c.checkType(it.Type, etlTypeContract)
	c.address("address", &it.Address)
	c.etlInt64("block_number", &it.BlockNumber)
	if c.err != nil {
		return chain.Rows{}, c.err
	}
	return chain.Rows{}, nil
}
