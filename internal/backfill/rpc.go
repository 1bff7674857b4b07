package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// Block is one block's raw JSON-RPC results, kept byte for byte as the node sent them.
type Block struct {
	Number uint64
	// Block is the eth_getBlockByNumber(N, true) result.
	Block json.RawMessage
	// Receipts is the eth_getBlockReceipts(N) result, or the JSON array of each transaction's
	// eth_getTransactionReceipt result in transaction order.
	Receipts json.RawMessage
	// Traces is the debug_traceBlockByNumber(N, {"tracer": "callTracer"}) result; nil unless the fetcher
	// was asked for traces (RPCFetcher.WithTraces).
	Traces json.RawMessage
	// Filtered, from a FilteredFetcher, is what filtered mode keeps of the block, in place of Block and
	// Receipts.
	Filtered *Filtered
}

// Header is the block's header fields (hash, parent hash, …): Block, or a filtered block's header.
func (b Block) Header() json.RawMessage {
	if b.Filtered != nil {
		return b.Filtered.Header
	}
	return b.Block
}

// Fetcher reads blocks from a node. Each call is one attempt; Run retries.
type Fetcher interface {
	// Head is the node's latest block number.
	Head(ctx context.Context) (uint64, error)
	// Fetch returns blocks from..to (inclusive), in order, each with its receipts.
	Fetch(ctx context.Context, from, to uint64) ([]Block, error)
}

// ErrNullBlock is a block the node does not have: beyond its head, or pruned.
var ErrNullBlock = errors.New("node returned null")

// RPCFetcher fetches blocks with JSON-RPC batch requests (through httpCaller for an http(s) node, through
// go-ethereum's client for the other transports): one request per batch of blocks, holding
// eth_getBlockByNumber and eth_getBlockReceipts for each. When the node does not know eth_getBlockReceipts
// (method not found), it switches, once and for all, to eth_getTransactionReceipt per transaction, batched by
// ReceiptsBatchSize.
type RPCFetcher struct {
	client *rpc.Client
	// calls is client, or for an http(s) node the faster httpCaller to the same URL.
	calls             caller
	logger            *slog.Logger
	receiptsBatchSize int
	noBlockReceipts   atomic.Bool
	traces            bool
}

// callTracer is the tracer option of debug_traceBlockByNumber: go-ethereum's native call tracer, which
// reth and erigon serve too. geth gives a transaction's trace 5 s by default and answers a slower one with an
// error in place of its trace, which would fail the block for good (traces_mismatch); a minute is what the
// heaviest mainnet transactions need.
var callTracer = map[string]any{"tracer": "callTracer", "timeout": "60s"}

// WithTraces makes f fetch each block's call traces too, in the same batch request as the block.
func (f *RPCFetcher) WithTraces() *RPCFetcher {
	f.traces = true
	return f
}

// DialRPC connects to url (http, https, ws, wss or an IPC path). Nothing is sent until the first call.
// receiptsBatchSize 0 means 100. logger may be nil.
func DialRPC(ctx context.Context, rawURL string, receiptsBatchSize int, logger *slog.Logger) (*RPCFetcher, error) {
	c, err := rpc.DialOptions(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to JSON-RPC %s: %w", redactURL(rawURL), err)
	}
	f := NewRPCFetcher(c, receiptsBatchSize, logger)
	if u, err := url.Parse(rawURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		f.calls = newHTTPCaller(rawURL)
	}
	// Which node the retries and failures below are about; its host only.
	f.logger.Info("JSON-RPC node", "rpc", redactURL(rawURL))
	return f, nil
}

