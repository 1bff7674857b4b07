package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/typed"
)

// Filtered is what filtered mode keeps of a block (see format.EncodeFilteredBundle).
type Filtered struct {
	// Header is the eth_getBlockByNumber(N, false) result: the block with its transaction hashes.
	Header json.RawMessage
	// Logs are the block's eth_getLogs entries that the configuration matches.
	Logs []json.RawMessage
	// Transactions are the full objects of the transactions that call a call table's function, and
	// Receipts their receipts; both nil when no set has call tables.
	Transactions, Receipts []json.RawMessage
}

// maxQueryAddresses is the most addresses one eth_getLogs lists; nodes refuse long lists (geth's default
// limit is 1,000 criteria), so beyond it the query asks for the topic0s of any address and the answer is
// sorted out here.
const maxQueryAddresses = 1000

// DefaultLogRange is the blocks per eth_getLogs of the scan for factory children below a job's range.
const DefaultLogRange = 10_000

// FilteredFetcher fetches what a configuration's typed tables need, and no more (filtered mode): per
// batch, the factories' creation logs first (their children are what the next query asks for, as Shovel's
// filter_ref), then one eth_getLogs with the union of the sets' addresses and topic0s, and the headers of
// the batch's blocks in one batch request. Sets with call tables make it read the blocks whole, with the
// receipts of the matching transactions. Each height gets a block, with or without logs, so that the
// stored chain stays linked for reorg detection and verify.
type FilteredFetcher struct {
	*RPCFetcher
	filter *typed.Filter
	// LogRange is the blocks per eth_getLogs of the children scan. Default DefaultLogRange.
	LogRange uint64

	// mu orders the factory scans: a batch's children are those of every block up to its end, whichever
	// batch of a concurrent backfill asks first.
	mu      sync.Mutex
	kids    typed.Children
	scanned uint64 // factory logs are read below this height
	// snapshot is a copy of kids that batches read while the scan goes on, made again only when a scan
	// registered a child.
	snapshot typed.Children
}

// NewFilteredFetcher returns a filtered fetcher of f's node for filter.
func NewFilteredFetcher(f *RPCFetcher, filter *typed.Filter) *FilteredFetcher {
	return &FilteredFetcher{RPCFetcher: f, filter: filter, kids: typed.Children{}, scanned: filter.FactoryStart()}
}

// rpcLog is what the fetcher reads of a log to sort it; the log itself is kept as the node sent it.
type rpcLog struct {
	BlockNumber hexutil.Uint64 `json:"blockNumber"`
	Address     common.Address `json:"address"`
	Topics      []common.Hash  `json:"topics"`
	Data        hexutil.Bytes  `json:"data"`
	Removed     bool           `json:"removed"`
}

// logReader reads what rpcLog holds of a log, as json.Unmarshal into it would (each field through
// go-ethereum's own UnmarshalJSON, member names matched as encoding/json matches them), in one pass over the
// log with jsontext instead of encoding/json's two (a third of a filtered backfill's CPU,
// BenchmarkFilteredBackfill). Its decoder is reused from log to log.
type logReader struct {
	d   jsontext.Decoder
	buf bytes.Buffer
}

func (r *logReader) read(raw []byte) (rpcLog, error) {
	var l rpcLog
	r.buf.Reset()
	r.buf.Write(raw)
	d := &r.d
	d.Reset(&r.buf, jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	if tok, err := d.ReadToken(); err != nil {
		return l, fmt.Errorf("read a log: %w", err)
	} else if tok.Kind() == 'n' {
		return l, r.end() // as json.Unmarshal leaves it
	} else if tok.Kind() != '{' {
		return l, fmt.Errorf("read a log: a JSON %s, not an object", tok.Kind())
	}
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return l, fmt.Errorf("read a log: %w", err)
		}
		name := logField(tok.String())
		if name == "topics" && d.PeekKind() == '[' {
			if _, err := d.ReadToken(); err != nil {
				return l, fmt.Errorf("read a log's topics: %w", err)
			}
			l.Topics = make([]common.Hash, 0, 4)
			for d.PeekKind() != ']' {
				v, err := d.ReadValue()
				if err != nil {
					return l, fmt.Errorf("read a log's topics: %w", err)
				}
				var h common.Hash
				if err := h.UnmarshalJSON(v); err != nil {
					return l, fmt.Errorf("read a log's topics: %w", err)
				}
				l.Topics = append(l.Topics, h)
			}
			if _, err := d.ReadToken(); err != nil {
				return l, fmt.Errorf("read a log's topics: %w", err)
			}
			continue
		}
		v, err := d.ReadValue()
		if err != nil {
			return l, fmt.Errorf("read a log: %w", err)
		}
		switch name {
		case "blockNumber":
			err = l.BlockNumber.UnmarshalJSON(v)
		case "address":
			err = l.Address.UnmarshalJSON(v)
		case "data":
			err = l.Data.UnmarshalJSON(v)
		case "removed":
			err = json.Unmarshal(v, &l.Removed)
		case "topics": // not an array: null leaves Topics nil, anything else is refused as json.Unmarshal does
			err = json.Unmarshal(v, &l.Topics)
		}
		if err != nil {
			return l, fmt.Errorf("read a log's %s: %w", name, err)
		}
	}
	if _, err := d.ReadToken(); err != nil { // the object's end
		return l, fmt.Errorf("read a log: %w", err)
	}
	return l, r.end()
}

