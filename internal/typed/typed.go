package typed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/config"
	"github.com/chainsink/chainsink/store/chain"
)

// Kind is what a typed table is generated from.
type Kind string

const (
	KindEvent Kind = "event"
	KindCall  Kind = "call"
)

// Tables are the typed tables of a configuration, with everything needed to create, describe and fill them.
// Build them with Compile; they are immutable and safe for concurrent use.
type Tables struct {
	// Sets are the configuration's contract sets, compiled, in file order.
	Sets []*Set
	// All are every generated table, set by set, events before calls.
	All []*Table
	// UntypedEvents and UntypedCalls are the configuration's `events_table: untyped` and `calls_table:
	// untyped`: the events and calls these tables hold are kept out of the generic events and calls tables
	// (store.Writer.WithUntyped).
	UntypedEvents, UntypedCalls bool

	byTopic    map[topicKey][]*Table
	bySelector map[[4]byte][]*Table
	factories  map[topicKey][]*Set
	hasFactory bool
}

// Set is one compiled contract set.
type Set struct {
	Name string
	// Versions are the ABIs the set decodes with, each from its block on (one, from 0, unless the config
	// lists an upgraded proxy's implementations); Contract is the first.
	Versions []Version
	Contract *abi.Contract
	// Addresses limits the set; nil means any address (or, with Factory, the factory's children).
	Addresses  map[common.Address]bool
	Factory    *Factory
	StartBlock uint64
}

// Version is an ABI in force from a block on.
type Version struct {
	From     uint64
	Contract *abi.Contract
}

// Factory is a set's source of addresses: one address parameter of a factory contract's creation event.
type Factory struct {
	Address common.Address
	Event   *abi.EventSpec
	// Param is the position of the child's address among Event's parameters.
	Param int
}

// Table is one generated table.
type Table struct {
	*chain.Table
	Set  *Set
	Kind Kind
	// Contract is the ABI the table was generated from: the first of the set's versions that has its entry.
	Contract *abi.Contract
	// Signature is the canonical signature of the event or function it holds.
	Signature string
	event     *abi.EventSpec
	function  *abi.FunctionSpec
	// params[i] is how the i-th parameter's value becomes its column's value.
	params []columnKind
	// ranges are the blocks in which an ABI version that has the table's entry is in force.
	ranges []blockRange
	// Comments are the COMMENT ON texts: the table's, then one per column.
	comment        string
	columnComments []string
	// legacyComment is a call table's comment as chainsink wrote it before internal calls (see callFrame).
	legacyComment string
}

type topicKey struct {
	topic0 common.Hash
	topics int
}

type columnKind uint8

const (
	colNumeric columnKind = iota // *big.Int as it is
	colBigint                    // *big.Int → int64
	colAsIs                      // []byte, bool, string, json.RawMessage
)

