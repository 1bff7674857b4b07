package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chainsink/chainsink/store/chain"
)

// Copy writes the rows of table t that sets hold with COPY … FROM STDIN (FORMAT binary) and returns how many
// it wrote. It streams them to the connection as pgx's CopyFrom does, with the same bytes, but encodes each
// column by a plan made once per column instead of looking one up in the type map for every value: the
// values of the common column types (bytea, integers, timestamptz, numeric, text) are written directly, the
// rest through the pgx plan of their Go type, kept while the type repeats. With pgx's own CopyFrom, planning
// and boxing took a fifth of chainsink's CPU. A db that is not a transaction or a connection (a pool), or
// whose Conn is nil (a test's wrapper that holds its CopyFrom), goes through pgx's CopyFrom.
func Copy(ctx context.Context, db DB, t *chain.Table, sets []*chain.Rows) (int64, error) {
	var conn *pgx.Conn
	if c, ok := db.(interface{ Conn() *pgx.Conn }); ok {
		conn = c.Conn()
	}
	if conn == nil {
		return db.CopyFrom(ctx, pgx.Identifier{t.Name}, t.ColumnNames(), CopySource(t, sets))
	}
	s, err := newCopyStream(conn.TypeMap(), t, sets)
	if err != nil {
		return 0, err
	}
	tag, err := conn.PgConn().CopyFrom(ctx, s, s.sql)
	if err == nil && s.err == nil {
		// Only now: when pgconn's CopyFrom fails it may return before its goroutine stops reading s.
		s.release()
	}
	if s.err != nil { // the stream's failure, which Postgres only heard of as a COPY failure
		return 0, s.err
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// copyStream is the COPY data of one table's rows, encoded as Postgres reads them from it.
type copyStream struct {
	m    *pgtype.Map
	t    *chain.Table
	sql  string
	cols []columnEncoder
	rows rowSource
	buf  []byte
	off  int // of buf, sent
	// pooled is the copyBufs entry buf came from.
	pooled *[]byte
	done   bool
	err    error
}

// columnEncoder encodes one column's values. kind picks a direct encoding for the values of its column type;
// anything else goes through pgx's plan for the value's Go type, kept in typ and plan.
type columnEncoder struct {
	oid  uint32
	kind columnKind
	typ  reflect.Type
	plan pgtype.EncodePlan
}

type columnKind uint8

const (
	kindOther columnKind = iota
	kindBytea
	kindInt8
	kindInt4
	kindInt2
	kindTimestamptz
	kindNumeric
	kindText
)

// pgTypeNames are pgx's names of the column types that chainsink's DDL spells otherwise.
var pgTypeNames = map[string]string{"bigint": "int8", "integer": "int4", "smallint": "int2", "boolean": "bool",
	"timestamp with time zone": "timestamptz", "character varying": "varchar", "double precision": "float8"}

func newCopyStream(m *pgtype.Map, t *chain.Table, sets []*chain.Rows) (*copyStream, error) {
	s := &copyStream{m: m, t: t, rows: rowSource{t: t, sets: sets, ri: -1, vals: make([]any, len(t.Columns))},
		cols: make([]columnEncoder, len(t.Columns))}
	var q strings.Builder
	q.WriteString("COPY " + pgx.Identifier{t.Name}.Sanitize() + " (")
	for i, c := range t.Columns {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(pgx.Identifier{c.Name}.Sanitize())
		typ, ok := m.TypeForName(pgTypeName(c.Type))
		if !ok {
			return nil, fmt.Errorf("column %s: type %s is not known to pgx", c.Name, c.Type)
		}
		e := columnEncoder{oid: typ.OID}
		switch typ.OID {
		case pgtype.ByteaOID:
			e.kind = kindBytea
		case pgtype.Int8OID:
			e.kind = kindInt8
		case pgtype.Int4OID:
			e.kind = kindInt4
		case pgtype.Int2OID:
			e.kind = kindInt2
		case pgtype.TimestamptzOID:
			e.kind = kindTimestamptz
		case pgtype.NumericOID:
			e.kind = kindNumeric
		case pgtype.TextOID:
			e.kind = kindText
		}
		s.cols[i] = e
	}
	q.WriteString(") FROM STDIN (FORMAT binary)")
	s.sql = q.String()
	s.pooled = copyBufs.Get().(*[]byte)
	s.buf = append((*s.pooled)[:0], "PGCOPY\n\377\r\n\000"...)
	s.buf = binary.BigEndian.AppendUint32(s.buf, 0) // flags
	s.buf = binary.BigEndian.AppendUint32(s.buf, 0) // header extension
	return s, nil
}

// copyBufs hold the streams' buffers between COPYs: a batch runs one COPY per table that has rows (dozens
// with typed tables), and a fresh buffer for each was an eighth of what the typed scenario allocated.
// They start above the 64 KiB that pgconn reads at a time, so that filling a read does not grow them.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 160<<10); return &b }}

// release gives the stream's buffer back to copyBufs, unless a huge row made it huge.
func (s *copyStream) release() {
	if cap(s.buf) <= 4<<20 {
		*s.pooled = s.buf[:0]
		copyBufs.Put(s.pooled)
	}
	s.buf, s.pooled = nil, nil
}

// pgTypeName is the name pgx registers a column type under: "numeric(78,0)" is numeric, "integer[]" _int4.
func pgTypeName(sqlType string) string {
	typ := strings.ToLower(strings.TrimSpace(sqlType))
	array := strings.HasSuffix(typ, "[]")
	typ = strings.TrimSuffix(typ, "[]")
	if i := strings.IndexByte(typ, '('); i >= 0 {
		typ = strings.TrimSpace(typ[:i])
	}
	if n, ok := pgTypeNames[typ]; ok {
		typ = n
	}
	if array {
		return "_" + typ
	}
	return typ
}

// Read fills p with the next rows, encoded; io.EOF after the trailer. It is called by pgconn's CopyFrom.
func (s *copyStream) Read(p []byte) (int, error) {
	for len(s.buf)-s.off < len(p) && !s.done {
		if s.off > 0 { // keep what is unsent at the front, so that buf does not grow
			s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
			s.off = 0
		}
		if !s.rows.Next() {
			s.buf = binary.BigEndian.AppendUint16(s.buf, 0xffff) // trailer
			s.done = true
			break
		}
		vals, _ := s.rows.Values()
		var err error
		if s.buf, err = s.appendRow(s.buf, vals); err != nil {
			s.err = err // the callers say which table
			return 0, s.err
		}
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	if n == 0 && s.done {
		return 0, io.EOF
	}
	return n, nil
}

func (s *copyStream) appendRow(buf []byte, vals []any) ([]byte, error) {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(vals)))
	for i, v := range vals {
		var err error
		if buf, err = s.cols[i].append(s.m, buf, v); err != nil {
			return nil, fmt.Errorf("column %s: %w", s.t.Columns[i].Name, err)
		}
	}
	return buf, nil
}

const microsecFromUnixEpochToY2K = 946_684_800 * 1_000_000

// append appends v's field: its length, then its binary value, or -1 for NULL.
func (e *columnEncoder) append(m *pgtype.Map, buf []byte, v any) ([]byte, error) {
	switch e.kind {
	case kindBytea:
		b, ok := v.([]byte)
		if p, isPtr := v.(*[]byte); isPtr && p != nil {
			b, ok = *p, true
		}
		if ok {
			if b == nil {
				return appendNull(buf), nil
			}
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
			return append(buf, b...), nil
		}
	case kindInt8:
		switch x := v.(type) {
		case *uint64:
			if x != nil && *x <= math.MaxInt64 {
				return appendInt64(buf, int64(*x)), nil
			}
		case uint64:
			if x <= math.MaxInt64 {
				return appendInt64(buf, int64(x)), nil
			}
		case int64:
			return appendInt64(buf, x), nil
		case *int64:
			if x == nil {
				return appendNull(buf), nil
			}
			return appendInt64(buf, *x), nil
		}
	case kindInt4:
		switch x := v.(type) {
		case int32:
			return appendInt32(buf, x), nil
		case *int32:
			if x == nil {
				return appendNull(buf), nil
			}
			return appendInt32(buf, *x), nil
		}
	case kindInt2:
		switch x := v.(type) {
		case int16:
			return appendInt16(buf, x), nil
		case *int16:
			if x == nil {
				return appendNull(buf), nil
			}
			return appendInt16(buf, *x), nil
		}
	case kindTimestamptz:
		t, ok := v.(time.Time)
		if p, isPtr := v.(*time.Time); isPtr && p != nil {
			t, ok = *p, true
		}
		if ok {
			us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - microsecFromUnixEpochToY2K
			return appendInt64(buf, us), nil
		}
	case kindNumeric:
		switch x := v.(type) {
		case bigNumeric:
			v = x.Int
		case *big.Int:
		default:
			return e.plannedOrNull(m, buf, v)
		}
		x := v.(*big.Int)
		if x == nil {
			return appendNull(buf), nil
		}
		at := len(buf)
		buf = appendNumeric(binary.BigEndian.AppendUint32(buf, 0), x)
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
		return buf, nil
	case kindText:
		x, ok := v.(string)
		if p, isPtr := v.(*string); isPtr && p != nil {
			x, ok = *p, true
		}
		if ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		}
	}
	return e.plannedOrNull(m, buf, v)
}

