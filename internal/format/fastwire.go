package format

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"math/bits"
	"sync"
	"sync/atomic"
)

// The fast path of a bundle (and of ethereum-etl's transaction and log items): its wire structs read
// straight from the message's bytes by a scanner of the JSON grammar, without reflection, with the hex
// decoded in place into a few slabs per message instead of an allocation per value. It is only a faster way
// to the same structs: it gives up (returns false) on anything that is not the plain shape a node writes —
// a name that only matches a field case-insensitively or has escapes, a name given twice, an escaped or
// non-ASCII string, a value of another type, a hex string that go-ethereum's types would refuse or read
// differently, deeper nesting than a call tree can have, JSON that is not JSON — and the message then takes
// the reflective path (unmarshalWire), whose semantics and errors stay the reference. FuzzDecodeBundle and
// FuzzDecodeETL hold the two equal on every input that the fast path accepts; TestFastWireTakesNodeOutput
// that it accepts what nodes and ethereum-etl send.

// fastReader reads one message. Only its scratch lists are reused; the slabs belong to the message's rows.
type fastReader struct {
	in  []byte // the message
	pos int    // of the next byte of in to read
	// open is set by a '{' or '[' and cleared by the first member or element (and by any closing bracket,
	// which completes its parent's current member or element): a member or element other than the first
	// needs a comma before it. One flag serves every level, since only the innermost container can be open.
	open  bool
	ok    bool
	n     int // the message's size, which sizes the slabs
	depth int // of the call frame being read

	bytes    []byte     // slab for data values (input, log data, blooms)
	words    []big.Word // slab for big quantities
	topics   []topics   // slab for log topics
	logSlab  []rpcLog   // slab for the receipts' logs
	logLists [][]rpcLog // slab for the slices that the receipts point to

	// Lists are read into these and copied out at their length: growing them by append made twice the
	// garbage of a block's transactions and receipts.
	txs         []rpcTx
	receipts    []rpcReceipt[rpcLog]
	logs        []rpcLog
	withdrawals []rpcWithdrawal
	hashes      []hash
	traces      []rpcTraceResult
}

var fastReaders = sync.Pool{New: func() any { return new(fastReader) }}

// decodeBundleFast decodes value into msg and reports whether it could; when it could not, msg is left in
// any state and the caller decodes it again on the reflective path.
func decodeBundleFast(value []byte, msg *bundleMsg) bool {
	return fastDecode(value, func(f *fastReader) { bundleStruct.read(f, msg) })
}

// fastDecode reads value, one JSON value and nothing after it, with read.
func fastDecode(value []byte, read func(*fastReader)) bool {
	f := fastReaders.Get().(*fastReader)
	f.in, f.pos, f.open = value, 0, false
	f.ok, f.n, f.depth = true, len(value), 0
	// The first slab of data is at most half the message: hex takes two characters a byte. A small message
	// (an ethereum-etl item) gets each value on its own instead, no larger than it is.
	if len(value) >= smallMessage {
		f.bytes = make([]byte, 0, min(len(value)/2+1, fastSlab))
	}
	read(f)
	if f.ok && f.space() != len(f.in) { // one value, then only whitespace
		f.ok = false
	}
	ok := f.ok
	f.in = nil // drop the reference to value
	f.bytes, f.words, f.topics, f.logSlab, f.logLists = nil, nil, nil, nil, nil
	fastReaders.Put(f)
	return ok
}

const (
	fastSlab     = 64 << 10
	smallMessage = 8 << 10
)

// space skips JSON whitespace and returns the position of the next byte (len(in) at the end).
func (f *fastReader) space() int {
	for f.pos < len(f.in) {
		// Nodes write JSON without whitespace: one comparison for every byte above the space character.
		if c := f.in[f.pos]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		f.pos++
	}
	return f.pos
}

// peek is the next byte after whitespace, or 0 at the end.
func (f *fastReader) peek() byte {
	if f.space() < len(f.in) {
		return f.in[f.pos]
	}
	return 0
}

// next moves to the next member or element of the container being read: none needs a comma before it when
// the container was just opened; every other does. It reports whether there is one: false, and the
// container closed, at close (its closing bracket).
func (f *fastReader) next(close byte) bool {
	if !f.ok {
		return false
	}
	c := f.peek()
	if c == close {
		f.pos++
		f.open = false
		return false
	}
	if !f.open {
		if c != ',' {
			f.ok = false
			return false
		}
		f.pos++
		if c = f.peek(); c == close { // a trailing comma
			f.ok = false
			return false
		}
	}
	f.open = false
	return true
}

// opens reads the opening bracket c of a container.
func (f *fastReader) opens(c byte) bool {
	if !f.ok || f.peek() != c {
		f.ok = false
		return false
	}
	f.pos++
	f.open = true
	return true
}

// object reads the '{' of an object; false (and the message off the fast path) for anything else.
func (f *fastReader) object() bool { return f.opens('{') }

