package format

import (
	"bytes"
	"encoding/hex"
	"io"
	"math/big"
	"math/bits"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// The fast path of a bundle (and of ethereum-etl's transaction and log items): its wire structs read
// straight from jsontext's tokens, without reflection, with the hex decoded in place into a few slabs per
// message instead of an allocation per value. It is only a faster way to the same structs: it gives up
// (returns false) on anything that is not the plain shape a node writes — a name that only matches a field
// case-insensitively or has escapes, a name given twice, an escaped or non-ASCII string, a value of another
// type, a hex string that go-ethereum's types would refuse or read differently, deeper nesting than a call
// tree can have — and the message then takes the reflective path (unmarshalWire), whose semantics and errors
// stay the reference. FuzzDecodeBundle and FuzzDecodeETL hold the two equal on every input that the fast path
// accepts; TestFastWireTakesNodeOutput that it accepts what nodes and ethereum-etl send.

// fastReader reads one message. Only the decoder is reused; the slabs belong to the message's rows.
type fastReader struct {
	dec jsontext.Decoder
	in  bytes.Buffer
	ok  bool
	n   int // the message's size, which sizes the slabs

	bytes  []byte     // slab for data values (input, log data, blooms)
	words  []big.Word // slab for big quantities
	topics []topics   // slab for log topics

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
	return fastDecode(value, func(f *fastReader) { f.bundle(msg) })
}

// fastDecode reads value, one JSON value and nothing after it, with read.
func fastDecode(value []byte, read func(*fastReader)) bool {
	f := fastReaders.Get().(*fastReader)
	f.in = *bytes.NewBuffer(value)
	f.dec.Reset(&f.in, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	f.ok, f.n = true, len(value)
	// The first slab of data is at most half the message: hex takes two characters a byte. A small message
	// (an ethereum-etl item) gets each value on its own instead, no larger than it is.
	if len(value) >= smallMessage {
		f.bytes = make([]byte, 0, min(len(value)/2+1, fastSlab))
	}
	read(f)
	if f.ok {
		if _, err := f.dec.ReadToken(); err != io.EOF { // one value, then only whitespace
			f.ok = false
		}
	}
	ok := f.ok
	f.in = bytes.Buffer{}
	f.dec.Reset(&f.in) // drop the reference to value
	f.bytes, f.words, f.topics = nil, nil, nil
	fastReaders.Put(f)
	return ok
}

const (
	fastSlab     = 64 << 10
	smallMessage = 8 << 10
)

// fields lists a struct's JSON names, lower case, so that a name that matches one of them only when case is
// ignored (which encoding/json accepts) is sent to the reflective path rather than skipped.
type fields map[string]struct{}

func newFields(names ...string) fields {
	m := make(fields, len(names))
	for _, n := range names {
		m[string(bytes.ToLower([]byte(n)))] = struct{}{}
	}
	return m
}

var (
	bundleFields = newFields("block", "receipts", "traces", "header", "logs", "transactions")
	blockFields  = newFields("number", "hash", "parentHash", "timestamp", "miner", "gasUsed", "gasLimit",
		"baseFeePerGas", "size", "nonce", "difficulty", "totalDifficulty", "extraData", "mixHash", "sha3Uncles",
		"logsBloom", "transactionsRoot", "stateRoot", "receiptsRoot", "withdrawalsRoot", "blobGasUsed",
		"excessBlobGas", "parentBeaconBlockRoot", "requestsHash", "transactions", "withdrawals")
	txFields = newFields("blockHash", "blockNumber", "transactionIndex", "hash", "type", "from", "to", "value",
		"gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "maxFeePerBlobGas", "nonce", "input")
	withdrawalFields = newFields("index", "validatorIndex", "address", "amount")
	receiptFields    = newFields("transactionHash", "transactionIndex", "blockHash", "blockNumber", "type", "status",
		"root", "gasUsed", "cumulativeGasUsed", "effectiveGasPrice", "contractAddress", "blobGasUsed",
		"blobGasPrice", "logs")
	logFields = newFields("address", "topics", "data", "logIndex", "transactionHash", "transactionIndex",
		"blockHash", "blockNumber")
	traceResultFields = newFields("txHash", "result", "error")
	frameFields       = newFields("type", "from", "to", "value", "gas", "gasUsed", "input", "output", "error", "calls")
)

// object reads the '{' of an object; false (and the message off the fast path) for anything else.
func (f *fastReader) object() bool {
	if !f.ok || f.dec.PeekKind() != '{' {
		f.ok = false
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		f.ok = false
	}
	return f.ok
}

// member reads the next member's name of the object being read, or its closing '}' (and returns false).
func (f *fastReader) member() ([]byte, bool) {
	if !f.ok {
		return nil, false
	}
	if f.dec.PeekKind() == '}' {
		if _, err := f.dec.ReadToken(); err != nil {
			f.ok = false
		}
		return nil, false
	}
	v, err := f.dec.ReadValue()
	if err != nil || len(v) < 2 {
		f.ok = false
		return nil, false
	}
	name := v[1 : len(v)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		f.ok = false
		return nil, false
	}
	return name, true
}

// once marks field bit i of seen, and takes the message off the fast path if it was already set: a name
// given twice goes to the reflective path, which merges the two.
func (f *fastReader) once(seen *uint32, i uint) {
	if *seen&(1<<i) != 0 {
		f.ok = false
	}
	*seen |= 1 << i
}

// unknown skips the value of a member whose name is none of known's, or takes the message off the fast path
// when the name is one of them in other letter case (or not ASCII, where case folding is Unicode's).
func (f *fastReader) unknown(name []byte, known fields) {
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
	if err := f.dec.SkipValue(); err != nil {
		f.ok = false
	}
}

// null reads a null if that is what comes next.
func (f *fastReader) null() bool {
	if !f.ok || f.dec.PeekKind() != 'n' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		f.ok = false
	}
	return true
}

// array reads the '[' of an array, or null (isNull true); false for anything else.
func (f *fastReader) array() (isNull, ok bool) {
	if !f.ok {
		return false, false
	}
	switch f.dec.PeekKind() {
	case '[':
		if _, err := f.dec.ReadToken(); err != nil {
			f.ok = false
		}
		return false, f.ok
	case 'n':
		return f.null(), f.ok
	}
	f.ok = false
	return false, false
}

// more reports whether the array being read has another element, reading its ']' when not.
func (f *fastReader) more() bool {
	if !f.ok {
		return false
	}
	if f.dec.PeekKind() == ']' {
		if _, err := f.dec.ReadToken(); err != nil {
			f.ok = false
		}
		return false
	}
	return true
}

// raw reads a string as it is written, escapes included, or null (s nil, null true).
func (f *fastReader) raw() (s []byte, null bool) {
	if !f.ok {
		return nil, false
	}
	v, err := f.dec.ReadValue()
	if err != nil {
		f.ok = false
		return nil, false
	}
	if v[0] == 'n' {
		return nil, true
	}
	if v[0] != '"' {
		f.ok = false
		return nil, false
	}
	return v[1 : len(v)-1], false
}

// text reads a string or null. A string with an escape or a byte outside ASCII takes the message off the
// fast path: the reflective path unescapes it and replaces invalid UTF-8.
func (f *fastReader) text() (s []byte, null bool) {
	s, null = f.raw()
	for _, c := range s {
		if c == '\\' || c >= 0x80 {
			f.ok = false
			return nil, false
		}
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
	out := make([]T, len(list)) // [] is an empty list, not a missing one
	copy(out, list)
	clear(list) // the scratch outlives the message: keep none of its values alive
	*scratch = list[:0]
	*p = &out
}

func (f *fastReader) bundle(m *bundleMsg) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "block":
			f.once(&seen, 0)
			m.Block = nil
			if f.null() {
				continue
			}
			m.Block = new(rpcBlock[rpcTx, rpcWithdrawal])
			fastBlock(f, m.Block, (*fastReader).tx, &f.txs)
		case "receipts":
			f.once(&seen, 1)
			fastList(f, &m.Receipts, (*fastReader).receipt, &f.receipts)
		case "traces":
			f.once(&seen, 2)
			fastList(f, &m.Traces, (*fastReader).traceResult, &f.traces)
		case "header":
			f.once(&seen, 3)
			m.Header = nil
			if f.null() {
				continue
			}
			m.Header = new(rpcBlock[hash, rpcWithdrawal])
			fastBlock(f, m.Header, (*fastReader).hash, &f.hashes)
		case "logs":
			f.once(&seen, 4)
			fastList(f, &m.Logs, (*fastReader).log, &f.logs)
		case "transactions":
			f.once(&seen, 5)
			fastList(f, &m.Transactions, (*fastReader).tx, &f.txs)
		default:
			f.unknown(name, bundleFields)
		}
	}
}

