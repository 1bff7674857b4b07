package rpcreplay

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestServerMatchesByValue: a request is matched by method and parameters as JSON values (key order and
// spacing aside), answered with the client's id, in a batch or alone; a recorded error is replayed as the
// error; an unknown request gets ErrNotRecorded and is listed.
func TestServerMatchesByValue(t *testing.T) {
	a := NewAnswers()
	for _, x := range []Answer{
		{Method: "eth_call", Params: json.RawMessage(`[{"to": "0x01", "data": "0x06fdde03"}, "latest"]`), Result: json.RawMessage(`"0x2a"`)},
		{Method: "eth_call", Params: json.RawMessage(`[{"to": "0x02", "data": "0x06fdde03"}, "latest"]`),
			Error: json.RawMessage(`{"code": 3, "message": "execution reverted"}`)},
		{Method: "eth_blockNumber", Result: json.RawMessage(`"0x10"`)},
	} {
		if err := a.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	var file bytes.Buffer
	if err := a.Write(&file); err != nil {
		t.Fatal(err)
	}
	back, err := ReadAnswers(&file)
	if err != nil || back.Len() != 3 {
		t.Fatalf("%d answers read back, %v", back.Len(), err)
	}
	s := &Server{Answers: back}
	srv := httptest.NewServer(s)
	defer srv.Close()

	got := post(t, srv.URL, `[{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"data":"0x06fdde03","to":"0x01"},"latest"]},
		{"jsonrpc":"2.0","id":"x","method":"eth_call","params":[{"data":"0x06fdde03","to":"0x02"},"latest"]},
		{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber","params":[]},
		{"jsonrpc":"2.0","id":10,"method":"eth_chainId","params":[]}]`)
	var resps []response
	if err := json.Unmarshal([]byte(got), &resps); err != nil || len(resps) != 4 {
		t.Fatalf("batch answer %s (%v)", got, err)
	}
	if string(resps[0].ID) != "7" || string(resps[0].Result) != `"0x2a"` {
		t.Errorf("reordered keys: %s", got)
	}
	if string(resps[1].ID) != `"x"` || !strings.Contains(string(resps[1].Error), "execution reverted") {
		t.Errorf("recorded error: %s", got)
	}
	if string(resps[2].Result) != `"0x10"` {
		t.Errorf("no params: %s", got)
	}
	if !strings.Contains(string(resps[3].Error), "-32001") || !strings.Contains(string(resps[3].Error), "eth_chainId") {
		t.Errorf("unrecorded request: %s", got)
	}
	if one := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":null}`); !strings.Contains(one, `"result":"0x10"`) {
		t.Errorf("single request: %s", one)
	}
	if s.Served() != 5 || len(s.Missed()) != 1 {
		t.Errorf("served %d, missed %v", s.Served(), s.Missed())
	}
}