// member reads the next member's name of the object being read and its ':', or its closing '}' (and returns
// false). A name with an escape or a control character takes the message off the fast path.
func (f *fastReader) member() ([]byte, bool) {
	name, ok := f.memberRaw()
	if ok && !plainText(name, false) {
		f.ok = false
		return nil, false
	}
	return name, ok
}

// memberRaw is member leaving the name unchecked: for a caller that compares it with names it knows, all
// plain, and checks only the others.
func (f *fastReader) memberRaw() ([]byte, bool) {
	if !f.next('}') {
		return nil, false
	}
	name, ok := f.rawString()
	if !ok || f.peek() != ':' {
		f.ok = false
		return nil, false
	}
	f.pos++
	return name, true
}

// rawString reads a string as it is written, up to its closing quote: escapes are not read (a caller that
// finds a backslash gives up, and one that decodes hex refuses it), so an escaped quote ends the string
// early and leaves the rest to fail. Control characters, which JSON does not allow in a string, are checked
// by the callers that keep the string as text (text, member); hex digits are none.
func (f *fastReader) rawString() ([]byte, bool) {
	if f.peek() != '"' {
		return nil, false
	}
	start := f.pos + 1
	end := bytes.IndexByte(f.in[start:], '"')
	if end < 0 {
		return nil, false
	}
	f.pos = start + end + 1
	return f.in[start : start+end], true
}

// unknown skips the value of a member whose name is none of known's, or takes the message off the fast path
// when the name is one of them in other letter case (or not ASCII, where case folding is Unicode's), or is
// not plain text.
func (f *fastReader) unknown(name []byte, known map[string]struct{}) {
	if !plainText(name, false) {
		f.ok = false
		return
	}
	var low [32]byte
	if len(name) <= len(low) {
		for i, c := range name {
			switch {
			case c >= 0x80:
				f.ok = false
				return
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			low[i] = c
		}
		if _, ok := known[string(low[:len(name)])]; ok {
			f.ok = false
			return
		}
	} else {
		for _, c := range name {
			if c >= 0x80 {
				f.ok = false
				return
			}
		}
	}
	f.skip(0)
}

// maxNesting is jsontext's limit on nested arrays and objects, past which the reflective path fails too
// (the fast path gives up on it).
const maxNesting = 10000

// skip reads any JSON value without keeping it; a string with an escape takes the message off the fast path.
func (f *fastReader) skip(depth int) {
	if !f.ok {
		return
	}
	if depth > maxNesting {
		f.ok = false
		return
	}
	switch c := f.peek(); c {
	case '"':
		s, ok := f.rawString()
		if !ok || !plainText(s, false) {
			f.ok = false
		}
	case '{':
		f.object()
		for {
			if _, ok := f.member(); !ok {
				return
			}
			f.skip(depth + 1)
		}
	case '[':
		f.opens('[')
		for f.next(']') {
			f.skip(depth + 1)
		}
	case 't':
		f.literal("true")
	case 'f':
		f.literal("false")
	case 'n':
		f.literal("null")
	default:
		f.jsonNumber()
	}
}

// literal reads true, false or null.
func (f *fastReader) literal(lit string) {
	if !bytes.HasPrefix(f.in[f.pos:], []byte(lit)) {
		f.ok = false
		return
	}
	f.pos += len(lit)
}

// jsonNumber reads a JSON number by its grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (f *fastReader) jsonNumber() {
	in, i := f.in, f.pos
	digits := func() bool {
		start := i
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case !digits():
		f.ok = false
		return
	}
	if i < len(in) && in[i] == '.' {
		i++
		if !digits() {
			f.ok = false
			return
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if !digits() {
			f.ok = false
			return
		}
	}
	f.pos = i
}

// value reads any JSON value and returns it as it is written.
func (f *fastReader) value() []byte {
	start := f.space()
	f.skip(0)
	if !f.ok {
		return nil
	}
	return f.in[start:f.pos]
}

// null reads a null if that is what comes next.
func (f *fastReader) null() bool {
	if !f.ok || f.peek() != 'n' {
		return false
	}
	f.literal("null")
	return true
}

// array reads the '[' of an array, or null (isNull true); false for anything else.
func (f *fastReader) array() (isNull, ok bool) {
	if !f.ok {
		return false, false
	}
	switch f.peek() {
	case '[':
		return false, f.opens('[')
	case 'n':
		return f.null(), f.ok
	}
	f.ok = false
	return false, false
}

// more reports whether the array being read has another element, reading its ']' when not.
func (f *fastReader) more() bool { return f.next(']') }

// raw reads a string as it is written (see rawString), or null (s nil, null true).
func (f *fastReader) raw() (s []byte, null bool) {
	if !f.ok {
		return nil, false
	}
	if f.null() {
		return nil, f.ok
	}
	s, ok := f.rawString()
	if !ok {
		f.ok = false
		return nil, false
	}
	return s, false
}

// text reads a string or null. A string with an escape or a byte outside ASCII takes the message off the
// fast path: the reflective path unescapes it and replaces invalid UTF-8.
func (f *fastReader) text() (s []byte, null bool) {
	s, null = f.raw()
	if !plainText(s, true) {
		f.ok = false
		return nil, false
	}
	return s, null
}

// hexDigits is the hex of a "0x"-prefixed string, or nil, false for null; anything else takes the message
// off the fast path (go-ethereum's types accept "" and "0X", the reflective path reads those). The digits
// are read raw: an escape or a byte outside ASCII is not a hex digit, which the caller's decoding refuses.
func (f *fastReader) hexDigits() ([]byte, bool) {
	s, null := f.raw()
	if null || !f.ok {
		return nil, false
	}
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' {
		f.ok = false
		return nil, false
	}
	return s[2:], true
}