// end checks that nothing follows the log, as json.Unmarshal does.
func (r *logReader) end() error {
	if _, err := r.d.ReadToken(); err != io.EOF {
		return fmt.Errorf("read a log: data after it (%v)", err)
	}
	return nil
}

// logFields are the members of a log that rpcLog holds.
var logFields = []string{"blockNumber", "address", "topics", "data", "removed"}

// logField is the rpcLog member that name stands for, as encoding/json matches names (exactly, else without
// regard to case), or "".
func logField(name string) string {
	for _, f := range logFields {
		if name == f {
			return f
		}
	}
	for _, f := range logFields {
		if strings.EqualFold(name, f) {
			return f
		}
	}
	return ""
}

// Fetch implements Fetcher.
func (f *FilteredFetcher) Fetch(ctx context.Context, from, to uint64) ([]Block, error) {
	if to < from {
		return nil, fmt.Errorf("fetch %d-%d: empty range", from, to)
	}
	kids, err := f.children(ctx, to)
	if err != nil {
		return nil, err
	}
	n := int(to - from + 1)
	blocks := make([]Block, n)
	for i := range blocks {
		blocks[i] = Block{Number: from + uint64(i), Filtered: &Filtered{Logs: []json.RawMessage{}}}
	}
	var logs []json.RawMessage
	if q := f.filter.Logs(kids, maxQueryAddresses); len(q.Topic0s) > 0 { // calls alone ask for no logs
		if logs, err = f.getLogs(ctx, q, from, to); err != nil {
			return nil, err
		}
	}
	var lr logReader
	for _, raw := range logs {
		l, err := lr.read(raw)
		if err != nil {
			return nil, fmt.Errorf("eth_getLogs %d-%d: %w", from, to, err)
		}
		n := uint64(l.BlockNumber)
		if n < from || n > to || l.Removed {
			return nil, fmt.Errorf("eth_getLogs %d-%d answered a log of block %d (removed %v)", from, to, n, l.Removed)
		}
		if f.filter.Keep(kids, abi.Log{Address: l.Address, Topics: l.Topics, Data: l.Data}, n) {
			b := blocks[n-from].Filtered
			b.Logs = append(b.Logs, raw)
		}
	}
	if f.filter.Calls() {
		return blocks, f.fetchCalls(ctx, blocks, kids)
	}
	elems := make([]rpc.BatchElem, n)
	for i := range elems {
		elems[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(from + uint64(i)), false},
			Result: new(json.RawMessage)}
	}
	if err := f.calls.BatchCallContext(ctx, elems); err != nil {
		return nil, fmt.Errorf("batch request for the headers of blocks %d-%d: %w", from, to, scrub(err))
	}
	for i, e := range elems {
		raw, err := result(e, blocks[i].Number)
		if err != nil {
			return nil, err
		}
		blocks[i].Filtered.Header = raw
	}
	return blocks, nil
}