func (e *columnEncoder) plannedOrNull(m *pgtype.Map, buf []byte, v any) ([]byte, error) {
	if v == nil {
		return appendNull(buf), nil
	}
	return e.planned(m, buf, v)
}

// planned appends v through pgx's plan for its Go type, as pgx's CopyFrom does (a string that the column's
// type does not take is parsed as the type's text form first).
func (e *columnEncoder) planned(m *pgtype.Map, buf []byte, v any) ([]byte, error) {
	if typ := reflect.TypeOf(v); typ != e.typ || e.plan == nil {
		e.typ, e.plan = typ, m.PlanEncode(e.oid, pgtype.BinaryFormatCode, v)
	}
	at := len(buf)
	buf = appendNull(buf) // the length, once known, replaces it
	var out []byte
	var err error
	if e.plan == nil {
		err = errors.New("no binary encoding")
	} else {
		out, err = e.plan.Encode(v, buf)
	}
	if err != nil {
		if out, err = scanStringThenEncode(m, buf, e.oid, v); err != nil {
			return nil, fmt.Errorf("encode %T: %w", v, err)
		}
	}
	if out == nil { // NULL
		return buf, nil
	}
	binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	return out, nil
}

// scanStringThenEncode is pgx's CopyFrom fallback for a value the column's codec cannot encode: its text
// form (or itself, a string) parsed by the column's type and encoded from that.
func scanStringThenEncode(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		text, err := m.Encode(oid, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, errors.New("not a string and cannot be encoded as text")
		}
		s = string(text)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
			var arr pgtype.Array[any]
			if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr); err == nil {
				return m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	var parsed any
	if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &parsed); err != nil {
		return nil, err
	}
	return m.Encode(oid, pgtype.BinaryFormatCode, parsed, buf)
}

// appendNull appends a NULL field: length -1, no value.
func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, math.MaxUint32) }

func appendInt64(buf []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(v))
}

func appendInt32(buf []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), uint32(v))
}

func appendInt16(buf []byte, v int16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(buf, 2), uint16(v))
}