// Position columns come first in every table, then the contract, then one column per ABI parameter.
var (
	eventPosition = []chain.Column{{Name: "block_number", Type: "bigint"}, {Name: "block_timestamp", Type: "timestamptz"},
		{Name: "transaction_hash", Type: "bytea"}, {Name: "transaction_index", Type: "integer"},
		{Name: "log_index", Type: "integer"}, {Name: "contract_address", Type: "bytea"}}
	callPosition = []chain.Column{{Name: "block_number", Type: "bigint"}, {Name: "block_timestamp", Type: "timestamptz"},
		{Name: "transaction_hash", Type: "bytea"}, {Name: "transaction_index", Type: "integer"},
		{Name: "status", Type: "smallint"}, {Name: "from_address", Type: "bytea"}, {Name: "contract_address", Type: "bytea"}}
	positionComments = map[string]string{
		"block_number":      "block height",
		"block_timestamp":   "block time",
		"transaction_hash":  "hash of the transaction",
		"transaction_index": "position of the transaction in its block",
		"log_index":         "position of the log in its block",
		"status":            "1 success, 0 reverted: the receipt status of the transaction (NULL before Byzantium), or for an internal call its frame's status (0 when it or a frame above it failed)",
		"from_address":      "sender of the transaction, or the caller of an internal call",
		"contract_address":  "the contract that emitted the log or was called",
		"trace_address":     "the call's frame in traces: {} for the transaction itself, else an internal call ({0} the transaction's first subcall), from the input's traces",
	}
	// callFrame closes every call table: the call's trace address, the third column of its key. It comes
	// after the parameters so that tables created before it (top-level calls only) get it by ALTER TABLE ADD
	// COLUMN and have the same layout as new ones.
	callFrame = chain.Column{Name: "trace_address", Type: "integer[]"}
	// frameDefault is the trace address of a row written without one: a transaction's own call. It is what
	// an instance of a release before internal calls writes during a rolling upgrade (its COPY names no
	// trace_address), and what makes adding the column to a filled table instant.
	frameDefault = " DEFAULT '{}'"
	// legacyComments are what tables created before callFrame say, which `tables apply` recognizes.
	legacyComments = map[string]string{
		"status":       "receipt status of the transaction: 1 success, 0 reverted (NULL before Byzantium)",
		"from_address": "sender of the transaction",
	}
)

// CompileYAML is Compile of a configuration file's contents, name being the file in errors; a nil reg is
// the built-in ABIs (abi.Default).
func CompileYAML(name string, yaml []byte, reg *abi.Registry) (*Tables, error) {
	f, err := config.Parse(name, yaml)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		if reg, err = abi.Default(); err != nil {
			return nil, err
		}
	}
	return Compile(f, reg)
}