// fastBlock reads a block (transactions read by tx: objects, or hashes in a header).
func fastBlock[T any](f *fastReader, b *rpcBlock[T, rpcWithdrawal], tx func(*fastReader, *T), scratch *[]T) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "number":
			f.once(&seen, 0)
			f.quantity(&b.Number)
		case "hash":
			f.once(&seen, 1)
			f.hash(&b.Hash)
		case "parentHash":
			f.once(&seen, 2)
			f.hash(&b.ParentHash)
		case "timestamp":
			f.once(&seen, 3)
			f.quantity(&b.Timestamp)
		case "miner":
			f.once(&seen, 4)
			f.address(&b.Miner)
		case "gasUsed":
			f.once(&seen, 5)
			f.quantity(&b.GasUsed)
		case "gasLimit":
			f.once(&seen, 6)
			f.quantity(&b.GasLimit)
		case "baseFeePerGas":
			f.once(&seen, 7)
			f.bigQuantity(&b.BaseFeePerGas)
		case "size":
			f.once(&seen, 8)
			f.quantity(&b.Size)
		case "nonce":
			f.once(&seen, 9)
			f.data(&b.Nonce)
		case "difficulty":
			f.once(&seen, 10)
			f.bigQuantity(&b.Difficulty)
		case "totalDifficulty":
			f.once(&seen, 11)
			f.bigQuantity(&b.TotalDifficulty)
		case "extraData":
			f.once(&seen, 12)
			f.data(&b.ExtraData)
		case "mixHash":
			f.once(&seen, 13)
			f.hash(&b.MixHash)
		case "sha3Uncles":
			f.once(&seen, 14)
			f.hash(&b.Sha3Uncles)
		case "logsBloom":
			f.once(&seen, 15)
			f.data(&b.LogsBloom)
		case "transactionsRoot":
			f.once(&seen, 16)
			f.hash(&b.TransactionsRoot)
		case "stateRoot":
			f.once(&seen, 17)
			f.hash(&b.StateRoot)
		case "receiptsRoot":
			f.once(&seen, 18)
			f.hash(&b.ReceiptsRoot)
		case "withdrawalsRoot":
			f.once(&seen, 19)
			f.hash(&b.WithdrawalsRoot)
		case "blobGasUsed":
			f.once(&seen, 20)
			f.quantity(&b.BlobGasUsed)
		case "excessBlobGas":
			f.once(&seen, 21)
			f.quantity(&b.ExcessBlobGas)
		case "parentBeaconBlockRoot":
			f.once(&seen, 22)
			f.hash(&b.ParentBeaconBlockRoot)
		case "requestsHash":
			f.once(&seen, 23)
			f.hash(&b.RequestsHash)
		case "transactions":
			f.once(&seen, 24)
			fastList(f, &b.Transactions, tx, scratch)
		case "withdrawals":
			f.once(&seen, 25)
			fastList(f, &b.Withdrawals, (*fastReader).withdrawal, &f.withdrawals)
		default:
			f.unknown(name, blockFields)
		}
	}
}

