package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/go-json-experiment/json/jsontext"
)

// caller is what the fetchers ask of a node: go-ethereum's rpc.Client, or httpCaller for http(s) nodes.
type caller interface {
	CallContext(ctx context.Context, result any, method string, args ...any) error
	BatchCallContext(ctx context.Context, b []rpc.BatchElem) error
}

// httpCaller sends JSON-RPC calls and batches over HTTP as go-ethereum's client does (same requests, same
// results and errors: rpc.BatchElem, rpc.HTTPError, rpc.Error with the node's code), but reads the answer in
// one pass. go-ethereum's client decodes a response with encoding/json three times over (the envelope, then
// its result into json.RawMessage, then that into the caller's type, each validating every byte again), which
// was half of a filtered backfill's CPU (BenchmarkFilteredBackfill: eth_getLogs answers are megabytes of
// logs). Here the response is scanned once with jsontext and each result is a slice of the response body; a
// result of another type than json.RawMessage is unmarshalled from that slice.
//
// Subscriptions (follow's new heads) and the other transports stay with go-ethereum's client.
type httpCaller struct {
	url    string
	client *http.Client
	// sizes are the sizes of the last answers by the method of their first call: the guess for the next
	// one's buffer (a fetcher's batches of a kind are alike; its header batches and its eth_getLogs are not).
	sizes sync.Map // string → *atomic.Int64
}

func newHTTPCaller(url string) *httpCaller {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Backfill keeps --concurrency requests in flight to one host; net/http keeps only 2 idle connections per
	// host by default and would open (and TLS-handshake) new ones for the rest.
	t.MaxIdleConnsPerHost = 64
	return &httpCaller{url: url, client: &http.Client{Transport: t}}
}

// CallContext implements caller.
func (c *httpCaller) CallContext(ctx context.Context, result any, method string, args ...any) error {
	b := []rpc.BatchElem{{Method: method, Args: args, Result: result}}
	if err := c.send(ctx, b, false); err != nil {
		return err
	}
	return b[0].Error
}

// BatchCallContext implements caller.
func (c *httpCaller) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	if len(b) == 0 {
		return errors.New("empty batch")
	}
	return c.send(ctx, b, true)
}

// maxPrealloc bounds the buffer allocated for an answer before it is read.
const maxPrealloc = 64 << 20

// request is a JSON-RPC 2.0 request; its id is its index in the batch plus one (an id of 0 is valid JSON-RPC,
// but not every proxy in front of a node tells it from a missing one).
type request struct {
	Version string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// rpcError is a JSON-RPC error object, as an rpc.Error and rpc.DataError like go-ethereum's.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("json-rpc error %d", e.Code)
	}
	return e.Message
}

func (e *rpcError) ErrorCode() int { return e.Code }

func (e *rpcError) ErrorData() any {
	if len(e.Data) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(e.Data, &v) != nil {
		return string(e.Data)
	}
	return v
}

func (c *httpCaller) send(ctx context.Context, b []rpc.BatchElem, batch bool) error {
	reqs := make([]request, len(b))
	for i, e := range b {
		params := e.Args
		if params == nil {
			params = []any{}
		}
		reqs[i] = request{Version: "2.0", ID: i + 1, Method: e.Method, Params: params}
	}
	var body []byte
	var err error
	if batch {
		body, err = json.Marshal(reqs)
	} else {
		body, err = json.Marshal(reqs[0])
	}
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The answer is read into one buffer of about its size: io.ReadAll's doubling from 512 bytes copied and
	// cleared a batch's megabytes a dozen times. The results are slices of it, so it is not reused.
	v, _ := c.sizes.LoadOrStore(b[0].Method, new(atomic.Int64))
	last := v.(*atomic.Int64)
	size := last.Load()
	if resp.ContentLength > 0 {
		size = resp.ContentLength
	}
	// What the node claims is only a guess too: a wrong Content-Length must not allocate more than an answer
	// can need up front (a batch of large mainnet blocks with their receipts is tens of MiB); the buffer grows
	// past it if it must.
	size = min(size, maxPrealloc)
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	answer := buf.Bytes()
	last.Store(int64(len(answer)))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return rpc.HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Body: answer}
	}
	return readResponse(answer, b, batch)
}