// fetchCalls reads blocks whole, keeps the transactions that call a call table's function with their
// receipts, and makes each header from its block, its transactions as hashes.
func (f *FilteredFetcher) fetchCalls(ctx context.Context, blocks []Block, kids typed.Children) error {
	elems := make([]rpc.BatchElem, len(blocks))
	for i, b := range blocks {
		elems[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(b.Number), true},
			Result: new(json.RawMessage)}
	}
	first, last := blocks[0].Number, blocks[len(blocks)-1].Number
	if err := f.calls.BatchCallContext(ctx, elems); err != nil {
		return fmt.Errorf("batch request for blocks %d-%d: %w", first, last, scrub(err))
	}
	type tx struct {
		Hash  common.Hash     `json:"hash"`
		To    *common.Address `json:"to"`
		Input hexutil.Bytes   `json:"input"`
	}
	var receipts []rpc.BatchElem
	var owner []int // receipts[k] is of a transaction of blocks[owner[k]]
	for i, e := range elems {
		raw, err := result(e, blocks[i].Number)
		if err != nil {
			return err
		}
		var blk map[string]json.RawMessage
		if err := json.Unmarshal(raw, &blk); err != nil {
			return fmt.Errorf("block %d: %w", blocks[i].Number, err)
		}
		var txs []json.RawMessage
		if err := json.Unmarshal(blk["transactions"], &txs); err != nil {
			return fmt.Errorf("block %d: transactions: %w", blocks[i].Number, err)
		}
		hashes := make([]common.Hash, len(txs))
		fb := blocks[i].Filtered
		fb.Transactions, fb.Receipts = []json.RawMessage{}, []json.RawMessage{}
		for j, rawTx := range txs {
			var t tx
			if err := json.Unmarshal(rawTx, &t); err != nil {
				return fmt.Errorf("block %d: transaction %d: %w", blocks[i].Number, j, err)
			}
			hashes[j] = t.Hash
			if t.To != nil && f.filter.KeepCall(kids, *t.To, t.Input, blocks[i].Number) {
				fb.Transactions = append(fb.Transactions, rawTx)
				receipts = append(receipts, rpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{t.Hash},
					Result: new(json.RawMessage)})
				owner = append(owner, i)
			}
		}
		if blk["transactions"], err = json.Marshal(hashes); err != nil {
			return err
		}
		if fb.Header, err = json.Marshal(blk); err != nil {
			return err
		}
	}
	if len(receipts) == 0 {
		return nil
	}
	if err := f.calls.BatchCallContext(ctx, receipts); err != nil {
		return fmt.Errorf("batch request for the receipts of blocks %d-%d: %w", first, last, scrub(err))
	}
	for k, e := range receipts {
		raw, err := result(e, blocks[owner[k]].Number)
		if err != nil {
			return err
		}
		fb := blocks[owner[k]].Filtered
		fb.Receipts = append(fb.Receipts, raw)
	}
	return nil
}

// children returns the factories' children registered by every block up to to, reading the creation logs
// of the blocks not read yet first. The map returned is shared: callers only read it.
func (f *FilteredFetcher) children(ctx context.Context, to uint64) (typed.Children, error) {
	q, ok := f.filter.Factories()
	if !ok {
		return nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	step := f.LogRange
	if step == 0 {
		step = DefaultLogRange
	}
	changed := f.snapshot == nil
	for f.scanned <= to {
		hi := min(f.scanned+step-1, to)
		logs, err := f.getLogs(ctx, q, f.scanned, hi)
		if err != nil {
			return nil, err
		}
		var lr logReader
		for _, raw := range logs {
			l, err := lr.read(raw)
			if err != nil {
				return nil, fmt.Errorf("eth_getLogs %d-%d: %w", f.scanned, hi, err)
			}
			if f.filter.Register(f.kids, abi.Log{Address: l.Address, Topics: l.Topics, Data: l.Data}, uint64(l.BlockNumber)) {
				changed = true
			}
		}
		f.scanned = hi + 1
	}
	if changed {
		f.snapshot = make(typed.Children, len(f.kids))
		for set, addrs := range f.kids {
			f.snapshot[set] = maps.Clone(addrs)
		}
	}
	return f.snapshot, nil
}

// getLogs is one eth_getLogs of q over blocks from..to.
func (f *FilteredFetcher) getLogs(ctx context.Context, q typed.LogQuery, from, to uint64) ([]json.RawMessage, error) {
	arg := map[string]any{"fromBlock": hexutil.EncodeUint64(from), "toBlock": hexutil.EncodeUint64(to),
		"topics": [][]common.Hash{q.Topic0s}}
	if len(q.Addresses) > 0 {
		arg["address"] = q.Addresses
	}
	var logs []json.RawMessage
	if err := f.calls.CallContext(ctx, &logs, "eth_getLogs", arg); err != nil {
		return nil, fmt.Errorf("eth_getLogs %d-%d: %w", from, to, scrub(err))
	}
	return logs, nil
}

// result is the answer of one element of a batch request for block n.
func result(e rpc.BatchElem, n uint64) (json.RawMessage, error) {
	if e.Error != nil {
		return nil, fmt.Errorf("%s(%d): %w", e.Method, n, e.Error)
	}
	raw := *e.Result.(*json.RawMessage)
	if isNull(raw) {
		return nil, fmt.Errorf("%s(%d): %w (block beyond the node's head?)", e.Method, n, ErrNullBlock)
	}
	return raw, nil
}