// NewRPCFetcher uses an existing client.
func NewRPCFetcher(c *rpc.Client, receiptsBatchSize int, logger *slog.Logger) *RPCFetcher {
	if receiptsBatchSize <= 0 {
		receiptsBatchSize = 100
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RPCFetcher{client: c, calls: c, logger: logger, receiptsBatchSize: receiptsBatchSize}
}

// Close closes the client.
func (f *RPCFetcher) Close() {
	f.client.Close()
	if hc, ok := f.calls.(*httpCaller); ok {
		hc.client.CloseIdleConnections()
	}
}

// Client is the fetcher's JSON-RPC client, for other reads of the same node (token metadata).
func (f *RPCFetcher) Client() *rpc.Client { return f.client }

// UsesBlockReceipts is false once the node has answered method-not-found for eth_getBlockReceipts.
func (f *RPCFetcher) UsesBlockReceipts() bool { return !f.noBlockReceipts.Load() }

// Head implements Fetcher.
func (f *RPCFetcher) Head(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	if err := f.calls.CallContext(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, fmt.Errorf("eth_blockNumber: %w", scrub(err))
	}
	return uint64(n), nil
}

// ErrNoNotifications is NotifyHeads' error on a transport that cannot push (plain HTTP): poll instead.
var ErrNoNotifications = errors.New("the node's transport has no notifications (use ws:// or an IPC path to be told of new heads)")

// NotifyHeads subscribes to the node's new heads (eth_subscribe "newHeads", over ws or IPC) and makes a
// non-blocking send on wake for each, until ctx ends (nil) or the subscription fails (its error).
func (f *RPCFetcher) NotifyHeads(ctx context.Context, wake chan<- struct{}) error {
	type head struct {
		Number hexutil.Uint64 `json:"number"`
	}
	heads := make(chan head, 16)
	sub, err := f.client.EthSubscribe(ctx, heads, "newHeads")
	if errors.Is(err, rpc.ErrNotificationsUnsupported) {
		return ErrNoNotifications
	}
	if err != nil {
		return fmt.Errorf("eth_subscribe newHeads: %w", scrub(err))
	}
	defer sub.Unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-sub.Err():
			if err == nil {
				err = errors.New("closed by the node")
			}
			return fmt.Errorf("newHeads subscription: %w", scrub(err))
		case <-heads:
			select {
			case wake <- struct{}{}:
			default: // a step is already due
			}
		}
	}
}

// BlockHashes returns the node's canonical hashes of blocks numbers, in their order, with one batch request
// of eth_getBlockByNumber(N, false) (headers only). A block the node does not have is a nil hash.
func (f *RPCFetcher) BlockHashes(ctx context.Context, numbers []uint64) ([][]byte, error) {
	type header struct {
		Hash hexutil.Bytes `json:"hash"`
	}
	elems := make([]rpc.BatchElem, len(numbers))
	for i, n := range numbers {
		elems[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(n), false}, Result: new(*header)}
	}
	if len(elems) == 0 {
		return nil, nil
	}
	if err := f.calls.BatchCallContext(ctx, elems); err != nil {
		return nil, fmt.Errorf("batch request for the hashes of blocks %d-%d: %w", numbers[0], numbers[len(numbers)-1], scrub(err))
	}
	out := make([][]byte, len(numbers))
	for i, e := range elems {
		if e.Error != nil {
			return nil, fmt.Errorf("eth_getBlockByNumber(%d, false): %w", numbers[i], e.Error)
		}
		if h := *e.Result.(**header); h != nil {
			out[i] = h.Hash
		}
	}
	return out, nil
}

// Fetch implements Fetcher.
func (f *RPCFetcher) Fetch(ctx context.Context, from, to uint64) ([]Block, error) {
	if to < from {
		return nil, fmt.Errorf("fetch %d-%d: empty range", from, to)
	}
	n := int(to - from + 1)
	withReceipts := !f.noBlockReceipts.Load()
	per := 1
	if withReceipts {
		per = 2
	}
	elems := make([]rpc.BatchElem, 0, (per+1)*n)
	for i := range n {
		num := hexutil.EncodeUint64(from + uint64(i))
		elems = append(elems, rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{num, true}, Result: new(json.RawMessage)})
		if withReceipts {
			elems = append(elems, rpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{num}, Result: new(json.RawMessage)})
		}
	}
	// The traces follow the blocks, block i's at per*n+i. The genesis block has no transactions, and geth
	// refuses to trace it ("genesis is not traceable"): its traces are [] without asking.
	if f.traces {
		for i := range n {
			num := hexutil.EncodeUint64(from + uint64(i))
			e := rpc.BatchElem{Method: "debug_traceBlockByNumber", Args: []any{num, callTracer}, Result: new(json.RawMessage)}
			if from+uint64(i) == 0 {
				e = rpc.BatchElem{Method: "eth_chainId", Result: new(json.RawMessage)} // a cheap stand-in keeps the positions
			}
			elems = append(elems, e)
		}
	}
	if err := f.calls.BatchCallContext(ctx, elems); err != nil {
		return nil, fmt.Errorf("batch request for blocks %d-%d: %w", from, to, scrub(err))
	}
	blocks := make([]Block, n)
	fallback := !withReceipts
	for i := range n {
		num := from + uint64(i)
		raw, err := result(elems[per*i], num)
		if err != nil {
			return nil, err
		}
		blocks[i] = Block{Number: num, Block: raw}
		if f.traces {
			te := elems[per*n+i]
			if te.Error != nil {
				err := fmt.Errorf("debug_traceBlockByNumber(%d): %w", num, te.Error)
				if isMethodNotFound(te.Error) {
					// Retrying will not make the node serve the debug API.
					return nil, permanent(fmt.Errorf("%w (the node does not serve the debug API, which --traces needs: geth --http.api eth,debug)", err))
				}
				return nil, err
			}
			traces := *te.Result.(*json.RawMessage)
			if num == 0 {
				traces = json.RawMessage("[]")
			}
			if isNull(traces) {
				return nil, fmt.Errorf("debug_traceBlockByNumber(%d): %w", num, ErrNullBlock)
			}
			blocks[i].Traces = traces
		}
		if !withReceipts {
			continue
		}
		re := elems[per*i+1]
		if re.Error != nil {
			if isMethodNotFound(re.Error) {
				if !f.noBlockReceipts.Swap(true) {
					f.logger.Warn("the node has no eth_getBlockReceipts; fetching receipts per transaction with eth_getTransactionReceipt",
						"error", re.Error)
				}
				fallback = true
				continue
			}
			return nil, fmt.Errorf("eth_getBlockReceipts(%d): %w", num, re.Error)
		}
		raw = *re.Result.(*json.RawMessage)
		if isNull(raw) {
			return nil, fmt.Errorf("eth_getBlockReceipts(%d): %w", num, ErrNullBlock)
		}
		blocks[i].Receipts = raw
	}
	if fallback {
		if err := f.fetchTxReceipts(ctx, blocks); err != nil {
			return nil, err
		}
	}
	return blocks, nil
}