// fixed decodes a hash or an address of exactly len(dst) bytes.
func (f *fastReader) fixed(dst []byte) (set bool) {
	// Where the closing quote must be, if the value is what a node writes: no search for it (a third of the
	// strings of a bundle are hashes and addresses). A quote or backslash before it is no hex digit, and
	// anything else the general path below fails on too.
	if f.ok && f.peek() == '"' {
		start, end := f.pos+1, f.pos+3+2*len(dst)
		if end < len(f.in) && f.in[end] == '"' && f.in[start] == '0' && f.in[start+1] == 'x' {
			f.pos = end + 1
			if _, err := hex.Decode(dst, f.in[start+2:end]); err != nil {
				f.ok = false
				return false
			}
			return true
		}
	}
	h, set := f.hexDigits()
	if !set {
		return false
	}
	if len(h) != 2*len(dst) {
		f.ok = false
		return false
	}
	if _, err := hex.Decode(dst, h); err != nil {
		f.ok = false
		return false
	}
	return true
}

func (f *fastReader) hash(h *hash)       { h.ok = f.fixed(h.v[:]) }
func (f *fastReader) address(a *address) { a.ok = f.fixed(a.v[:]) }

// number is the digits of a hex quantity: at least one, no leading zero (hexutil's rules), at most max.
func (f *fastReader) number(max int) ([]byte, bool) {
	h, set := f.hexDigits()
	if !set {
		return nil, false
	}
	if len(h) == 0 || len(h) > max || len(h) > 1 && h[0] == '0' {
		f.ok = false
		return nil, false
	}
	return h, true
}

func (f *fastReader) quantity(q *quantity) {
	*q = quantity{}
	h, set := f.number(16)
	if !set {
		return
	}
	var v uint64
	for _, c := range h {
		n := nibble(c)
		if n > 15 {
			f.ok = false
			return
		}
		v = v<<4 | uint64(n)
	}
	*q = quantity{v, true}
}

// bigQuantity reads a 256-bit quantity into words from a slab, as hexutil.Big does (SetBits of
// little-endian words).
func (f *fastReader) bigQuantity(q *bigQuantity) {
	q.ok = false
	h, set := f.number(64)
	if !set {
		return
	}
	const nibbles = bits.UintSize / 4
	n := (len(h) + nibbles - 1) / nibbles
	if len(f.words) < n {
		f.words = make([]big.Word, max(n, min(256, f.n/64))) // a quantity takes 20 bytes or more
	}
	w := f.words[:n:n]
	f.words = f.words[n:]
	for i := range w {
		end := len(h) - i*nibbles
		start := max(end-nibbles, 0)
		var x big.Word
		for _, c := range h[start:end] {
			d := nibble(c)
			if d > 15 {
				f.ok = false
				return
			}
			x = x<<4 | big.Word(d)
		}
		w[i] = x
	}
	q.v.SetBits(w)
	q.ok = true
}

