package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chainsink/chainsink/internal/fixtures"
)

// answerFunc makes a response body from the requests (with the ids the client gave them) of one HTTP
// request, a batch or not.
type answerFunc func(reqs []map[string]json.RawMessage, batch bool) (status int, body string)

// echoNode serves answer to both clients alike: each sees answers to its own ids.
func echoNode(t *testing.T, answer answerFunc) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var reqs []map[string]json.RawMessage
		batch := true
		if err := json.Unmarshal(raw, &reqs); err != nil {
			batch = false
			var one map[string]json.RawMessage
			if err := json.Unmarshal(raw, &one); err != nil {
				t.Errorf("request %q: %v", raw, err)
			}
			reqs = append(reqs, one)
		}
		status, body := answer(reqs, batch)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHTTPCallerMatchesGoEthereum: for the same answers of a node, httpCaller gives every element of a call
// or batch the result and the error go-ethereum's client gives it, and fails the same requests: results as
// the node's bytes (a real eth_getLogs answer, pretty-printed, and its logs one by one), null, typed results,
// answers out of order, a missing answer, a node error (method not found, with its code), one error object
// for a whole batch, HTTP 429 and 500 (as rpc.HTTPError), strings that are not UTF-8, and a truncated answer.
func TestHTTPCallerMatchesGoEthereum(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	getLogs, err := os.ReadFile(filepath.Join(root, "ethereum-etl", "tests", "resources", "test_export_token_transfers_job",
		"block_with_transfers", "web3_response.eth_getFilterLogs_0x0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recorded struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(getLogs, &recorded); err != nil {
		t.Fatal(err)
	}
	// results answers each request with a result made from its method and first parameter, in order.
	results := func(result func(method string, param json.RawMessage) string) answerFunc {
		return func(reqs []map[string]json.RawMessage, batch bool) (int, string) {
			var parts []string
			for _, r := range reqs {
				var params []json.RawMessage
				_ = json.Unmarshal(r["params"], &params)
				var method string
				_ = json.Unmarshal(r["method"], &method)
				p := json.RawMessage("null")
				if len(params) > 0 {
					p = params[0]
				}
				parts = append(parts, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,%s}`, r["id"], result(method, p)))
			}
			if !batch {
				return 200, parts[0]
			}
			return 200, "[" + string(bytes.Join(toBytes(parts), []byte(","))) + "]"
		}
	}
	byNumber := func(method string, p json.RawMessage) string {
		switch method {
		case "eth_getLogs":
			return `"result": ` + string(recorded.Result)
		case "eth_getBlockReceipts":
			return `"error":{"code":-32601,"message":"the method eth_getBlockReceipts does not exist/is not available"}`
		case "eth_blockNumber":
			return `"result":"0x76250"`
		case "bad_utf8":
			return "\"result\":{\"revert\":\"\xff\xfe\"}"
		}
		if string(p) == `"0x2"` {
			return `"result":null`
		}
		return `"result":{"number":` + string(p) + `, "hash": "0xab"}`
	}
	type call struct {
		method string
		args   []any
		result func() any // a new result of the type asked for
	}
	raw := func() any { return new(json.RawMessage) }
	rawList := func() any { return new([]json.RawMessage) }
	blocks := []call{{"eth_getBlockByNumber", []any{"0x1", true}, raw}, {"eth_getBlockReceipts", []any{"0x1"}, raw},
		{"eth_getBlockByNumber", []any{"0x2", true}, raw}, {"eth_blockNumber", nil, func() any { return new(hexutil.Uint64) }},
		{"eth_getLogs", []any{map[string]any{"fromBlock": "0x76250"}}, rawList}, {"bad_utf8", nil, raw}}
	reverse := func(a answerFunc) answerFunc {
		return func(reqs []map[string]json.RawMessage, batch bool) (int, string) {
			var rs []json.RawMessage
			_, body := a(reqs, batch)
			if err := json.Unmarshal([]byte(body), &rs); err != nil {
				return 200, body
			}
			slices.Reverse(rs)
			out, _ := json.Marshal(rs)
			return 200, string(out)
		}
	}
	dropFirst := func(a answerFunc) answerFunc {
		return func(reqs []map[string]json.RawMessage, batch bool) (int, string) { return a(reqs[1:], batch) }
	}
	for _, tc := range []struct {
		name   string
		answer answerFunc
		batch  []call // one call without a batch when it has one element and single is set
		single bool
	}{
		{"batch", results(byNumber), blocks, false},
		{"batch answered in reverse", reverse(results(byNumber)), blocks, false},
		{"batch with an answer missing", dropFirst(results(byNumber)), blocks, false},
		{"eth_getLogs alone", results(byNumber), blocks[4:5], true},
		{"eth_getLogs in a batch of one", results(byNumber), blocks[4:5], false},
		{"the recorded answer as it is, pretty-printed", func(reqs []map[string]json.RawMessage, _ bool) (int, string) {
			return 200, string(bytes.Replace(getLogs, []byte(`"jsonrpc": "2.0",`), []byte(`"jsonrpc": "2.0", "id": `+string(reqs[0]["id"])+`,`), 1))
		}, blocks[4:5], true},
		{"null", results(byNumber), blocks[2:3], true},
		{"method not found", results(byNumber), blocks[1:2], true},
		{"typed result", results(byNumber), blocks[3:4], true},
		{"not UTF-8", results(byNumber), blocks[5:6], true},
		{"one error for the batch", func([]map[string]json.RawMessage, bool) (int, string) {
			return 200, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch too large","data":{"limit":100}}}`
		}, blocks, false},
		{"HTTP 429", func([]map[string]json.RawMessage, bool) (int, string) { return 429, `{"error":"rate limited"}` }, blocks, false},
		{"HTTP 500 of a call", func([]map[string]json.RawMessage, bool) (int, string) { return 500, "oops" }, blocks[:1], true},
		{"truncated", func(reqs []map[string]json.RawMessage, batch bool) (int, string) {
			_, body := results(byNumber)(reqs, batch)
			return 200, body[:len(body)/2]
		}, blocks, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			url := echoNode(t, tc.answer)
			geth, err := rpc.DialHTTP(url)
			if err != nil {
				t.Fatal(err)
			}
			defer geth.Close()
			ours := newHTTPCaller(url)
			run := func(c caller) ([]rpc.BatchElem, error) {
				elems := make([]rpc.BatchElem, len(tc.batch))
				for i, cl := range tc.batch {
					elems[i] = rpc.BatchElem{Method: cl.method, Args: cl.args, Result: cl.result()}
				}
				if tc.single {
					err := c.CallContext(ctx, elems[0].Result, elems[0].Method, elems[0].Args...)
					return elems, err
				}
				return elems, c.BatchCallContext(ctx, elems)
			}
			want, wantErr := run(geth)
			got, gotErr := run(ours)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("error %v, go-ethereum's %v", gotErr, wantErr)
			}
			if tc.name == "one error for the batch" {
				// go-ethereum's client fails to read an object where it expects an array and loses the node's
				// message; httpCaller returns the node's error, code and data.
				var ge rpc.Error
				if !errors.As(gotErr, &ge) || ge.ErrorCode() != -32600 || ge.Error() != "batch too large" {
					t.Errorf("error %#v, want the node's -32600 batch too large", gotErr)
				}
				return
			}
			if wantErr != nil {
				var wh, gh rpc.HTTPError
				if errors.As(wantErr, &wh) != errors.As(gotErr, &gh) || wh.StatusCode != gh.StatusCode || !bytes.Equal(wh.Body, gh.Body) {
					t.Errorf("error %#v, go-ethereum's %#v", gotErr, wantErr)
				}
				var we, ge rpc.Error
				if errors.As(wantErr, &we) != errors.As(gotErr, &ge) || (we != nil && (we.ErrorCode() != ge.ErrorCode() || we.Error() != ge.Error())) {
					t.Errorf("error %v, go-ethereum's %v", gotErr, wantErr)
				}
				if errors.As(wantErr, &we) {
					var wd, gd rpc.DataError
					if errors.As(wantErr, &wd) != errors.As(gotErr, &gd) || (wd != nil && !reflect.DeepEqual(wd.ErrorData(), gd.ErrorData())) {
						t.Errorf("error data of %v differs from go-ethereum's %v", gotErr, wantErr)
					}
				}
				t.Logf("both fail: %v / go-ethereum: %v", gotErr, wantErr)
				return
			}
			for i := range want {
				w, g := want[i], got[i]
				if (w.Error == nil) != (g.Error == nil) || (w.Error != nil && w.Error.Error() != g.Error.Error()) {
					t.Errorf("%s: error %v, go-ethereum's %v", w.Method, g.Error, w.Error)
				}
				if w.Error != nil && isMethodNotFound(w.Error) != isMethodNotFound(g.Error) {
					t.Errorf("%s: method not found %v, go-ethereum's %v", w.Method, isMethodNotFound(g.Error), isMethodNotFound(w.Error))
				}
				if !reflect.DeepEqual(w.Result, g.Result) {
					t.Errorf("%s: result %s, go-ethereum's %s", w.Method, show(g.Result), show(w.Result))
				}
			}
		})
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func show(v any) string {
	switch r := v.(type) {
	case *json.RawMessage:
		return string(*r)
	case *[]json.RawMessage:
		return fmt.Sprint(len(*r), " elements: ", string(bytes.Join(rawBytes(*r), []byte(", "))))
	}
	return fmt.Sprintf("%v", v)
}

func rawBytes(rs []json.RawMessage) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

// TestReadLogMatchesUnmarshal: logReader reads a log as json.Unmarshal into rpcLog does, field for field, and
// refuses what it refuses: the logs of a recorded mainnet eth_getLogs answer, and each field broken.
func TestReadLogMatchesUnmarshal(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(root, "ethereum-etl", "tests", "resources", "test_export_token_transfers_job",
		"block_with_transfers", "web3_response.eth_getFilterLogs_0x0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || len(answer.Result) == 0 {
		t.Fatalf("recorded logs: %v", err)
	}
	logs := answer.Result
	valid := `{"address":"0xf4eced2f682ce333f96f2d8966c613ded8fc95dd","blockNumber":"0x76250","data":"0x01","removed":false,` +
		`"topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]}`
	for _, broken := range [][2]string{
		{`"0xf4eced2f682ce333f96f2d8966c613ded8fc95dd"`, `"0xf4eced"`}, {`"0xf4eced2f682ce333f96f2d8966c613ded8fc95dd"`, `null`},
		{`"0x76250"`, `"0x076250"`}, {`"0x76250"`, `30`}, {`"0x01"`, `"0x1"`}, {`"0x01"`, `"01"`}, {`false`, `true`}, {`false`, `"no"`},
		{`["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]`, `[]`},
		{`["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]`, `null`},
		{`["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]`, `["0xdd"]`},
		{`["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]`, `"0xdd"`},
		{`"removed":false,`, ``}, {`{"address"`, `{"other":{"x":[1,2]},"address"`}, {`}`, `,}`}, {`{`, `[`},
	} {
		logs = append(logs, json.RawMessage(bytes.Replace([]byte(valid), []byte(broken[0]), []byte(broken[1]), 1)))
	}
	var lr logReader // one for every log, as the fetcher uses it
	for _, raw := range logs {
		var want rpcLog
		wantErr := json.Unmarshal(raw, &want)
		got, err := lr.read(raw)
		if (err == nil) != (wantErr == nil) {
			t.Errorf("%s: error %v, json.Unmarshal's %v", raw, err, wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, json.Unmarshal's %+v", raw, got, want)
		}
	}
}

// FuzzLogReader holds logReader to json.Unmarshal into rpcLog on any input: the same error or none, and the
// same log.
func FuzzLogReader(f *testing.F) {
	for _, seed := range []string{
		`{"address":"0xf4eced2f682ce333f96f2d8966c613ded8fc95dd","blockNumber":"0x76250","data":"0x01","removed":false,"topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]}`,
		`{"Address":"0xf4eced2f682ce333f96f2d8966c613ded8fc95dd","BLOCKNUMBER":"0x1","topics":null,"data":"0x"}`,
		`{"topics":[],"topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"],"removed":true}`,
		`{"data":null,"address":null}`, `{"x":[{"y":"\u0041"}],"data":"0x00"}`, `[]`, `{}`, `null`, `{"data":"0x0`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want rpcLog
		wantErr := json.Unmarshal(raw, &want)
		var lr logReader
		got, err := lr.read(raw)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, json.Unmarshal's %v", raw, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v, json.Unmarshal's %+v", raw, got, want)
		}
	})
}

