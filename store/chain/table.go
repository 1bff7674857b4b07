package chain

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Scope says which natural key of a message owns a table's rows, and so what replacing it deletes.
type Scope uint8

const (
	// ScopeBlock rows belong to a block as a whole (blocks, withdrawals): replaced with their block.
	ScopeBlock Scope = iota
	// ScopeTransaction rows are keyed by (block number, transaction index): transactions, calls; and, with the
	// trace address third, call frames (traces, contracts, typed call tables; see Table.FrameColumn).
	ScopeTransaction
	// ScopeLog rows are keyed by (block number, log index): logs, events, token transfers.
	ScopeLog
)

func (s Scope) String() string {
	switch s {
	case ScopeBlock:
		return "block"
	case ScopeTransaction:
		return "transaction"
	case ScopeLog:
		return "log"
	}
	return fmt.Sprintf("Scope(%d)", s)
}

// Column is a column of a table.
type Column struct {
	Name string
	// Type is the column's SQL type as the DDL spells it, e.g. "bigint", "bytea", "numeric(78,0)".
	Type string
}

// Table describes one table: enough for the store to replace its rows by natural key and to COPY them.
//
// Values puts Go values in dst that pgx encodes for the column types, with one exception that keeps this
// package free of the driver: numeric columns take a *big.Int (nil is NULL), which the store converts. Byte
// slices are bytea (nil is NULL), time.Time is timestamptz, pointers to integers are nullable integers, and a
// []byte in a jsonb column is a JSON document. A value may also be given by a pointer to it (nil is NULL), as
// pgx takes it: the core tables point into their row structs, since an interface holding a pointer needs no
// allocation where one holding a slice, a time or most integers does, for every value of every row.
type Table struct {
	Name    string
	Columns []Column
	// Key is the primary key. Key[0] is the block number column; for ScopeTransaction and ScopeLog tables
	// Key[1] is the index within the block that a single-item replacement matches.
	Key   []string
	Scope Scope
	// TraceOwned marks the tables whose rows are all call frames (see FrameColumn): traces and the contracts
	// created by them. In ReplaceRows their rows belong to trace items (ethereum-etl's), which travel apart
	// from their transaction and may be stored before or after it: a frame's key replaces them, a
	// transaction's does not. In the other frame-keyed tables (the typed call tables) the transaction's own
	// frame, trace address {}, belongs to the transaction, and the internal ones to their trace items.
	TraceOwned bool
	// Len is the number of the table's rows in r.
	Len func(r *Rows) int
	// Values writes the values of the table's i-th row of r into dst, which has one slot per column.
	Values func(r *Rows, i int, dst []any)

	names   []string
	numeric []int
	keyPos  [3]int // positions of Key[0], (outside ScopeBlock) Key[1] and (frame-keyed) Key[2] among the columns
	runTime bool
}

// NewTable describes a table that is only known at run time, such as a table generated from an ABI event.
// Its rows are r.Typed[t], each a []any of exactly len(columns) values in column order (see Table for the Go
// types; CheckTyped enforces the length). Its key, like every table's, starts with the block number column
// (bigint) and, outside ScopeBlock, the transaction or log index (integer), by which replacements find its
// rows. NewTable panics on a description that cannot work, as regexp.MustCompile does: tables are described
// once, at start-up, from a configuration that has already been validated.
func NewTable(name string, scope Scope, key []string, columns []Column) *Table {
	t := &Table{Name: name, Columns: columns, Key: key, Scope: scope, runTime: true}
	t.Len = func(r *Rows) int { return len(r.Typed[t]) }
	t.Values = func(r *Rows, i int, dst []any) { copy(dst, r.Typed[t][i]) }
	return t.init()
}

