package abi

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

const (
	etlDir   = "../testdata/ethereum-etl/tests/resources"
	tbDir    = "../testdata/trueblocks"
	blockDir = etlDir + "/test_stream/block_17173049"
)

// fixtureLog is a raw log as the fixtures describe it, plus where it came from.
type fixtureLog struct {
	Log
	TxHash   string
	LogIndex int64
}

// decodeJSONLines feeds every non-empty line of a JSON Lines file to fn,
// with UseNumber so that big integers never pass through float64.
func decodeJSONLines(t testing.TB, path string, fn func(m map[string]any)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fn(m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hexutil.Decode(s)
	if err != nil {
		if s == "0x" || s == "" {
			return nil
		}
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustInt(t testing.TB, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return i
	case string:
		b, ok := new(big.Int).SetString(x, 0)
		if !ok {
			t.Fatalf("bad integer %q", x)
		}
		return b.Int64()
	}
	t.Fatalf("not an integer: %#v", v)
	return 0
}

func mustBig(t testing.TB, v any) *big.Int {
	t.Helper()
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		t.Fatalf("not an integer: %#v", v)
	}
	b, ok := new(big.Int).SetString(s, 0)
	if !ok {
		t.Fatalf("bad integer %q", s)
	}
	return b
}

func topicsOf(t testing.TB, v any) []common.Hash {
	t.Helper()
	var out []common.Hash
	switch x := v.(type) {
	case []any:
		for _, s := range x {
			out = append(out, common.HexToHash(s.(string)))
		}
	case string: // CSV: comma separated
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, common.HexToHash(s))
			}
		}
	}
	return out
}

// logFromMap accepts both ethereum-etl (snake_case) and JSON-RPC (camelCase) logs.
func logFromMap(t testing.TB, m map[string]any) fixtureLog {
	t.Helper()
	l := fixtureLog{Log: Log{
		Address: common.HexToAddress(m["address"].(string)),
		Topics:  topicsOf(t, m["topics"]),
		Data:    mustHex(t, m["data"].(string)),
	}}
	if v, ok := m["transaction_hash"]; ok {
		l.TxHash = v.(string)
	} else if v, ok := m["transactionHash"]; ok {
		l.TxHash = v.(string)
	}
	if v, ok := m["log_index"]; ok {
		l.LogIndex = mustInt(t, v)
	} else if v, ok := m["logIndex"]; ok {
		l.LogIndex = mustInt(t, v)
	}
	return l
}

func loadETLLogs(t testing.TB, path string) []fixtureLog {
	t.Helper()
	var out []fixtureLog
	decodeJSONLines(t, path, func(m map[string]any) { out = append(out, logFromMap(t, m)) })
	return out
}

// readCSV returns rows as maps keyed by the header.
func readCSV(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]any
	for _, rec := range recs[1:] {
		m := map[string]any{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

// loadReceiptLogs reads the logs of raw eth_getTransactionReceipt responses.
func loadReceiptLogs(t testing.TB, dir string) []fixtureLog {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "web3_response.eth_getTransactionReceipt_*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no receipts in %s: %v", dir, err)
	}
	var out []fixtureLog
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var resp struct {
			Result struct {
				Logs []map[string]any `json:"logs"`
			} `json:"result"`
		}
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		for _, m := range resp.Result.Logs {
			out = append(out, logFromMap(t, m))
		}
	}
	return out
}

type fixtureTx struct {
	Hash   string
	To     *common.Address
	Input  []byte
	Status int64
}

func loadETLTransactions(t testing.TB, path string) []fixtureTx {
	t.Helper()
	var out []fixtureTx
	decodeJSONLines(t, path, func(m map[string]any) {
		tx := fixtureTx{Hash: m["hash"].(string), Input: mustHex(t, m["input"].(string))}
		if s, ok := m["to_address"].(string); ok && s != "" {
			a := common.HexToAddress(s)
			tx.To = &a
		}
		if v, ok := m["receipt_status"]; ok && v != nil {
			tx.Status = mustInt(t, v)
		}
		out = append(out, tx)
	})
	return out
}

// transferRow is the comparable form of one token transfer.
type transferRow struct {
	Token, From, To, Value, TxHash string
	LogIndex                       int64
}

func (r transferRow) String() string {
	return fmt.Sprintf("%s#%d %s %s->%s %s", r.TxHash, r.LogIndex, r.Token, r.From, r.To, r.Value)
}

func rowFromMap(t testing.TB, m map[string]any) transferRow {
	t.Helper()
	return transferRow{
		Token:    strings.ToLower(m["token_address"].(string)),
		From:     strings.ToLower(m["from_address"].(string)),
		To:       strings.ToLower(m["to_address"].(string)),
		Value:    mustBig(t, m["value"]).String(),
		TxHash:   strings.ToLower(m["transaction_hash"].(string)),
		LogIndex: mustInt(t, m["log_index"]),
	}
}

func hexAddr(a common.Address) string { return strings.ToLower(a.Hex()) }

// readGold parses a TrueBlocks gold file: skip to the first line starting with '{'.
func readGold(t testing.TB, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("{")) {
			break
		}
		i += len(line)
	}
	dec := json.NewDecoder(bytes.NewReader(b[i:]))
	dec.UseNumber()
	var doc struct {
		Data []any `json:"data"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc.Data
}

// decodeArgs parses Event.Args / Call.Args keeping order and exact numbers.
func decodeArgs(t testing.TB, b []byte) ([]string, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("args are not a JSON object: %s", b)
	}
	var keys []string
	m := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("bad args %s: %v", b, err)
		}
		k := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("bad args %s: %v", b, err)
		}
		keys = append(keys, k)
		m[k] = v
	}
	return keys, m
}