// fetchTxReceipts fills the receipts of blocks that have none with eth_getTransactionReceipt per transaction.
func (f *RPCFetcher) fetchTxReceipts(ctx context.Context, blocks []Block) error {
	type ref struct {
		block int
		tx    int
	}
	var refs []ref
	var elems []rpc.BatchElem
	results := make([][]json.RawMessage, len(blocks))
	for i := range blocks {
		if blocks[i].Receipts != nil {
			continue
		}
		hashes, err := txHashes(blocks[i].Block)
		if err != nil {
			return fmt.Errorf("block %d: %w", blocks[i].Number, err)
		}
		results[i] = make([]json.RawMessage, len(hashes))
		for j, h := range hashes {
			refs = append(refs, ref{i, j})
			elems = append(elems, rpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{h}, Result: new(json.RawMessage)})
		}
	}
	for lo := 0; lo < len(elems); lo += f.receiptsBatchSize {
		hi := min(lo+f.receiptsBatchSize, len(elems))
		if err := f.calls.BatchCallContext(ctx, elems[lo:hi]); err != nil {
			return fmt.Errorf("batch request for %d transaction receipts: %w", hi-lo, scrub(err))
		}
	}
	for k, e := range elems {
		r := refs[k]
		if e.Error != nil {
			return fmt.Errorf("eth_getTransactionReceipt(%s) of block %d: %w", e.Args[0], blocks[r.block].Number, e.Error)
		}
		raw := *e.Result.(*json.RawMessage)
		if isNull(raw) {
			return fmt.Errorf("eth_getTransactionReceipt(%s) of block %d: %w", e.Args[0], blocks[r.block].Number, ErrNullBlock)
		}
		results[r.block][r.tx] = raw
	}
	for i, rs := range results {
		if rs == nil {
			continue
		}
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j, r := range rs {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(r)
		}
		buf.WriteByte(']')
		blocks[i].Receipts = buf.Bytes()
	}
	return nil
}

// txHashes are the hashes of a block's full transaction objects.
func txHashes(block json.RawMessage) ([]string, error) {
	var b struct {
		Transactions []json.RawMessage `json:"transactions"`
	}
	if err := json.Unmarshal(block, &b); err != nil {
		return nil, fmt.Errorf("read transactions: %w", err)
	}
	out := make([]string, len(b.Transactions))
	for i, raw := range b.Transactions {
		var tx struct {
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(raw, &tx); err != nil || tx.Hash == "" {
			return nil, fmt.Errorf("transactions[%d] is not a transaction object with a hash", i)
		}
		out[i] = tx.Hash
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// isMethodNotFound recognises JSON-RPC's "method not found" (-32601), and the wordings of nodes that answer
// it with another code.
func isMethodNotFound(err error) bool {
	var re rpc.Error
	if errors.As(err, &re) && re.ErrorCode() == -32601 {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "method not found") || strings.Contains(msg, "does not exist/is not available") ||
		strings.Contains(msg, "unsupported method")
}

// scrub redacts the URL that net/http puts into its errors.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	return err
}

// redactURL hides what follows the host (API keys live in paths and queries of hosted nodes) and passwords.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		rest = rest[at+1:]
	}
	host, _, hasPath := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if hasPath || strings.Contains(rest, "?") {
		return scheme + "://" + host + "/…"
	}
	return scheme + "://" + host
}