func nibble(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// data reads hex data into the message's slab.
func (f *fastReader) data(d *data) {
	*d = data{}
	h, set := f.hexDigits()
	if !set {
		return
	}
	if len(h)%2 != 0 {
		f.ok = false
		return
	}
	n := len(h) / 2
	var out []byte // never nil: "0x" is data, and empty
	if free := cap(f.bytes) - len(f.bytes); n <= free && f.bytes != nil {
		out = f.bytes[len(f.bytes) : len(f.bytes)+n : len(f.bytes)+n]
		f.bytes = f.bytes[:len(f.bytes)+n]
	} else if n > fastSlab/4 || f.n < smallMessage {
		out = make([]byte, n)
	} else {
		f.bytes = make([]byte, n, fastSlab)
		out = f.bytes[:n:n]
	}
	if _, err := hex.Decode(out, h); err != nil {
		f.ok = false
		return
	}
	*d = data{out, true}
}

// str reads a string; the callTracer's frame types are not copied.
func (f *fastReader) str(s *string) {
	b, _ := f.text()
	switch string(b) {
	case "CALL":
		*s = "CALL"
	case "STATICCALL":
		*s = "STATICCALL"
	case "DELEGATECALL":
		*s = "DELEGATECALL"
	case "CREATE":
		*s = "CREATE"
	case "CREATE2":
		*s = "CREATE2"
	case "SELFDESTRUCT":
		*s = "SELFDESTRUCT"
	case "CALLCODE":
		*s = "CALLCODE"
	default:
		*s = string(b)
	}
}

// fastList reads an array of objects (or null, which leaves *p nil) with elem, through scratch.
func fastList[T any](f *fastReader, p **[]T, elem func(*fastReader, *T), scratch *[]T) {
	fastListOn(f, p, elem, scratch, nil, nil)
}

// fastListOn is fastList taking the list and the slice that *p points to from the message's slabs when they
// are given: a bundle has a list of logs for each receipt, two allocations each otherwise.
func fastListOn[T any](f *fastReader, p **[]T, elem func(*fastReader, *T), scratch *[]T, slab *[]T, lists *[][]T) {
	*p = nil
	null, ok := f.array()
	if !ok || null {
		return
	}
	list := (*scratch)[:0]
	for f.more() {
		var zero T
		list = append(list, zero)
		elem(f, &list[len(list)-1])
	}
	var out []T
	if slab != nil {
		out = carve(slab, len(list), f.perMessage())
		p1 := carve(lists, 1, f.perMessage())
		*p = &p1[0]
	} else {
		own := make([]T, len(list)) // [] is an empty list, not a missing one
		*p, out = &own, own
	}
	copy(out, list)
	**p = out
	clear(list) // the scratch outlives the message: keep none of its values alive
	*scratch = list[:0]
}

// carve takes n elements from *slab, which it refills with max(n, chunk) when it has fewer.
func carve[T any](slab *[]T, n, chunk int) []T {
	if len(*slab) < n {
		*slab = make([]T, max(n, chunk))
	}
	out := (*slab)[:n:n]
	*slab = (*slab)[n:]
	if out == nil {
		out = []T{} // [] is an empty list, not a missing one
	}
	return out
}

// perMessage is how many logs (or topic lists, or log lists) a slab of the message holds: one for a small
// message, 64 for a mainnet bundle, whose logs take 300 bytes or more of it each.
func (f *fastReader) perMessage() int { return min(64, f.n/2048+1) }

// topicList reads a log's topics into a slab; more than the EVM can emit, or a null topic, goes to the
// reflective path, which explains them.
func (f *fastReader) topicList() *topics {
	null, ok := f.array()
	if !ok || null {
		return nil
	}
	if len(f.topics) == 0 {
		f.topics = make([]topics, f.perMessage())
	}
	t := &f.topics[0]
	f.topics = f.topics[1:]
	for n := 0; f.more(); n++ {
		if n == maxTopics {
			f.ok = false
			return nil
		}
		if !f.fixed(t[n].v[:]) {
			f.ok = false
			return nil
		}
		t[n].ok = true
	}
	return t
}

// etlInt reads an ethereum-etl integer: plain digits that fit in a uint64 here, anything else by
// etlInt.UnmarshalJSON, whose refusal takes the item off the fast path.
func (f *fastReader) etlInt(n *etlInt) {
	*n = etlInt{}
	if !f.ok {
		return
	}
	v := f.value()
	if !f.ok {
		return
	}
	if len(v) <= 19 { // below 10^19: always a uint64
		var u uint64
		for _, c := range v {
			if c < '0' || c > '9' {
				goto other
			}
			u = u*10 + uint64(c-'0')
		}
		n.set, n.u = true, u
		return
	}
other:
	if n.UnmarshalJSON(v) != nil {
		f.ok = false
	}
}

// itemType reads an item's "type" (the item types chainsink stores are not copied).
func (f *fastReader) itemType(s *string) {
	b, _ := f.text()
	switch string(b) {
	case etlTypeTransaction:
		*s = etlTypeTransaction
	case etlTypeLog:
		*s = etlTypeLog
	default:
		*s = string(b)
	}
}

// fastItemType reads the "type" of an ethereum-etl item, the last one as encoding/json does, in one pass over
// its members: for the items whose "type" is not their first key (sniffType's case), such as those that a
// producer re-encoded through a map, in alphabetical order. False on anything unusual (a name that is "type"
// in other letter case, a type that is not a plain string, no type), which itemType then reads as the
// decoder would.
func fastItemType(value []byte) (string, bool) {
	var typ string
	ok := fastDecode(value, func(f *fastReader) {
		if !f.object() {
			return
		}
		for {
			name, more := f.memberRaw() // unknown checks a name that is not "type"
			if !more {
				return
			}
			if string(name) == "type" {
				f.itemType(&typ)
				continue
			}
			f.unknown(name, typeName)
		}
	})
	return typ, ok && typ != ""
}

var typeName = map[string]struct{}{"type": {}}

// fastField is a JSON name of a wire struct T and how the fast path reads its value into a T.
type fastField[T any] struct {
	name string
	read func(*fastReader, *T)
}

// fastStruct reads the objects of a wire struct T by its fields. Its fields must be its JSON names, all of
// them (TestFastFieldsAreTheStructs), so that a name it does not know is one the reflective path skips too,
// unless it is one of them in other letter case, which goes to that path.
type fastStruct[T any] struct {
	fields []fastField[T]
	index  map[string]int      // by name
	folded map[string]struct{} // the names in lower case

	// order is the sequence of member names that objects of T came in, learned from the messages read.
	// Every node writes an object's members in an order of its own (geth a transaction's in its struct's
	// order and a block's and receipt's alphabetically, other clients theirs, BundleFromETLItems everything
	// alphabetically), the same every time, and a name found at its place in order costs one comparison
	// where the index costs a hash and a lookup, and an unknown name two. Workers decode concurrently, so it
	// is replaced whole, never changed in place, and only if it is still the one the object started from.
	order atomic.Pointer[[]orderedName]
}

// orderedName is a member name in a fastStruct's learned order: field is its index in fields, or -1 for a
// name that is not a field, which unknown found to be no field's in other letter case when it was learned.
type orderedName struct {
	name  string
	field int
}

// maxOrder bounds a learned order: names that vary from object to object (they are only skipped) must not
// grow it without end.
const maxOrder = 128

func newFastStruct[T any](fields ...fastField[T]) *fastStruct[T] {
	if len(fields) > 64 {
		panic("format: a wire struct of more than 64 fields")
	}
	s := &fastStruct[T]{fields: fields, index: map[string]int{}, folded: map[string]struct{}{}}
	order := make([]orderedName, len(fields))
	for i, fl := range fields {
		s.index[fl.name] = i
		s.folded[string(bytes.ToLower([]byte(fl.name)))] = struct{}{}
		order[i] = orderedName{fl.name, i}
	}
	s.order.Store(&order)
	return s
}

// read reads an object into v. Each name is looked for in the learned order from just after the last one
// found there (an object may leave members out: a legacy transaction has no fee caps); a name not found there
// is looked up in the index, and the order learns it at that place.
func (s *fastStruct[T]) read(f *fastReader, v *T) {
	if !f.object() {
		return
	}
	learnedFrom := s.order.Load()
	order := *learnedFrom
	var (
		seen    uint64
		at      int           // in order, after the last name found there
		learned []orderedName // names not in order, each with the place it came at, once there is one
		places  []int
	)
	for {
		// A name equal to one in order or index is plain text; unknown checks the others.
		name, ok := f.memberRaw()
		if !ok {
			break
		}
		i, found := -1, false
		for k := at; k < len(order); k++ {
			if string(name) == order[k].name {
				i, found, at = order[k].field, true, k+1
				break
			}
		}
		if !found {
			if j, ok := s.index[string(name)]; ok {
				i = j
			} else if f.unknown(name, s.folded); !f.ok {
				return
			}
			if len(order)+len(learned) < maxOrder {
				learned = append(learned, orderedName{string(name), i})
				places = append(places, at)
			}
			if i < 0 {
				continue
			}
		} else if i < 0 {
			f.skip(0)
			continue
		}
		if seen&(1<<i) != 0 { // a name given twice: the reflective path merges the two
			f.ok = false
			return
		}
		seen |= 1 << i
		s.fields[i].read(f, v)
	}
	if len(learned) > 0 && f.ok {
		merged := make([]orderedName, 0, len(order)+len(learned))
		prev := 0
		for n, place := range places {
			merged = append(append(merged, order[prev:place]...), learned[n])
			prev = place
		}
		merged = append(merged, order[prev:]...)
		// Not over what another object stored meanwhile (one nested in this one, a call frame's calls, or
		// another worker's): that one is kept and this object's names are learned from the next like it.
		s.order.CompareAndSwap(learnedFrom, &merged)
	}
}

// fastPointer reads an object, or null (which leaves *p nil), into a new T.
func fastPointer[T any](f *fastReader, p **T, s *fastStruct[T]) {
	*p = nil
	if f.null() {
		return
	}
	*p = new(T)
	s.read(f, *p)
}

// fld is a fastField, spelt short for the tables below.
func fld[T any](name string, read func(*fastReader, *T)) fastField[T] {
	return fastField[T]{name, read}
}

// The wire structs' fast readers; init builds them, since the call frames' refers to itself.
var (
	bundleStruct      *fastStruct[bundleMsg]
	blockStruct       *fastStruct[rpcBlock[rpcTx, rpcWithdrawal]]
	headerStruct      *fastStruct[rpcBlock[hash, rpcWithdrawal]]
	txStruct          *fastStruct[rpcTx]
	withdrawalStruct  *fastStruct[rpcWithdrawal]
	receiptStruct     *fastStruct[rpcReceipt[rpcLog]]
	logStruct         *fastStruct[rpcLog]
	traceResultStruct *fastStruct[rpcTraceResult]
	frameStruct       *fastStruct[rpcCallFrame]
	etlTxStruct       *fastStruct[etlTx]
	etlLogStruct      *fastStruct[etlLog]
)

func init() {
	type (
		bundle  = bundleMsg
		block   = rpcBlock[rpcTx, rpcWithdrawal]
		header  = rpcBlock[hash, rpcWithdrawal]
		receipt = rpcReceipt[rpcLog]
	)
	bundleStruct = newFastStruct(
		fld("block", func(f *fastReader, m *bundle) { fastPointer(f, &m.Block, blockStruct) }),
		fld("receipts", func(f *fastReader, m *bundle) { fastList(f, &m.Receipts, receiptStruct.read, &f.receipts) }),
		fld("traces", func(f *fastReader, m *bundle) { fastList(f, &m.Traces, traceResultStruct.read, &f.traces) }),
		fld("header", func(f *fastReader, m *bundle) { fastPointer(f, &m.Header, headerStruct) }),
		fld("logs", func(f *fastReader, m *bundle) { fastList(f, &m.Logs, logStruct.read, &f.logs) }),
		fld("transactions", func(f *fastReader, m *bundle) { fastList(f, &m.Transactions, txStruct.read, &f.txs) }))
	blockStruct = newFastStruct(blockFields(func(f *fastReader, b *block) {
		fastList(f, &b.Transactions, txStruct.read, &f.txs)
	})...)
	headerStruct = newFastStruct(blockFields(func(f *fastReader, b *header) {
		fastList(f, &b.Transactions, (*fastReader).hash, &f.hashes)
	})...)
	txStruct = newFastStruct(
		fld("blockHash", func(f *fastReader, t *rpcTx) { f.hash(&t.BlockHash) }),
		fld("blockNumber", func(f *fastReader, t *rpcTx) { f.quantity(&t.BlockNumber) }),
		fld("from", func(f *fastReader, t *rpcTx) { f.address(&t.From) }),
		fld("gas", func(f *fastReader, t *rpcTx) { f.quantity(&t.Gas) }),
		fld("gasPrice", func(f *fastReader, t *rpcTx) { f.bigQuantity(&t.GasPrice) }),
		fld("maxFeePerGas", func(f *fastReader, t *rpcTx) { f.bigQuantity(&t.MaxFeePerGas) }),
		fld("maxPriorityFeePerGas", func(f *fastReader, t *rpcTx) { f.bigQuantity(&t.MaxPriorityFeePerGas) }),
		fld("maxFeePerBlobGas", func(f *fastReader, t *rpcTx) { f.bigQuantity(&t.MaxFeePerBlobGas) }),
		fld("hash", func(f *fastReader, t *rpcTx) { f.hash(&t.Hash) }),
		fld("input", func(f *fastReader, t *rpcTx) { f.data(&t.Input) }),
		fld("nonce", func(f *fastReader, t *rpcTx) { f.quantity(&t.Nonce) }),
		fld("to", func(f *fastReader, t *rpcTx) { f.address(&t.To) }),
		fld("transactionIndex", func(f *fastReader, t *rpcTx) { f.quantity(&t.TransactionIndex) }),
		fld("value", func(f *fastReader, t *rpcTx) { f.bigQuantity(&t.Value) }),
		fld("type", func(f *fastReader, t *rpcTx) { f.quantity(&t.Type) }))
	withdrawalStruct = newFastStruct(
		fld("index", func(f *fastReader, w *rpcWithdrawal) { f.quantity(&w.Index) }),
		fld("validatorIndex", func(f *fastReader, w *rpcWithdrawal) { f.quantity(&w.ValidatorIndex) }),
		fld("address", func(f *fastReader, w *rpcWithdrawal) { f.address(&w.Address) }),
		fld("amount", func(f *fastReader, w *rpcWithdrawal) { f.bigQuantity(&w.Amount) }))
	receiptStruct = newFastStruct(
		fld("blockHash", func(f *fastReader, r *receipt) { f.hash(&r.BlockHash) }),
		fld("blockNumber", func(f *fastReader, r *receipt) { f.quantity(&r.BlockNumber) }),
		fld("contractAddress", func(f *fastReader, r *receipt) { f.address(&r.ContractAddress) }),
		fld("cumulativeGasUsed", func(f *fastReader, r *receipt) { f.quantity(&r.CumulativeGasUsed) }),
		fld("effectiveGasPrice", func(f *fastReader, r *receipt) { f.bigQuantity(&r.EffectiveGasPrice) }),
		fld("gasUsed", func(f *fastReader, r *receipt) { f.quantity(&r.GasUsed) }),
		fld("blobGasUsed", func(f *fastReader, r *receipt) { f.quantity(&r.BlobGasUsed) }),
		fld("blobGasPrice", func(f *fastReader, r *receipt) { f.bigQuantity(&r.BlobGasPrice) }),
		fld("logs", func(f *fastReader, r *receipt) {
			fastListOn(f, &r.Logs, logStruct.read, &f.logs, &f.logSlab, &f.logLists)
		}),
		fld("root", func(f *fastReader, r *receipt) { f.data(&r.Root) }),
		fld("status", func(f *fastReader, r *receipt) { f.quantity(&r.Status) }),
		fld("transactionHash", func(f *fastReader, r *receipt) { f.hash(&r.TransactionHash) }),
		fld("transactionIndex", func(f *fastReader, r *receipt) { f.quantity(&r.TransactionIndex) }),
		fld("type", func(f *fastReader, r *receipt) { f.quantity(&r.Type) }))
	logStruct = newFastStruct(
		fld("address", func(f *fastReader, l *rpcLog) { f.address(&l.Address) }),
		fld("topics", func(f *fastReader, l *rpcLog) { l.Topics = f.topicList() }),
		fld("data", func(f *fastReader, l *rpcLog) { f.data(&l.Data) }),
		fld("blockNumber", func(f *fastReader, l *rpcLog) { f.quantity(&l.BlockNumber) }),
		fld("transactionHash", func(f *fastReader, l *rpcLog) { f.hash(&l.TransactionHash) }),
		fld("transactionIndex", func(f *fastReader, l *rpcLog) { f.quantity(&l.TransactionIndex) }),
		fld("blockHash", func(f *fastReader, l *rpcLog) { f.hash(&l.BlockHash) }),
		fld("logIndex", func(f *fastReader, l *rpcLog) { f.quantity(&l.LogIndex) }))
	traceResultStruct = newFastStruct(
		fld("txHash", func(f *fastReader, r *rpcTraceResult) { f.hash(&r.TxHash) }),
		fld("result", func(f *fastReader, r *rpcTraceResult) { fastPointer(f, &r.Result, frameStruct) }),
		fld("error", func(f *fastReader, r *rpcTraceResult) { f.str(&r.Error) }))
	frameStruct = newFastStruct(
		fld("from", func(f *fastReader, c *rpcCallFrame) { f.address(&c.From) }),
		fld("gas", func(f *fastReader, c *rpcCallFrame) { f.quantity(&c.Gas) }),
		fld("gasUsed", func(f *fastReader, c *rpcCallFrame) { f.quantity(&c.GasUsed) }),
		fld("to", func(f *fastReader, c *rpcCallFrame) { f.address(&c.To) }),
		fld("input", func(f *fastReader, c *rpcCallFrame) { f.data(&c.Input) }),
		fld("output", func(f *fastReader, c *rpcCallFrame) { f.data(&c.Output) }),
		fld("error", func(f *fastReader, c *rpcCallFrame) { f.str(&c.Error) }),
		fld("calls", (*fastReader).calls),
		fld("value", func(f *fastReader, c *rpcCallFrame) { f.bigQuantity(&c.Value) }),
		fld("type", func(f *fastReader, c *rpcCallFrame) { f.str(&c.Type) }))
	etlTxStruct = newFastStruct(
		fld("type", func(f *fastReader, t *etlTx) { f.itemType(&t.Type) }),
		fld("hash", func(f *fastReader, t *etlTx) { f.hash(&t.Hash) }),
		fld("nonce", func(f *fastReader, t *etlTx) { f.etlInt(&t.Nonce) }),
		fld("transaction_index", func(f *fastReader, t *etlTx) { f.etlInt(&t.TransactionIndex) }),
		fld("from_address", func(f *fastReader, t *etlTx) { f.address(&t.FromAddress) }),
		fld("to_address", func(f *fastReader, t *etlTx) { f.address(&t.ToAddress) }),
		fld("value", func(f *fastReader, t *etlTx) { f.etlInt(&t.Value) }),
		fld("gas", func(f *fastReader, t *etlTx) { f.etlInt(&t.Gas) }),
		fld("gas_price", func(f *fastReader, t *etlTx) { f.etlInt(&t.GasPrice) }),
		fld("input", func(f *fastReader, t *etlTx) { f.data(&t.Input) }),
		fld("block_timestamp", func(f *fastReader, t *etlTx) { f.etlInt(&t.BlockTimestamp) }),
		fld("block_number", func(f *fastReader, t *etlTx) { f.etlInt(&t.BlockNumber) }),
		fld("block_hash", func(f *fastReader, t *etlTx) { f.hash(&t.BlockHash) }),
		fld("max_fee_per_gas", func(f *fastReader, t *etlTx) { f.etlInt(&t.MaxFeePerGas) }),
		fld("max_priority_fee_per_gas", func(f *fastReader, t *etlTx) { f.etlInt(&t.MaxPriorityFeePerGas) }),
		fld("transaction_type", func(f *fastReader, t *etlTx) { f.etlInt(&t.TransactionType) }),
		fld("receipt_cumulative_gas_used", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptCumulativeGasUsed) }),
		fld("receipt_gas_used", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptGasUsed) }),
		fld("receipt_contract_address", func(f *fastReader, t *etlTx) { f.address(&t.ReceiptContractAddress) }),
		fld("receipt_root", func(f *fastReader, t *etlTx) { f.data(&t.ReceiptRoot) }),
		fld("receipt_status", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptStatus) }),
		fld("receipt_effective_gas_price", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptEffectiveGasPrice) }),
		fld("max_fee_per_blob_gas", func(f *fastReader, t *etlTx) { f.etlInt(&t.MaxFeePerBlobGas) }),
		fld("receipt_blob_gas_used", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptBlobGasUsed) }),
		fld("receipt_blob_gas_price", func(f *fastReader, t *etlTx) { f.etlInt(&t.ReceiptBlobGasPrice) }))
	etlLogStruct = newFastStruct(
		fld("type", func(f *fastReader, l *etlLog) { f.itemType(&l.Type) }),
		fld("log_index", func(f *fastReader, l *etlLog) { f.etlInt(&l.LogIndex) }),
		fld("transaction_hash", func(f *fastReader, l *etlLog) { f.hash(&l.TransactionHash) }),
		fld("transaction_index", func(f *fastReader, l *etlLog) { f.etlInt(&l.TransactionIndex) }),
		fld("address", func(f *fastReader, l *etlLog) { f.address(&l.Address) }),
		fld("data", func(f *fastReader, l *etlLog) { f.data(&l.Data) }),
		fld("topics", func(f *fastReader, l *etlLog) { l.Topics = f.topicList() }),
		fld("block_number", func(f *fastReader, l *etlLog) { f.etlInt(&l.BlockNumber) }),
		fld("block_timestamp", func(f *fastReader, l *etlLog) { f.etlInt(&l.BlockTimestamp) }),
		fld("block_hash", func(f *fastReader, l *etlLog) { f.hash(&l.BlockHash) }))
}