func (f *fastReader) tx(t *rpcTx) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "blockHash":
			f.once(&seen, 0)
			f.hash(&t.BlockHash)
		case "blockNumber":
			f.once(&seen, 1)
			f.quantity(&t.BlockNumber)
		case "transactionIndex":
			f.once(&seen, 2)
			f.quantity(&t.TransactionIndex)
		case "hash":
			f.once(&seen, 3)
			f.hash(&t.Hash)
		case "type":
			f.once(&seen, 4)
			f.quantity(&t.Type)
		case "from":
			f.once(&seen, 5)
			f.address(&t.From)
		case "to":
			f.once(&seen, 6)
			f.address(&t.To)
		case "value":
			f.once(&seen, 7)
			f.bigQuantity(&t.Value)
		case "gas":
			f.once(&seen, 8)
			f.quantity(&t.Gas)
		case "gasPrice":
			f.once(&seen, 9)
			f.bigQuantity(&t.GasPrice)
		case "maxFeePerGas":
			f.once(&seen, 10)
			f.bigQuantity(&t.MaxFeePerGas)
		case "maxPriorityFeePerGas":
			f.once(&seen, 11)
			f.bigQuantity(&t.MaxPriorityFeePerGas)
		case "maxFeePerBlobGas":
			f.once(&seen, 12)
			f.bigQuantity(&t.MaxFeePerBlobGas)
		case "nonce":
			f.once(&seen, 13)
			f.quantity(&t.Nonce)
		case "input":
			f.once(&seen, 14)
			f.data(&t.Input)
		default:
			f.unknown(name, txFields)
		}
	}
}

