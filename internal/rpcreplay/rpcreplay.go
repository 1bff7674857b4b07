package rpcreplay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
)

// Answer is one recorded exchange: a request's method and parameters, and the node's result or error.
type Answer struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// key is the method and the parameters as canonical JSON.
func key(method string, params json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		return method + " null", nil
	}
	var v any
	if err := json.Unmarshal(params, &v); err != nil {
		return "", fmt.Errorf("params of %s: %w", method, err)
	}
	canon, err := json.Marshal(v) // encoding/json sorts map keys
	if err != nil {
		return "", err
	}
	if string(canon) == "[]" { // no parameters, however a client spells it
		canon = []byte("null")
	}
	return method + " " + string(canon), nil
}

// Answers is a set of recorded answers, safe for concurrent use.
type Answers struct {
	mu   sync.RWMutex
	byID map[string]Answer
}

// NewAnswers is an empty set.
func NewAnswers() *Answers { return &Answers{byID: map[string]Answer{}} }

// Add keeps a, replacing an earlier answer to the same request.
func (s *Answers) Add(a Answer) error {
	k, err := key(a.Method, a.Params)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.byID[k] = a
	s.mu.Unlock()
	return nil
}

// Len is the number of answers.
func (s *Answers) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

func (s *Answers) lookup(method string, params json.RawMessage) (Answer, bool, error) {
	k, err := key(method, params)
	if err != nil {
		return Answer{}, false, err
	}
	s.mu.RLock()
	a, ok := s.byID[k]
	s.mu.RUnlock()
	return a, ok, nil
}

// Write writes the answers as JSON lines, sorted by request, so that the same recording is the same file.
func (s *Answers) Write(w io.Writer) error {
	s.mu.RLock()
	keys := make([]string, 0, len(s.byID))
	for k := range s.byID {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	answers := make([]Answer, len(keys))
	for i, k := range keys {
		answers[i] = s.byID[k]
	}
	s.mu.RUnlock()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, a := range answers {
		if err := enc.Encode(a); err != nil {
			return fmt.Errorf("write answers: %w", err)
		}
	}
	return bw.Flush()
}

// ReadAnswers reads what Write wrote.
func ReadAnswers(r io.Reader) (*Answers, error) {
	s := NewAnswers()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20) // a mainnet block with its transactions is a few MB
	for n := 1; sc.Scan(); n++ {
		var a Answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("answers line %d: %w", n, err)
		}
		if err := s.Add(a); err != nil {
			return nil, fmt.Errorf("answers line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read answers: %w", err)
	}
	return s, nil
}

// parseBody reads a JSON-RPC body: one request, or a batch.
func parseBody(body []byte) (reqs []request, batch bool, err error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &reqs)
		return reqs, true, err
	}
	var one request
	err = json.Unmarshal(body, &one)
	return []request{one}, false, err
}

// readRequests reads r's JSON-RPC body, or answers 400 and reports false.
func readRequests(w http.ResponseWriter, r *http.Request) (body []byte, reqs []request, batch, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		reqs, batch, err = parseBody(body)
	}
	if err != nil {
		http.Error(w, "not a JSON-RPC request: "+err.Error(), http.StatusBadRequest)
		return nil, nil, false, false
	}
	return body, reqs, batch, true
}

// Recorder is an http.Handler that forwards JSON-RPC requests to a node and keeps its answers.
type Recorder struct {
	Upstream string
	Client   *http.Client
	Answers  *Answers
}

// NewRecorder records the answers of the node at upstream (an http(s) URL).
func NewRecorder(upstream string) *Recorder {
	return &Recorder{Upstream: upstream, Client: http.DefaultClient, Answers: NewAnswers()}
}

func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, reqs, batch, ok := readRequests(w, r)
	if !ok {
		return
	}
	up, err := rec.Client.Post(rec.Upstream, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Body.Close()
	answer, err := io.ReadAll(up.Body)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	if up.StatusCode == http.StatusOK {
		if err := rec.keep(reqs, batch, answer); err != nil {
			http.Error(w, "record: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(up.StatusCode)
	_, _ = w.Write(answer)
}

// keep matches the node's responses to the requests by id and adds them.
func (rec *Recorder) keep(reqs []request, batch bool, answer []byte) error {
	var resps []response
	if batch {
		if err := json.Unmarshal(answer, &resps); err != nil {
			return fmt.Errorf("batch answer: %w", err)
		}
	} else {
		var one response
		if err := json.Unmarshal(answer, &one); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		resps = []response{one}
	}
	byID := make(map[string]response, len(resps))
	for _, r := range resps {
		byID[string(r.ID)] = r
	}
	for _, q := range reqs {
		r, ok := byID[string(q.ID)]
		if !ok {
			continue // a notification, or a request the node did not answer
		}
		if err := rec.Answers.Add(Answer{Method: q.Method, Params: q.Params, Result: r.Result, Error: r.Error}); err != nil {
			return err
		}
	}
	return nil
}

// Server is an http.Handler that answers JSON-RPC requests, batches included, from recorded answers. A request
// it has no answer for is answered with a JSON-RPC error (-32001) naming it, so that a replay that strays from
// the recording fails loudly instead of hanging.
type Server struct {
	Answers *Answers

	mu     sync.Mutex
	served int64
	missed []string
}

// ErrNotRecorded is the code of the error for a request that was not recorded.
const ErrNotRecorded = -32001

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, reqs, batch, ok := readRequests(w, r)
	if !ok {
		return
	}
	out := make([]response, len(reqs))
	for i, q := range reqs {
		out[i] = response{JSONRPC: "2.0", ID: q.ID}
		a, ok, err := s.Answers.lookup(q.Method, q.Params)
		switch {
		case err != nil:
			out[i].Error = rpcError(-32602, err.Error())
		case !ok:
			s.mu.Lock()
			s.missed = append(s.missed, q.Method+" "+string(q.Params))
			s.mu.Unlock()
			out[i].Error = rpcError(ErrNotRecorded, "not recorded: "+q.Method+" "+string(q.Params))
		case len(a.Error) > 0:
			out[i].Error = a.Error
		default:
			out[i].Result = a.Result
			if len(out[i].Result) == 0 {
				out[i].Result = json.RawMessage("null")
			}
		}
	}
	s.mu.Lock()
	s.served += int64(len(reqs))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if batch {
		_ = enc.Encode(out)
	} else {
		_ = enc.Encode(out[0])
	}
}

func rpcError(code int, msg string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"code": code, "message": msg})
	return b
}

// Served is the number of requests answered, batch elements counted one by one.
func (s *Server) Served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Missed are the requests that had no recorded answer.
func (s *Server) Missed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.missed...)
}