// readResponse fills b's results and errors from answer, matched by id. An element without an answer gets
// rpc.ErrMissingBatchResponse, as from go-ethereum's client; an answer that is one error object for the whole
// batch (nodes answer so to a batch over their limit) is returned as the error.
func readResponse(answer []byte, b []rpc.BatchElem, batch bool) error {
	// Lenient as encoding/json, which go-ethereum's client reads with: a node's strings are not always UTF-8
	// (revert reasons), and a duplicate name is not the client's to refuse.
	d := jsontext.NewDecoder(bytes.NewBuffer(answer), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	done := make([]bool, len(b))
	// readOne reads one answer object; top says that it is the whole answer to a batch rather than one of
	// its elements.
	readOne := func(top bool) error {
		if tok, err := d.ReadToken(); err != nil {
			return err
		} else if tok.Kind() != '{' {
			return fmt.Errorf("a response is a JSON %s, not an object", tok.Kind())
		}
		id := -1
		if !batch {
			id = 0
		}
		var result []byte
		var rerr *rpcError
		split := false // result was split into the element's *[]json.RawMessage as it was read
		for d.PeekKind() != '}' {
			tok, err := d.ReadToken()
			if err != nil {
				return err
			}
			name := tok.String() // before the next read voids tok
			if name == "result" && d.PeekKind() == '[' {
				// An array answer of a call that asked for its elements (eth_getLogs) is split in this pass.
				target := -1
				if !batch {
					target = 0
				} else if id >= 0 {
					target = id
				}
				if target >= 0 && !done[target] {
					if r, ok := b[target].Result.(*[]json.RawMessage); ok {
						start := int(d.InputOffset())
						elems, err := readArray(d, answer)
						if err != nil {
							return err
						}
						// result only has to say that there was one: the elements are in *r.
						*r, result, split = elems, answer[start:d.InputOffset()], true
						continue
					}
				}
			}
			v, err := d.ReadValue()
			if err != nil {
				return err
			}
			switch name {
			case "id":
				if !batch {
					// go-ethereum's client does not look at a single call's id, and nor does this: the
					// answer is the call's.
				} else if n, err := strconv.Atoi(string(v)); err == nil && n >= 1 && n <= len(b) {
					id = n - 1
				}
			case "result":
				// The value's bytes in answer itself, which outlives the decoder.
				end := int(d.InputOffset())
				result = answer[end-len(v) : end : end]
			case "error":
				// Whatever the member holds, even null, the call failed; its code and message are what of
				// them can be read (go-ethereum's client reads them so).
				rerr = new(rpcError)
				_ = json.Unmarshal(v, rerr)
			}
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		if top && id < 0 && rerr != nil {
			return rerr // one error for the whole batch (over the node's limit, a parse error)
		}
		if id < 0 || done[id] {
			return nil // an answer to nothing asked: ignored, as go-ethereum does
		}
		done[id] = true
		e := &b[id]
		switch {
		case rerr != nil:
			e.Error = rerr
		case result == nil:
			e.Error = rpc.ErrNoResult
		case e.Result == nil:
		default:
			switch r := e.Result.(type) {
			case *json.RawMessage:
				*r = result
			case *[]json.RawMessage: // eth_getLogs
				if !split {
					*r, e.Error = splitArray(result)
				}
			default:
				e.Error = json.Unmarshal(result, e.Result)
			}
		}
		return nil
	}
	var err error
	switch {
	case d.PeekKind() == 'n':
		// null: no answer at all, which go-ethereum's client reads as none to each call of a batch and as
		// no result to a single call.
		if _, err = d.ReadValue(); err == nil && !batch {
			done[0], b[0].Error = true, rpc.ErrNoResult
		}
	case batch && d.PeekKind() == '[':
		if _, err = d.ReadToken(); err == nil {
			for err == nil && d.PeekKind() != ']' {
				if d.PeekKind() == 'n' {
					_, err = d.ReadValue() // a null answer in a batch is ignored, as go-ethereum does
				} else {
					err = readOne(false)
				}
			}
		}
	default:
		err = readOne(batch)
	}
	var re *rpcError
	if errors.As(err, &re) {
		return re
	} else if err != nil {
		return fmt.Errorf("read JSON-RPC response: %w", err)
	}
	for i := range b {
		if !done[i] {
			b[i].Error = rpc.ErrMissingBatchResponse
		}
	}
	return nil
}

// splitArray returns the elements of the JSON array raw as slices of it; null is no elements, as
// json.Unmarshal gives.
func splitArray(raw []byte) ([]json.RawMessage, error) {
	d := jsontext.NewDecoder(bytes.NewBuffer(raw), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	switch d.PeekKind() {
	case 'n':
		return nil, nil
	case '[':
		return readArray(d, raw)
	default:
		return nil, fmt.Errorf("the result is a JSON %s, not an array", d.PeekKind())
	}
}

// readArray reads the array at d's position, whose input is in, and returns its elements as slices of in.
func readArray(d *jsontext.Decoder, in []byte) ([]json.RawMessage, error) {
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for d.PeekKind() != ']' {
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(d.InputOffset())
		out = append(out, in[end-len(v):end:end])
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	if out == nil {
		out = []json.RawMessage{} // [] is no elements, but not null
	}
	return out, nil
}