func (f *fastReader) withdrawal(w *rpcWithdrawal) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "index":
			f.once(&seen, 0)
			f.quantity(&w.Index)
		case "validatorIndex":
			f.once(&seen, 1)
			f.quantity(&w.ValidatorIndex)
		case "address":
			f.once(&seen, 2)
			f.address(&w.Address)
		case "amount":
			f.once(&seen, 3)
			f.bigQuantity(&w.Amount)
		default:
			f.unknown(name, withdrawalFields)
		}
	}
}

func (f *fastReader) receipt(r *rpcReceipt[rpcLog]) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "transactionHash":
			f.once(&seen, 0)
			f.hash(&r.TransactionHash)
		case "transactionIndex":
			f.once(&seen, 1)
			f.quantity(&r.TransactionIndex)
		case "blockHash":
			f.once(&seen, 2)
			f.hash(&r.BlockHash)
		case "blockNumber":
			f.once(&seen, 3)
			f.quantity(&r.BlockNumber)
		case "type":
			f.once(&seen, 4)
			f.quantity(&r.Type)
		case "status":
			f.once(&seen, 5)
			f.quantity(&r.Status)
		case "root":
			f.once(&seen, 6)
			f.data(&r.Root)
		case "gasUsed":
			f.once(&seen, 7)
			f.quantity(&r.GasUsed)
		case "cumulativeGasUsed":
			f.once(&seen, 8)
			f.quantity(&r.CumulativeGasUsed)
		case "effectiveGasPrice":
			f.once(&seen, 9)
			f.bigQuantity(&r.EffectiveGasPrice)
		case "contractAddress":
			f.once(&seen, 10)
			f.address(&r.ContractAddress)
		case "blobGasUsed":
			f.once(&seen, 11)
			f.quantity(&r.BlobGasUsed)
		case "blobGasPrice":
			f.once(&seen, 12)
			f.bigQuantity(&r.BlobGasPrice)
		case "logs":
			f.once(&seen, 13)
			fastList(f, &r.Logs, (*fastReader).log, &f.logs)
		default:
			f.unknown(name, receiptFields)
		}
	}
}