// init checks t and precomputes what the store asks of it on every batch.
func (t *Table) init() *Table {
	if t.Name == "" || len(t.Columns) == 0 || len(t.Key) == 0 {
		panic(fmt.Sprintf("chain: table %q needs a name, columns and a key", t.Name))
	}
	if t.Scope != ScopeBlock && len(t.Key) < 2 {
		panic(fmt.Sprintf("chain: table %s of %s scope needs a key of block number and index", t.Name, t.Scope))
	}
	if t.TraceOwned && (t.Scope != ScopeTransaction || len(t.Key) != 3) {
		panic(fmt.Sprintf("chain: trace-owned table %s needs a key of block number, transaction index and trace address", t.Name))
	}
	pos := map[string]int{}
	for i, c := range t.Columns {
		if _, dup := pos[c.Name]; dup {
			panic(fmt.Sprintf("chain: table %s has column %s twice", t.Name, c.Name))
		}
		pos[c.Name] = i
		t.names = append(t.names, c.Name)
		if typ := strings.ToLower(c.Type); strings.HasPrefix(typ, "numeric") || strings.HasPrefix(typ, "decimal") {
			t.numeric = append(t.numeric, i)
		}
	}
	for _, k := range t.Key {
		if _, ok := pos[k]; !ok {
			panic(fmt.Sprintf("chain: table %s: key column %s is not a column", t.Name, k))
		}
	}
	// Replacements match Key[0] with bigint[] and Key[1] with integer[] parameters.
	t.keyPos[0] = pos[t.Key[0]]
	if typ := t.Columns[t.keyPos[0]].Type; typ != "bigint" {
		panic(fmt.Sprintf("chain: table %s: block number column %s is %s, not bigint", t.Name, t.Key[0], typ))
	}
	if t.Scope != ScopeBlock {
		t.keyPos[1] = pos[t.Key[1]]
		if typ := t.Columns[t.keyPos[1]].Type; typ != "integer" {
			panic(fmt.Sprintf("chain: table %s: index column %s is %s, not integer", t.Name, t.Key[1], typ))
		}
	}
	if t.FrameColumn() != "" {
		t.keyPos[2] = pos[t.Key[2]]
		if typ := t.Columns[t.keyPos[2]].Type; typ != "integer[]" {
			panic(fmt.Sprintf("chain: table %s: trace address column %s is %s, not integer[]", t.Name, t.Key[2], typ))
		}
	}
	return t
}

// ColumnNames are the names of t's columns, in order. The slice is shared: do not modify it.
func (t *Table) ColumnNames() []string { return t.names }

// NumericColumns are the positions of the columns whose values are *big.Int.
func (t *Table) NumericColumns() []int { return t.numeric }

// BlockColumn is the column that holds the block number.
func (t *Table) BlockColumn() string { return t.Key[0] }

// IndexColumn is the column a single-item replacement matches besides the block number: the transaction
// index or log index. It is empty for ScopeBlock tables.
func (t *Table) IndexColumn() string {
	if t.Scope == ScopeBlock {
		return ""
	}
	return t.Key[1]
}

// FrameColumn is the trace address column of a frame-keyed table, one whose rows are call frames keyed by
// (block number, transaction index, trace address), Key[2] an integer[]: traces, contracts and the typed call
// tables. It is empty for every other table.
func (t *Table) FrameColumn() string {
	if t.Scope != ScopeTransaction || len(t.Key) < 3 {
		return ""
	}
	return t.Key[2]
}

// Schema is an ordered list of tables. The order is the order in which a batch writes them.
type Schema []*Table

// With returns s followed by more, refusing a table name that s already has.
func (s Schema) With(more ...*Table) (Schema, error) {
	out := append(Schema(nil), s...)
	for _, t := range more {
		if out.Table(t.Name) != nil {
			return nil, fmt.Errorf("table %s is described twice", t.Name)
		}
		out = append(out, t)
	}
	return out, nil
}