// FuzzHTTPCallerMatchesGoEthereum: for any answer a node may send to a batch of three calls (a raw result, a
// list of raw results as eth_getLogs asks for, a typed result), httpCaller fails when go-ethereum's client
// fails and gives each call the same result and the same error. Where they part on purpose, httpCaller reads
// more: a batch answered by one object (some proxies unwrap a batch of one) is read as that one answer, and a
// batch answered by one error object fails with the node's error.
func FuzzHTTPCallerMatchesGoEthereum(f *testing.F) {
	for _, seed := range []string{
		`[{"jsonrpc":"2.0","id":1,"result":{"a":1}},{"jsonrpc":"2.0","id":2,"result":[{"x":1},"y",null]},{"jsonrpc":"2.0","id":3,"result":"0x10"}]`,
		`[{"id":3,"result":"0x0"},{"id":1,"error":{"code":-32601,"message":"no","data":[1]}},{"id":2,"result":null}]`,
		`[{"id":2,"result":[]},{"id":2,"result":[1]},{"id":4,"result":1},{"id":"1","result":1}]`,
		`[{"id":1,"result":1,"error":null},{"id":3,"result":"0x1","id":2}]`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"too large"}}`,
		`[]`, `null`, `[null,{"id":1}]`, `[{"id":1,"result":"\xff"}]`, `[{"id":1,"result":1}] trailing`,
	} {
		f.Add([]byte(seed))
	}
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body.Load().([]byte))
	}))
	defer srv.Close()
	ours := newHTTPCaller(srv.URL)
	f.Fuzz(func(t *testing.T, answer []byte) {
		body.Store(answer)
		ctx := context.Background()
		run := func(c caller) ([]rpc.BatchElem, error) {
			elems := []rpc.BatchElem{{Method: "a", Result: new(json.RawMessage)}, {Method: "b", Result: new([]json.RawMessage)},
				{Method: "c", Result: new(hexutil.Uint64)}}
			return elems, c.BatchCallContext(ctx, elems)
		}
		geth, err := rpc.DialHTTP(srv.URL) // a new client numbers its calls from 1, as httpCaller does
		if err != nil {
			t.Fatal(err)
		}
		defer geth.Close()
		want, wantErr := run(geth)
		got, gotErr := run(ours)
		if wantErr != nil {
			trimmed := bytes.TrimSpace(answer)
			if len(trimmed) > 0 && trimmed[0] == '{' {
				return // one object for the batch: httpCaller reads it (see above)
			}
			if gotErr == nil {
				t.Fatalf("%q: no error, go-ethereum's %v", answer, wantErr)
			}
			return
		}
		if gotErr != nil {
			t.Fatalf("%q: error %v, go-ethereum's none", answer, gotErr)
		}
		for i := range want {
			w, g := want[i], got[i]
			if (w.Error == nil) != (g.Error == nil) {
				t.Fatalf("%q: %s: error %v, go-ethereum's %v", answer, w.Method, g.Error, w.Error)
			}
			var we, ge rpc.Error
			if errors.As(w.Error, &we) != errors.As(g.Error, &ge) || (we != nil && (we.ErrorCode() != ge.ErrorCode() || we.Error() != ge.Error())) {
				t.Fatalf("%q: %s: error %v, go-ethereum's %v", answer, w.Method, g.Error, w.Error)
			}
			if w.Error == nil && !reflect.DeepEqual(w.Result, g.Result) {
				t.Fatalf("%q: %s: result %s, go-ethereum's %s", answer, w.Method, show(g.Result), show(w.Result))
			}
		}
	})
}

// TestHTTPCallerDoesNotTrustContentLength: an answer that claims a terabyte allocates no terabyte (the read
// fails on the short body instead).
func TestHTTPCallerDoesNotTrustContentLength(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1099511627776")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`)
	}))
	defer srv.Close()
	var n hexutil.Uint64
	err := newHTTPCaller(srv.URL).CallContext(context.Background(), &n, "eth_blockNumber")
	if err == nil {
		t.Fatal("a body shorter than its Content-Length was read as whole")
	}
	t.Logf("as expected: %v", err)
}