func (f *fastReader) log(l *rpcLog) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "address":
			f.once(&seen, 0)
			f.address(&l.Address)
		case "topics":
			f.once(&seen, 1)
			l.Topics = f.topicList()
		case "data":
			f.once(&seen, 2)
			f.data(&l.Data)
		case "logIndex":
			f.once(&seen, 3)
			f.quantity(&l.LogIndex)
		case "transactionHash":
			f.once(&seen, 4)
			f.hash(&l.TransactionHash)
		case "transactionIndex":
			f.once(&seen, 5)
			f.quantity(&l.TransactionIndex)
		case "blockHash":
			f.once(&seen, 6)
			f.hash(&l.BlockHash)
		case "blockNumber":
			f.once(&seen, 7)
			f.quantity(&l.BlockNumber)
		default:
			f.unknown(name, logFields)
		}
	}
}

// topicList reads a log's topics into a slab; more than the EVM can emit, or a null topic, goes to the
// reflective path, which explains them.
func (f *fastReader) topicList() *topics {
	null, ok := f.array()
	if !ok || null {
		return nil
	}
	if len(f.topics) == 0 {
		f.topics = make([]topics, min(64, f.n/2048+1)) // one for an item; a bundle's log takes 300 bytes or more
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

func (f *fastReader) traceResult(r *rpcTraceResult) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "txHash":
			f.once(&seen, 0)
			f.hash(&r.TxHash)
		case "result":
			f.once(&seen, 1)
			r.Result = nil
			if f.null() {
				continue
			}
			r.Result = new(rpcCallFrame)
			f.frame(r.Result, 0)
		case "error":
			f.once(&seen, 2)
			f.str(&r.Error)
		default:
			f.unknown(name, traceResultFields)
		}
	}
}

func (f *fastReader) frame(c *rpcCallFrame, depth int) {
	var seen uint32
	if depth > maxTraceDepth || !f.object() {
		f.ok = false
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "type":
			f.once(&seen, 0)
			f.str(&c.Type)
		case "from":
			f.once(&seen, 1)
			f.address(&c.From)
		case "to":
			f.once(&seen, 2)
			f.address(&c.To)
		case "value":
			f.once(&seen, 3)
			f.bigQuantity(&c.Value)
		case "gas":
			f.once(&seen, 4)
			f.quantity(&c.Gas)
		case "gasUsed":
			f.once(&seen, 5)
			f.quantity(&c.GasUsed)
		case "input":
			f.once(&seen, 6)
			f.data(&c.Input)
		case "output":
			f.once(&seen, 7)
			f.data(&c.Output)
		case "error":
			f.once(&seen, 8)
			f.str(&c.Error)
		case "calls":
			f.once(&seen, 9)
			c.Calls = nil
			null, ok := f.array()
			if !ok || null {
				continue
			}
			c.Calls = []rpcCallFrame{}
			for f.more() {
				c.Calls = append(c.Calls, rpcCallFrame{})
				f.frame(&c.Calls[len(c.Calls)-1], depth+1)
			}
		default:
			f.unknown(name, frameFields)
		}
	}
}

var (
	etlTxFields = newFields("type", "hash", "nonce", "transaction_index", "from_address", "to_address", "value",
		"gas", "gas_price", "input", "block_timestamp", "block_number", "block_hash", "max_fee_per_gas",
		"max_priority_fee_per_gas", "max_fee_per_blob_gas", "transaction_type", "receipt_cumulative_gas_used",
		"receipt_gas_used", "receipt_contract_address", "receipt_root", "receipt_status",
		"receipt_effective_gas_price", "receipt_blob_gas_used", "receipt_blob_gas_price")
	etlLogFields = newFields("type", "log_index", "transaction_hash", "transaction_index", "address", "data",
		"topics", "block_number", "block_timestamp", "block_hash")
)