// blockFields are a block's fields, its transactions read by txs (objects, or a header's hashes).
func blockFields[T any](txs func(*fastReader, *rpcBlock[T, rpcWithdrawal])) []fastField[rpcBlock[T, rpcWithdrawal]] {
	type block = rpcBlock[T, rpcWithdrawal]
	return []fastField[block]{
		fld("baseFeePerGas", func(f *fastReader, b *block) { f.bigQuantity(&b.BaseFeePerGas) }),
		fld("blobGasUsed", func(f *fastReader, b *block) { f.quantity(&b.BlobGasUsed) }),
		fld("difficulty", func(f *fastReader, b *block) { f.bigQuantity(&b.Difficulty) }),
		fld("excessBlobGas", func(f *fastReader, b *block) { f.quantity(&b.ExcessBlobGas) }),
		fld("extraData", func(f *fastReader, b *block) { f.data(&b.ExtraData) }),
		fld("gasLimit", func(f *fastReader, b *block) { f.quantity(&b.GasLimit) }),
		fld("gasUsed", func(f *fastReader, b *block) { f.quantity(&b.GasUsed) }),
		fld("hash", func(f *fastReader, b *block) { f.hash(&b.Hash) }),
		fld("logsBloom", func(f *fastReader, b *block) { f.data(&b.LogsBloom) }),
		fld("miner", func(f *fastReader, b *block) { f.address(&b.Miner) }),
		fld("mixHash", func(f *fastReader, b *block) { f.hash(&b.MixHash) }),
		fld("nonce", func(f *fastReader, b *block) { f.data(&b.Nonce) }),
		fld("number", func(f *fastReader, b *block) { f.quantity(&b.Number) }),
		fld("parentBeaconBlockRoot", func(f *fastReader, b *block) { f.hash(&b.ParentBeaconBlockRoot) }),
		fld("parentHash", func(f *fastReader, b *block) { f.hash(&b.ParentHash) }),
		fld("receiptsRoot", func(f *fastReader, b *block) { f.hash(&b.ReceiptsRoot) }),
		fld("requestsHash", func(f *fastReader, b *block) { f.hash(&b.RequestsHash) }),
		fld("sha3Uncles", func(f *fastReader, b *block) { f.hash(&b.Sha3Uncles) }),
		fld("size", func(f *fastReader, b *block) { f.quantity(&b.Size) }),
		fld("stateRoot", func(f *fastReader, b *block) { f.hash(&b.StateRoot) }),
		fld("timestamp", func(f *fastReader, b *block) { f.quantity(&b.Timestamp) }),
		fld("totalDifficulty", func(f *fastReader, b *block) { f.bigQuantity(&b.TotalDifficulty) }),
		fld("transactions", txs),
		fld("transactionsRoot", func(f *fastReader, b *block) { f.hash(&b.TransactionsRoot) }),
		fld("withdrawals", func(f *fastReader, b *block) { fastList(f, &b.Withdrawals, withdrawalStruct.read, &f.withdrawals) }),
		fld("withdrawalsRoot", func(f *fastReader, b *block) { f.hash(&b.WithdrawalsRoot) }),
	}
}

// calls reads a frame's subcalls, as deep as a call tree can go.
func (f *fastReader) calls(c *rpcCallFrame) {
	c.Calls = nil
	null, ok := f.array()
	if !ok || null {
		return
	}
	if f.depth++; f.depth > maxTraceDepth {
		f.ok = false
		return
	}
	c.Calls = []rpcCallFrame{}
	for f.more() {
		c.Calls = append(c.Calls, rpcCallFrame{})
		frameStruct.read(f, &c.Calls[len(c.Calls)-1])
	}
	f.depth--
}
