package format

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// The helpers here parse expected values independently of the package: encoding/hex and big.Int on the
// fixture text, never hexutil or the decoder's own types, so that a bug shared by both sides cannot hide.

const (
	etlDir           = "../../testdata/ethereum-etl/tests/resources"
	gethDir          = "../../testdata/go-ethereum/internal/ethapi/testdata"
	block17173049Dir = etlDir + "/test_stream/block_17173049"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// readLines returns the non-empty lines of a JSON Lines file.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out
}

// etlItems17173049 is every item of mainnet block 17173049: 1 block, 116 transactions, 271 logs.
func etlItems17173049(t testing.TB) [][]byte {
	var items [][]byte
	for _, f := range []string{"expected_blocks.json", "expected_transactions.json", "expected_logs.json"} {
		items = append(items, readLines(t, filepath.Join(block17173049Dir, f))...)
	}
	if len(items) != 388 {
		t.Fatalf("block 17173049 has %d items, want 388", len(items))
	}
	return items
}

// generic parses JSON into maps with json.Number, so that big integers stay exact.
func generic(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	return m
}

// rpcResult is the "result" of a recorded JSON-RPC response.
func rpcResult(t testing.TB, path string) json.RawMessage {
	t.Helper()
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(readFile(t, path), &env); err != nil || len(env.Result) == 0 {
		t.Fatalf("%s: no JSON-RPC result (%v)", path, err)
	}
	return env.Result
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Expected values from generic JSON or CSV text.

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	if !strings.HasPrefix(s, "0x") {
		t.Fatalf("%q is not 0x-hex", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b // "0x" gives an empty, non-nil slice
}

// hexOrNil: "" and JSON null are NULL.
func hexOrNil(t testing.TB, v any) []byte {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		return hexBytes(t, v)
	}
	t.Fatalf("%v (%T) is not a hex string", v, v)
	return nil
}

func decBig(t testing.TB, v any) *big.Int {
	t.Helper()
	var s string
	switch v := v.(type) {
	case nil:
		return nil
	case json.Number:
		s = v.String()
	case string:
		if v == "" {
			return nil
		}
		s = v
	default:
		t.Fatalf("%v (%T) is not an integer", v, v)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("%q is not a decimal integer", s)
	}
	return n
}

// quantityBig parses an RPC hex quantity.
func quantityBig(t testing.TB, v any) *big.Int {
	t.Helper()
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(s, "0x") {
		t.Fatalf("%v is not a hex quantity", v)
	}
	n, ok := new(big.Int).SetString(s[2:], 16)
	if !ok {
		t.Fatalf("%q is not a hex quantity", s)
	}
	return n
}

func decU64(t testing.TB, v any) uint64 {
	t.Helper()
	n := decBig(t, v)
	if n == nil || !n.IsUint64() {
		t.Fatalf("%v is not a uint64", v)
	}
	return n.Uint64()
}

func decI64p(t testing.TB, v any) *int64 {
	t.Helper()
	if n := decBig(t, v); n != nil {
		x := n.Int64()
		return &x
	}
	return nil
}

func decI16p(t testing.TB, v any) *int16 {
	t.Helper()
	if n := decBig(t, v); n != nil {
		x := int16(n.Int64())
		return &x
	}
	return nil
}

func unixTime(t testing.TB, v any) time.Time {
	t.Helper()
	return time.Unix(int64(decU64(t, v)), 0).UTC()
}

func hexList(t testing.TB, v any) [][]byte {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not a list", v)
	}
	if len(list) == 0 {
		return nil
	}
	out := make([][]byte, len(list))
	for i, x := range list {
		out[i] = hexOrNil(t, x)
	}
	return out
}

func i32p(v int32) *int32 { return &v }
func i64p(v int64) *int64 { return &v }
func i16p(v int16) *int16 { return &v }

// readCSV returns the rows of a CSV file as maps from column name to text.
func readCSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(readFile(t, path))).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, col := range recs[0] {
			m[col] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// Comparison.

var (
	bigIntType = reflect.TypeFor[*big.Int]()
	timeType   = reflect.TypeFor[time.Time]()
	bytesT     = reflect.TypeFor[[]byte]()
)

// diff lists every difference between got and want, field by field, with the field's path. nil and empty
// byte slices differ (NULL is not empty), as do nil and zero pointers.
func diff(path string, got, want reflect.Value) []string {
	if got.Type() != want.Type() {
		return []string{fmt.Sprintf("%s: type %s vs %s", path, got.Type(), want.Type())}
	}
	switch {
	case got.Type() == bigIntType:
		g, w := got.Interface().(*big.Int), want.Interface().(*big.Int)
		if (g == nil) != (w == nil) || g != nil && g.Cmp(w) != 0 {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, g, w)}
		}
		return nil
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) || g.Location() != w.Location() {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, g, w)}
		}
		return nil
	case got.Type() == bytesT:
		g, w := got.Bytes(), want.Bytes()
		if (g == nil) != (w == nil) || !bytes.Equal(g, w) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, showBytes(g), showBytes(w))}
		}
		return nil
	}
	switch got.Kind() {
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: got %s, want %s", path, showPtr(got), showPtr(want))}
			}
			return nil
		}
		return diff(path, got.Elem(), want.Elem())
	case reflect.Struct:
		var out []string
		for i := range got.NumField() {
			out = append(out, diff(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))...)
		}
		return out
	case reflect.Slice:
		if got.IsNil() != want.IsNil() && (got.Len() > 0 || want.Len() > 0 || got.Type().Elem() == bytesT) {
			return []string{fmt.Sprintf("%s: got nil=%v len %d, want nil=%v len %d", path, got.IsNil(), got.Len(),
				want.IsNil(), want.Len())}
		}
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: got %d elements, want %d", path, got.Len(), want.Len())}
		}
		var out []string
		for i := range got.Len() {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))...)
		}
		return out
	case reflect.Map:
		if (got.Len() > 0 || want.Len() > 0) && !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
	if !got.Equal(want) {
		return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
	}
	return nil
}

func showBytes(b []byte) string {
	if b == nil {
		return "NULL"
	}
	return "0x" + hex.EncodeToString(b)
}

func showPtr(v reflect.Value) string {
	if v.IsNil() {
		return "NULL"
	}
	return fmt.Sprint(v.Elem())
}

// expectSame fails the test with every difference between got and want.
func expectSame[T any](t testing.TB, name string, got, want T) {
	t.Helper()
	d := diff(name, reflect.ValueOf(got), reflect.ValueOf(want))
	for i, s := range d {
		if i == 20 {
			t.Errorf("... and %d more differences", len(d)-20)
			break
		}
		t.Error(s)
	}
}

// decodeOK decodes a message that must decode.
func decodeOK(t testing.TB, f Format, key, value []byte) chain.Rows {
	t.Helper()
	rows, fail := Decode(f, key, value)
	if fail != nil {
		t.Fatalf("Decode: %s: %v", fail.Reason, fail.Err)
	}
	return rows
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