// etlInt reads an ethereum-etl integer: plain digits that fit in a uint64 here, anything else by
// etlInt.UnmarshalJSON, whose refusal takes the item off the fast path.
func (f *fastReader) etlInt(n *etlInt) {
	*n = etlInt{}
	if !f.ok {
		return
	}
	v, err := f.dec.ReadValue()
	if err != nil {
		f.ok = false
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

func (f *fastReader) etlTx(t *etlTx) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "type":
			f.once(&seen, 0)
			f.itemType(&t.Type)
		case "hash":
			f.once(&seen, 1)
			f.hash(&t.Hash)
		case "nonce":
			f.once(&seen, 2)
			f.etlInt(&t.Nonce)
		case "transaction_index":
			f.once(&seen, 3)
			f.etlInt(&t.TransactionIndex)
		case "from_address":
			f.once(&seen, 4)
			f.address(&t.FromAddress)
		case "to_address":
			f.once(&seen, 5)
			f.address(&t.ToAddress)
		case "value":
			f.once(&seen, 6)
			f.etlInt(&t.Value)
		case "gas":
			f.once(&seen, 7)
			f.etlInt(&t.Gas)
		case "gas_price":
			f.once(&seen, 8)
			f.etlInt(&t.GasPrice)
		case "input":
			f.once(&seen, 9)
			f.data(&t.Input)
		case "block_timestamp":
			f.once(&seen, 10)
			f.etlInt(&t.BlockTimestamp)
		case "block_number":
			f.once(&seen, 11)
			f.etlInt(&t.BlockNumber)
		case "block_hash":
			f.once(&seen, 12)
			f.hash(&t.BlockHash)
		case "max_fee_per_gas":
			f.once(&seen, 13)
			f.etlInt(&t.MaxFeePerGas)
		case "max_priority_fee_per_gas":
			f.once(&seen, 14)
			f.etlInt(&t.MaxPriorityFeePerGas)
		case "max_fee_per_blob_gas":
			f.once(&seen, 15)
			f.etlInt(&t.MaxFeePerBlobGas)
		case "transaction_type":
			f.once(&seen, 16)
			f.etlInt(&t.TransactionType)
		case "receipt_cumulative_gas_used":
			f.once(&seen, 17)
			f.etlInt(&t.ReceiptCumulativeGasUsed)
		case "receipt_gas_used":
			f.once(&seen, 18)
			f.etlInt(&t.ReceiptGasUsed)
		case "receipt_contract_address":
			f.once(&seen, 19)
			f.address(&t.ReceiptContractAddress)
		case "receipt_root":
			f.once(&seen, 20)
			f.data(&t.ReceiptRoot)
		case "receipt_status":
			f.once(&seen, 21)
			f.etlInt(&t.ReceiptStatus)
		case "receipt_effective_gas_price":
			f.once(&seen, 22)
			f.etlInt(&t.ReceiptEffectiveGasPrice)
		case "receipt_blob_gas_used":
			f.once(&seen, 23)
			f.etlInt(&t.ReceiptBlobGasUsed)
		case "receipt_blob_gas_price":
			f.once(&seen, 24)
			f.etlInt(&t.ReceiptBlobGasPrice)
		default:
			f.unknown(name, etlTxFields)
		}
	}
}

func (f *fastReader) etlLog(l *etlLog) {
	var seen uint32
	if !f.object() {
		return
	}
	for {
		name, ok := f.member()
		if !ok {
			return
		}
		switch string(name) {
		case "type":
			f.once(&seen, 0)
			f.itemType(&l.Type)
		case "log_index":
			f.once(&seen, 1)
			f.etlInt(&l.LogIndex)
		case "transaction_hash":
			f.once(&seen, 2)
			f.hash(&l.TransactionHash)
		case "transaction_index":
			f.once(&seen, 3)
			f.etlInt(&l.TransactionIndex)
		case "address":
			f.once(&seen, 4)
			f.address(&l.Address)
		case "data":
			f.once(&seen, 5)
			f.data(&l.Data)
		case "topics":
			f.once(&seen, 6)
			l.Topics = f.topicList()
		case "block_number":
			f.once(&seen, 7)
			f.etlInt(&l.BlockNumber)
		case "block_timestamp":
			f.once(&seen, 8)
			f.etlInt(&l.BlockTimestamp)
		case "block_hash":
			f.once(&seen, 9)
			f.hash(&l.BlockHash)
		default:
			f.unknown(name, etlLogFields)
		}
	}
}