// Table returns the table named name, or nil.
func (s Schema) Table(name string) *Table {
	for _, t := range s {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Names are the tables' names, in order.
func (s Schema) Names() []string {
	out := make([]string, len(s))
	for i, t := range s {
		out[i] = t.Name
	}
	return out
}

// Mode says how a message's rows replace rows already stored under the same natural keys.
type Mode uint8

const (
	// ReplaceBlocks is for messages that carry whole blocks (the bundle format): every row of each block
	// number in the message is replaced, in every table. A newer message for a height wins, which is how a
	// reorg lands.
	ReplaceBlocks Mode = iota
	// ReplaceRows is for messages that carry single items (the ethereum-etl format): a block replaces the
	// block and its withdrawals, a transaction its row and its call, a log its row, its event and its token
	// transfers, a trace its frame and the contract that frame created. A block also removes the
	// transactions, logs and traces of its height that carry another block hash (a reorg's orphans), with the
	// rows of their scope; nothing else of the block is touched.
	ReplaceRows
)

func (m Mode) String() string {
	switch m {
	case ReplaceBlocks:
		return "replace-blocks"
	case ReplaceRows:
		return "replace-rows"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Key is a natural key that a message holds: a block, or one item of a block.
type Key struct {
	Scope Scope
	Block uint64
	// Index is the transaction or log index; 0 for ScopeBlock.
	Index int32
	// Frame, when not empty, makes the key a call frame's: the trace address, as Postgres spells an
	// integer[] ("{}", "{0,2}"). A core frame key (an ethereum-etl trace item's) replaces that frame's rows
	// in the trace-owned tables, and an internal frame's in the other frame-keyed tables too; a run-time
	// table's frame key replaces its own row.
	Frame string
	// Table, when not nil, limits the key to one run-time table: a row of it replaces only its own stored
	// row. A nil Table is a core key, which replaces the rows of every table of its scope.
	Table *Table
}

// Keys appends to dst the natural keys that r replaces when it is written in mode m: one per block, and in
// ReplaceRows also one per transaction, one per log and one per trace (a frame key). In ReplaceBlocks a
// block carries its transactions, logs and traces, so its key covers them.
func (r *Rows) Keys(dst []Key, m Mode) []Key {
	for i := range r.Blocks {
		dst = append(dst, Key{Scope: ScopeBlock, Block: r.Blocks[i].Number})
	}
	for _, n := range r.Tombstones {
		dst = append(dst, Key{Scope: ScopeBlock, Block: n})
	}
	if m != ReplaceRows {
		return dst
	}
	for i := range r.Transactions {
		t := &r.Transactions[i]
		dst = append(dst, Key{Scope: ScopeTransaction, Block: t.BlockNumber, Index: t.TransactionIndex})
	}
	for i := range r.Logs {
		l := &r.Logs[i]
		dst = append(dst, Key{Scope: ScopeLog, Block: l.BlockNumber, Index: l.LogIndex})
	}
	for i := range r.Traces {
		t := &r.Traces[i]
		dst = append(dst, Key{Scope: ScopeTransaction, Block: t.BlockNumber, Index: t.TransactionIndex,
			Frame: FrameText(t.TraceAddress)})
	}
	// A contract comes with its create frame, whose key already covers it; its own key keeps a contract
	// row exactly once even without one.
	for i := range r.Contracts {
		c := &r.Contracts[i]
		dst = append(dst, Key{Scope: ScopeTransaction, Block: c.BlockNumber, Index: c.TransactionIndex,
			Frame: FrameText(c.TraceAddress)})
	}
	// A run-time table's row is replaced by its own key as well, so that an item whose typed rows travel
	// without their log or transaction still replaces, and is deduplicated, exactly, without touching the
	// rows of other tables.
	for t, rows := range r.Typed {
		for _, row := range rows {
			if k, ok := t.keyOf(row); ok {
				dst = append(dst, k)
			}
		}
	}
	return dst
}

// FrameText spells a trace address as Postgres writes an integer[]: "{}", "{0,2}".
func FrameText(path []int32) string {
	b := make([]byte, 0, 2+4*len(path))
	b = append(b, '{')
	for i, p := range path {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(append(b, '}'))
}

// keyOf is the natural key of a run-time row; ok is false when its key values are not integers (CheckTyped
// reports those).
func (t *Table) keyOf(row []any) (Key, bool) {
	if len(row) != len(t.Columns) {
		return Key{}, false
	}
	b, ok := asInt(row[t.keyPos[0]])
	if !ok || b < 0 {
		return Key{}, false
	}
	k := Key{Scope: t.Scope, Block: uint64(b), Table: t}
	if t.Scope != ScopeBlock {
		i, ok := asInt(row[t.keyPos[1]])
		if !ok || i < math.MinInt32 || i > math.MaxInt32 {
			return Key{}, false
		}
		k.Index = int32(i)
	}
	if t.FrameColumn() != "" {
		path, ok := row[t.keyPos[2]].([]int32)
		if !ok {
			return Key{}, false
		}
		k.Frame = FrameText(path)
	}
	return k, true
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case uint32:
		return int64(x), true
	}
	return 0, false
}

// CheckTyped reports run-time rows that the store could not write correctly: rows of a table that is not in
// s, rows whose length is not the table's number of columns, and rows whose key values are not integers.
// Such rows are a decoder's bug; the store turns their message into a dead letter instead of writing it.
func (s Schema) CheckTyped(r *Rows) error {
	for t, rows := range r.Typed {
		if s.Table(t.Name) != t {
			return fmt.Errorf("rows of table %s, which is not among the tables written", t.Name)
		}
		for i, row := range rows {
			if len(row) != len(t.Columns) {
				return fmt.Errorf("row %d of table %s has %d values for %d columns", i, t.Name, len(row), len(t.Columns))
			}
			if _, ok := t.keyOf(row); !ok {
				return fmt.Errorf("row %d of table %s: key %v is not a block number and index (and trace address)", i, t.Name, row[t.keyPos[0]])
			}
		}
	}
	return nil
}

// columns parses "name type" pairs; the type is the rest after the first space.
func columns(defs ...string) []Column {
	out := make([]Column, len(defs))
	for i, d := range defs {
		name, typ, ok := strings.Cut(d, " ")
		if !ok {
			panic("chain: column definition without a type: " + d)
		}
		out[i] = Column{Name: name, Type: typ}
	}
	return out
}

func topic(ts [][]byte, i int) any {
	if i < len(ts) {
		return &ts[i]
	}
	return nil
}
