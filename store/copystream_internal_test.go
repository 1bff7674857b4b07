package store

import (
	"encoding/binary"
	"io"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

// pgxCopyData is the COPY data that pgx's CopyFrom sends for the rows of t: every value encoded by the type
// map of the connection (numeric through numericCodec, as a Store registers it), field by field, the way
// pgx's encodeCopyValue does, with its fallback for values that only parse from text.
//
// With deref, every value given by a pointer (the core tables point into their rows) is encoded as the value
// it points to, or nil, instead.
func pgxCopyData(t *testing.T, m *pgtype.Map, tbl *chain.Table, sets []*chain.Rows, deref bool) []byte {
	t.Helper()
	out := append([]byte("PGCOPY\n\377\r\n\000"), 0, 0, 0, 0, 0, 0, 0, 0)
	src := CopySource(tbl, sets)
	for src.Next() {
		vals, _ := src.Values()
		out = binary.BigEndian.AppendUint16(out, uint16(len(vals)))
		for i, v := range vals {
			if rv := reflect.ValueOf(v); deref && rv.Kind() == reflect.Pointer {
				if v = nil; !rv.IsNil() {
					v = rv.Elem().Interface()
				}
			}
			typ, ok := m.TypeForName(pgTypeName(tbl.Columns[i].Type))
			if !ok {
				t.Fatalf("%s.%s: no type %s", tbl.Name, tbl.Columns[i].Name, tbl.Columns[i].Type)
			}
			at := len(out)
			out = binary.BigEndian.AppendUint32(out, math.MaxUint32)
			enc, err := m.Encode(typ.OID, pgtype.BinaryFormatCode, v, out)
			if err != nil { // pgx's CopyFrom then parses the value's text form (its tryScanStringCopyValueThenEncode)
				enc, err = scanStringThenEncode(m, out, typ.OID, v)
			}
			if err != nil {
				t.Fatalf("%s.%s: pgx cannot encode %#v: %v", tbl.Name, tbl.Columns[i].Name, v, err)
			}
			if enc != nil {
				out = enc
				binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
			}
		}
	}
	return binary.BigEndian.AppendUint16(out, 0xffff)
}

// streamed reads a copyStream whole, in reads of size n, as pgconn does with 64 KiB.
func streamed(t *testing.T, s *copyStream, n int) []byte {
	t.Helper()
	var out []byte
	p := make([]byte, n)
	for {
		k, err := s.Read(p)
		out = append(out, p[:k]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestCopyStreamMatchesPgx: Copy sends Postgres exactly the bytes that pgx's CopyFrom sends, for every core
// table's rows of mainnet block 17173049 decoded with the built-in ABIs, for call frames with and without
// their optional values, and for a run-time table with a value of every Go type its columns take (including
// those that only pgx's plans encode: a string in a numeric column, JSON, arrays, booleans).
func TestCopyStreamMatchesPgx(t *testing.T) {
	root, err := fixtures.Root()
	if err != nil {
		t.Fatal(err)
	}
	key, value, err := fixtures.Bundle17173049(root)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := abi.Default()
	if err != nil {
		t.Fatal(err)
	}
	rows, fail := decode.New(reg, nil).Format(format.Bundle).Decode(key, value)
	if fail != nil {
		t.Fatal(fail.Err)
	}
	gas, size := int64(21000), int32(77)
	yes := true
	ts := time.Unix(1682899199, 0).UTC()
	rows.Traces = []chain.Trace{
		{BlockNumber: 17173049, TraceAddress: []int32{}, TransactionHash: make([]byte, 32), BlockTimestamp: ts,
			Type: "call", TraceType: "call", FromAddress: make([]byte, 20), ToAddress: make([]byte, 20),
			Value: big.NewInt(5), Gas: &gas, GasUsed: &gas, Input: []byte{1, 2}, Output: []byte{}, Status: 1, Subtraces: 1},
		{BlockNumber: 17173049, TraceAddress: []int32{0, 3}, TransactionHash: make([]byte, 32), BlockTimestamp: ts,
			Type: "create2", TraceType: "create", FromAddress: make([]byte, 20), Error: "out of gas"},
	}
	rows.Contracts = []chain.Contract{{BlockNumber: 17173049, TraceAddress: []int32{0}, Address: make([]byte, 20),
		TransactionHash: make([]byte, 32), BlockTimestamp: ts, Deployer: make([]byte, 20), CodeHash: make([]byte, 32),
		CodeSize: &size, IsERC20: &yes, IsERC721: new(bool)}}
	typedTable := chain.NewTable("test_evt_all", chain.ScopeLog, []string{"block_number", "log_index"}, []chain.Column{
		{Name: "block_number", Type: "bigint"}, {Name: "log_index", Type: "integer"},
		{Name: "block_timestamp", Type: "timestamptz"}, {Name: "amount", Type: "numeric(78,0)"},
		{Name: "small", Type: "bigint"}, {Name: "flag", Type: "boolean"}, {Name: "who", Type: "bytea"},
		{Name: "label", Type: "text"}, {Name: "args", Type: "jsonb"}, {Name: "trace_address", Type: "integer[]"}})
	huge, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	rows.AddTyped(typedTable,
		[]any{uint64(17173049), int32(1), ts, huge, int64(-3), true, []byte{0xab}, "swap", []byte(`{"a":[1,"x"]}`), []int32{}},
		[]any{int64(17173049), int32(2), ts, "12345678901234567890123", int64(0), false, []byte{}, "", []byte(`[]`), []int32{0, 2}},
		[]any{uint64(17173049), int32(3), ts, (*big.Int)(nil), nil, nil, []byte(nil), nil, nil, nil})

	m := pgtype.NewMap()
	m.RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
	sets := []*chain.Rows{&rows, &rows} // two messages, so that the stream crosses from one set to the next
	schema, err := chain.CoreTables.With(typedTable)
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range schema {
		if tbl.Len(&rows) == 0 {
			if tbl.Name != "tokens" && tbl.Name != "withdrawals" {
				t.Errorf("%s: no rows to compare", tbl.Name)
			}
			continue
		}
		want := pgxCopyData(t, m, tbl, sets, false)
		if plain := pgxCopyData(t, m, tbl, sets, true); string(plain) != string(want) {
			t.Fatalf("%s: the values pgx encodes through pointers differ from the values; first difference at %d", tbl.Name, firstDiff(plain, want))
		}
		for _, n := range []int{65536, 7} { // pgconn's reads, and reads that end inside every value
			s, err := newCopyStream(m, tbl, sets)
			if err != nil {
				t.Fatal(err)
			}
			if got := streamed(t, s, n); string(got) != string(want) {
				t.Fatalf("%s (reads of %d): %d bytes, pgx %d; first difference at %d", tbl.Name, n, len(got), len(want), firstDiff(got, want))
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