// Compile resolves f's sets against the ABIs of reg and generates their tables. Every mistake is reported
// with the file and line of the key it is about (a *config.Error), all of them at once.
func Compile(f *config.File, reg *abi.Registry) (*Tables, error) {
	ts := &Tables{byTopic: map[topicKey][]*Table{}, bySelector: map[[4]byte][]*Table{}, factories: map[topicKey][]*Set{},
		UntypedEvents: f.UntypedEvents, UntypedCalls: f.UntypedCalls}
	var errs []error
	names := map[string]string{} // table name → set that generated it
	for _, cs := range f.Sets {
		s, tables, err := compileSet(cs, reg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range tables {
			if other, dup := names[t.Name]; dup {
				errs = append(errs, config.Errorf(cs.At("name"), "table %s of set %s is also generated by set %s", t.Name, s.Name, other))
				continue
			}
			names[t.Name] = s.Name
			ts.All = append(ts.All, t)
			switch t.Kind {
			case KindEvent:
				k := topicKey{t.event.Topic0, t.event.Topics}
				ts.byTopic[k] = append(ts.byTopic[k], t)
			case KindCall:
				ts.bySelector[t.function.Selector] = append(ts.bySelector[t.function.Selector], t)
			}
		}
		if s.Factory != nil {
			k := topicKey{s.Factory.Event.Topic0, s.Factory.Event.Topics}
			ts.factories[k] = append(ts.factories[k], s)
			ts.hasFactory = true
		}
		ts.Sets = append(ts.Sets, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ts, nil
}

func compileSet(cs *config.Set, reg *abi.Registry) (*Set, []*Table, error) {
	s := &Set{Name: cs.Name, StartBlock: cs.StartBlock}
	var errs []error
	for _, v := range cs.ABIs {
		c, ok := reg.Contract(v.Name)
		if !ok {
			errs = append(errs, config.Errorf(v.Pos, "set %s: no ABI named %q (built-in: %s; or add NAME.json to abi_dir)",
				cs.Name, v.Name, strings.Join(reg.Names(), ", ")))
			continue
		}
		s.Versions = append(s.Versions, Version{From: v.FromBlock, Contract: c})
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	s.Contract = s.Versions[0].Contract
	if len(cs.Addresses) > 0 {
		s.Addresses = make(map[common.Address]bool, len(cs.Addresses))
		for _, a := range cs.Addresses {
			s.Addresses[a] = true
		}
	}
	if cs.Factory != nil {
		f, err := compileFactory(cs, reg)
		if err != nil {
			return nil, nil, err
		}
		s.Factory = f
	}
	evs, fns := s.entries()
	abis := s.abiNames()

	var events []*eventEntry
	if cs.Events == nil {
		events = evs
	}
	for _, name := range cs.Events {
		found := 0
		for _, e := range evs {
			if e.spec.Name == name || e.spec.Signature == name {
				found++
				if !slices.Contains(events, e) {
					events = append(events, e)
				}
			}
		}
		if found == 0 {
			errs = append(errs, config.Errorf(cs.At("events"), "set %s: ABI %s has no event %q (it has: %s)", cs.Name, abis, name, entryNames(evs)))
		}
	}
	var functions []*funcEntry
	for _, name := range cs.Calls {
		found := 0
		for _, f := range fns {
			if name == "*" || f.spec.Name == name || f.spec.Signature == name {
				found++
				if !slices.Contains(functions, f) {
					functions = append(functions, f)
				}
			}
		}
		if found == 0 && name != "*" {
			errs = append(errs, config.Errorf(cs.At("calls"), "set %s: ABI %s has no function %q", cs.Name, abis, name))
		}
	}
	if len(events) == 0 && len(functions) == 0 && len(errs) == 0 {
		errs = append(errs, config.Errorf(cs.Pos, "set %s: no events and no calls: it would generate no table", cs.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var tables []*Table
	evNames := overloads(len(evs), func(i int) string { return evs[i].spec.Name })
	topic0s := overloads(len(evs), func(i int) string { return string(evs[i].spec.Topic0[:]) })
	for _, e := range events {
		suffix := ""
		if evNames[e.spec.Name] > 1 {
			suffix = "_" + hex.EncodeToString(e.spec.Topic0[:4])
		}
		if topic0s[string(e.spec.Topic0[:])] > 1 {
			// The same signature with other parameters indexed (an upgrade that changed it): the indexed mask.
			suffix += "_i" + strings.SplitN(layout(e.spec), "/", 2)[1]
		}
		t := eventTable(s, e.contract, e.spec, tableName(s.Name, "evt", e.spec.Name, suffix))
		t.ranges = e.ranges
		tables = append(tables, t)
	}
	fnNames := overloads(len(fns), func(i int) string { return fns[i].spec.Name })
	for _, f := range functions {
		suffix := ""
		if fnNames[f.spec.Name] > 1 {
			suffix = "_" + hex.EncodeToString(f.spec.Selector[:])
		}
		t := callTable(s, f.contract, f.spec, tableName(s.Name, "call", f.spec.Name, suffix))
		t.ranges = f.ranges
		tables = append(tables, t)
	}
	return s, tables, nil
}

func compileFactory(cs *config.Set, reg *abi.Registry) (*Factory, error) {
	fc, ok := reg.Contract(cs.Factory.ABI)
	if !ok {
		return nil, config.Errorf(cs.Factory.At("abi"), "set %s: factory: no ABI named %q", cs.Name, cs.Factory.ABI)
	}
	var evs []*abi.EventSpec
	for _, e := range fc.Events {
		if e.Name == cs.Factory.Event || e.Signature == cs.Factory.Event {
			evs = append(evs, e)
		}
	}
	if len(evs) != 1 {
		return nil, config.Errorf(cs.Factory.At("event"), "set %s: factory ABI %s has %d events named %q, want exactly one (give the signature)",
			cs.Name, fc.Name, len(evs), cs.Factory.Event)
	}
	param := -1
	for i, p := range evs[0].Params {
		if p.Name == cs.Factory.Parameter {
			param = i
		}
	}
	switch {
	case param < 0:
		return nil, config.Errorf(cs.Factory.At("parameter"), "set %s: factory event %s has no parameter %q", cs.Name, evs[0].Signature, cs.Factory.Parameter)
	case evs[0].Params[param].Kind != abi.KindAddress:
		return nil, config.Errorf(cs.Factory.At("parameter"), "set %s: factory parameter %s is %s, not an address", cs.Name, cs.Factory.Parameter, evs[0].Params[param].Type)
	}
	return &Factory{Address: cs.Factory.Address, Event: evs[0], Param: param}, nil
}

// blockRange is [from, to); to is 0 for no end.
type blockRange struct{ from, to uint64 }

func (r blockRange) holds(n uint64) bool { return n >= r.from && (r.to == 0 || n < r.to) }

// eventEntry and funcEntry are an event or function of a set over all its ABI versions: one per signature
// (and, for an event, indexed layout), taken from the first version that has it, with the block ranges in
// which a version that has it is in force.
type eventEntry struct {
	spec     *abi.EventSpec
	contract *abi.Contract
	ranges   []blockRange
}

type funcEntry struct {
	spec     *abi.FunctionSpec
	contract *abi.Contract
	ranges   []blockRange
}

// entries are the set's non-anonymous events (an anonymous event has no topic0 to be found by) and its
// functions, in the order of the versions and, within one, of the ABI.
func (s *Set) entries() ([]*eventEntry, []*funcEntry) {
	var evs []*eventEntry
	var fns []*funcEntry
	byEvent, byFunc := map[string]*eventEntry{}, map[string]*funcEntry{}
	for i, v := range s.Versions {
		r := blockRange{from: v.From}
		if i+1 < len(s.Versions) {
			r.to = s.Versions[i+1].From
		}
		for _, e := range v.Contract.Events {
			if e.Anonymous {
				continue
			}
			k := layout(e)
			if en, ok := byEvent[k]; ok {
				en.ranges = appendRange(en.ranges, r)
				continue
			}
			en := &eventEntry{spec: e, contract: v.Contract, ranges: []blockRange{r}}
			byEvent[k] = en
			evs = append(evs, en)
		}
		for _, f := range v.Contract.Functions {
			if en, ok := byFunc[f.Signature]; ok {
				en.ranges = appendRange(en.ranges, r)
				continue
			}
			en := &funcEntry{spec: f, contract: v.Contract, ranges: []blockRange{r}}
			byFunc[f.Signature] = en
			fns = append(fns, en)
		}
	}
	return evs, fns
}

// appendRange adds r, merging it with the last range when they touch.
func appendRange(rs []blockRange, r blockRange) []blockRange {
	if last := &rs[len(rs)-1]; last.to == r.from {
		last.to = r.to
		return rs
	}
	return append(rs, r)
}

// layout is what makes two events decode alike: the signature and which parameters are indexed.
func layout(e *abi.EventSpec) string {
	b := []byte(e.Signature + "/")
	for _, p := range e.Params {
		b = append(b, map[bool]byte{true: '1', false: '0'}[p.Indexed])
	}
	return string(b)
}

func (s *Set) abiNames() string {
	names := make([]string, len(s.Versions))
	for i, v := range s.Versions {
		names[i] = v.Contract.Name
	}
	return strings.Join(names, ", ")
}

func entryNames(evs []*eventEntry) string {
	var names []string
	for _, e := range evs {
		if !slices.Contains(names, e.spec.Name) {
			names = append(names, e.spec.Name)
		}
	}
	return strings.Join(names, ", ")
}

func overloads(n int, name func(int) string) map[string]int {
	out := map[string]int{}
	for i := range n {
		out[name(i)]++
	}
	return out
}

// maxIdentifier is Postgres's identifier length (NAMEDATALEN - 1).
const maxIdentifier = 63

// tableName is <set>_<evt|call>_<snake name>[_<hex of topic0 or selector, for overloads>], shortened to 63
// bytes by keeping its start and adding 8 hex digits of its SHA-256.
func tableName(set, kind, name, suffix string) string {
	return shorten(set + "_" + kind + "_" + SnakeCase(name) + suffix)
}

// shorten keeps an identifier of more than 63 bytes unique within them: its start, _, and 8 hex digits of its
// SHA-256.
func shorten(n string) string {
	if len(n) <= maxIdentifier {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:maxIdentifier-9] + "_" + hex.EncodeToString(sum[:4])
}

// SnakeCase turns an ABI name into a column or table name part: an underscore before an upper-case letter
// that follows a lower-case letter or digit, or that starts a word after an acronym (tokenURI → token_uri,
// URIChanged → uri_changed, amount0In → amount0_in); every character outside [a-z0-9] becomes _, runs of _
// become one, and leading and trailing _ go (_from → from).
func SnakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		r = unicode.ToLower(r)
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	for strings.Contains(out, "__") {
		out = strings.ReplaceAll(out, "__", "_")
	}
	return strings.Trim(out, "_")
}

// reserved are Postgres's reserved key words and those that cannot be a column name unquoted
// (pg_get_keywords() catcode R and T; TestReservedWordsMatchPostgres compares them with the server).
var reserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric authorization binary both
		case cast check collate collation column concurrently constraint create cross current_catalog current_date
		current_role current_schema current_time current_timestamp current_user default deferrable desc distinct do
		else end except false fetch for foreign freeze from full grant group having ilike in initially inner
		intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull
		null offset on only or order outer overlaps placing primary references returning right select session_user
		similar some symmetric table tablesample then to trailing true union unique user using variadic verbose
		when where window with`) {
		reserved[w] = true
	}
}

// columnNames names the parameter columns, after the position columns taken:
//   - the snake_case of the ABI name; an unnamed parameter, or one whose name has no letter or digit, is
//     argN (N its position, from 0); a name starting with a digit gets arg_ in front;
//   - a reserved word gets a trailing _ (from → from_, to → to_), so that no column needs quoting;
//   - a name already taken (a position column such as block_number, or an earlier parameter) gets _N.
func columnNames(params []abi.Param, taken []chain.Column) []string {
	used := map[string]bool{}
	for _, c := range taken {
		used[c.Name] = true
	}
	out := make([]string, len(params))
	for i, p := range params {
		n := SnakeCase(p.Name)
		switch {
		case n == "":
			n = "arg" + strconv.Itoa(i)
		case n[0] >= '0' && n[0] <= '9':
			n = "arg_" + n
		}
		if reserved[n] {
			n += "_"
		}
		if len(n) > maxIdentifier-4 {
			n = n[:maxIdentifier-4]
		}
		if used[n] {
			n += "_" + strconv.Itoa(i)
		}
		used[n] = true
		out[i] = n
	}
	return out
}

// sqlType is a parameter's column type: integers that fit bigint (intN up to 64 bits, uintN up to 56) are
// bigint, wider ones numeric(78,0), which holds every 256-bit value; address, bytes, bytesN, function and
// hashed indexed values bytea; bool boolean; string text; arrays and tuples jsonb.
func sqlType(p abi.Param) (string, columnKind) {
	switch p.Kind {
	case abi.KindInt:
		if p.Bits <= 64 {
			return "bigint", colBigint
		}
		return "numeric(78,0)", colNumeric
	case abi.KindUint:
		if p.Bits <= 56 {
			return "bigint", colBigint
		}
		return "numeric(78,0)", colNumeric
	case abi.KindAddress, abi.KindBytes:
		return "bytea", colAsIs
	case abi.KindBool:
		return "boolean", colAsIs
	case abi.KindString:
		return "text", colAsIs
	}
	return "jsonb", colAsIs
}

func eventTable(s *Set, c *abi.Contract, e *abi.EventSpec, name string) *Table {
	t := &Table{Set: s, Kind: KindEvent, Signature: e.Signature, event: e, Contract: c}
	cols, comments := paramColumns(eventPosition, e.Params)
	t.Table = chain.NewTable(name, chain.ScopeLog, []string{"block_number", "log_index"}, cols)
	t.comment = fmt.Sprintf("event %s (topic0 %s) of ABI %s, contract set %s", e.Signature, e.Topic0.Hex(), c.Name, s.Name)
	t.columnComments = comments
	t.params = paramKinds(e.Params)
	return t
}

func callTable(s *Set, c *abi.Contract, f *abi.FunctionSpec, name string) *Table {
	t := &Table{Set: s, Kind: KindCall, Signature: f.Signature, function: f, Contract: c}
	cols, comments := paramColumns(callPosition, f.Params, callFrame)
	cols, comments = append(cols, callFrame), append(comments, positionComments[callFrame.Name])
	t.Table = chain.NewTable(name, chain.ScopeTransaction, []string{"block_number", "transaction_index", callFrame.Name}, cols)
	t.comment = fmt.Sprintf("calls of %s (selector 0x%x) of ABI %s, contract set %s: transactions, and internal calls "+
		"(call and staticcall frames) where the input has traces", f.Signature, f.Selector, c.Name, s.Name)
	t.legacyComment = fmt.Sprintf("calls of %s (selector 0x%x) of ABI %s, contract set %s: top-level transactions only",
		f.Signature, f.Selector, c.Name, s.Name)
	t.columnComments = comments
	t.params = paramKinds(f.Params)
	return t
}

// paramColumns are the columns of position and of params, and their comments; a parameter's name does not
// take the name of a position column or of one of after, the columns that follow the parameters.
func paramColumns(position []chain.Column, params []abi.Param, after ...chain.Column) ([]chain.Column, []string) {
	cols := slices.Clone(position)
	var comments []string
	for _, c := range position {
		comments = append(comments, positionComments[c.Name])
	}
	for i, n := range columnNames(params, append(slices.Clone(position), after...)) {
		typ, _ := sqlType(params[i])
		cols = append(cols, chain.Column{Name: n, Type: typ})
		p := params[i]
		c := p.Type
		if p.Indexed {
			c += " indexed"
		}
		if p.Name != "" {
			c += " " + p.Name
		}
		if p.Hashed {
			c += " (keccak256 of the value: an indexed " + p.Type + " is stored hashed)"
		}
		comments = append(comments, c)
	}
	return cols, comments
}

func paramKinds(params []abi.Param) []columnKind {
	out := make([]columnKind, len(params))
	for i, p := range params {
		_, out[i] = sqlType(p)
	}
	return out
}

// Schema is the descriptors of every table, for the writer.
func (ts *Tables) Schema() chain.Schema {
	out := make(chain.Schema, len(ts.All))
	for i, t := range ts.All {
		out[i] = t.Table
	}
	return out
}

// Records are the tables as the registry (typed_tables) records them, for `tables plan|apply` and the
// check that `run` makes.
func (ts *Tables) Records() []chain.TableRecord {
	out := make([]chain.TableRecord, len(ts.All))
	for i, t := range ts.All {
		out[i] = chain.TableRecord{Name: t.Name, Set: t.Set.Name, Kind: string(t.Kind), ABI: t.Contract.Name,
			ABIHash: t.Contract.Hash, Signature: t.Signature, DDL: t.DDL()}
		if t.Kind == KindCall {
			out[i].Upgrades = []chain.Upgrade{{From: t.ddl(true), SQL: t.upgrade()}}
		}
	}
	return out
}

// WriteSchema is what a writer of ts writes besides the core tables: factory_children when a set has a
// factory (its registrations), then every typed table.
func (ts *Tables) WriteSchema() chain.Schema {
	schema := ts.Schema()
	if ts.hasFactory {
		schema = append(chain.Schema{chain.ChildrenTable}, schema...)
	}
	return schema
}

// HasFactory reports whether a set's addresses come from a factory.
func (ts *Tables) HasFactory() bool { return ts.hasFactory }

// DDL is the statements that create t: the table with its primary key, the (contract_address,
// block_number) index, and a comment on the table and on each column naming what it was generated from.
func (t *Table) DDL() string { return t.ddl(false) }

// ddl is DDL, or with legacy the DDL that chainsink recorded for a call table before it had internal calls:
// no trace_address, the key (block_number, transaction_index), the comments of then.
func (t *Table) ddl(legacy bool) string {
	var b strings.Builder
	q := quoteIdent
	cols, key, comment := t.Columns, t.Key, t.comment
	if legacy {
		cols, key, comment = cols[:len(cols)-1], key[:2], t.legacyComment
	}
	fmt.Fprintf(&b, "CREATE TABLE %s (\n", q(t.Name))
	for _, c := range cols {
		null := " NOT NULL"
		switch {
		case c.Name == "status" && t.Kind == KindCall:
			null = ""
		case c == callFrame && t.Kind == KindCall:
			null += frameDefault
		}
		fmt.Fprintf(&b, "    %s %s%s,\n", q(c.Name), c.Type, null)
	}
	fmt.Fprintf(&b, "    PRIMARY KEY (%s)\n);\n", strings.Join(quoteAll(key), ", "))
	idx := shorten(t.Name + "_contract_block_idx")
	fmt.Fprintf(&b, "CREATE INDEX %s ON %s (contract_address, block_number);\n", q(idx), q(t.Name))
	fmt.Fprintf(&b, "COMMENT ON TABLE %s IS %s;\n", q(t.Name), quoteLiteral(comment))
	for i, c := range cols {
		fmt.Fprintf(&b, "COMMENT ON COLUMN %s.%s IS %s;\n", q(t.Name), q(c.Name), quoteLiteral(t.columnComment(i, legacy)))
	}
	return b.String()
}

func (t *Table) columnComment(i int, legacy bool) string {
	if c, ok := legacyComments[t.Columns[i].Name]; ok && legacy && i < len(callPosition) {
		return c
	}
	return t.columnComments[i]
}

// upgrade is what turns a call table created with the legacy DDL into one created with DDL: its trace
// address column (every stored row is a transaction's own call, {}: frameDefault), the key that includes
// it, the comments. Adding a NOT NULL column with a constant default does not rewrite the table
// (PostgreSQL 11+); the new primary key is built once, under the migration lock.
func (t *Table) upgrade() string {
	var b strings.Builder
	q := quoteIdent
	frame := q(callFrame.Name)
	fmt.Fprintf(&b, "ALTER TABLE %s ADD COLUMN %s %s NOT NULL%s;\n", q(t.Name), frame, callFrame.Type, frameDefault)
	// The old key's name is PostgreSQL's choice (the table's name, truncated, and _pkey): read it.
	fmt.Fprintf(&b, "DO $$ BEGIN EXECUTE format('ALTER TABLE %%I DROP CONSTRAINT %%I', %s, (SELECT conname FROM pg_constraint "+
		"WHERE conrelid = %s::regclass AND contype = 'p')); END $$;\n", quoteLiteral(t.Name), quoteLiteral(q(t.Name)))
	fmt.Fprintf(&b, "ALTER TABLE %s ADD PRIMARY KEY (%s);\n", q(t.Name), strings.Join(quoteAll(t.Key), ", "))
	fmt.Fprintf(&b, "COMMENT ON TABLE %s IS %s;\n", q(t.Name), quoteLiteral(t.comment))
	for i, c := range t.Columns {
		if _, changed := legacyComments[c.Name]; changed || c.Name == callFrame.Name {
			fmt.Fprintf(&b, "COMMENT ON COLUMN %s.%s IS %s;\n", q(t.Name), q(c.Name), quoteLiteral(t.columnComments[i]))
		}
	}
	return b.String()
}

// quoteIdent quotes a generated name only when it needs it; generated names never do, but a quoted DDL
// of names that are valid unquoted reads worse in `tables plan`.
func quoteIdent(s string) string {
	plain := s != "" && !reserved[s] && (s[0] >= 'a' && s[0] <= 'z' || s[0] == '_')
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quoteIdent(s)
	}
	return out
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
