package format

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	json "github.com/go-json-experiment/json/v1"
)

// Field types of the wire structs: go-ethereum's JSON types, wrapped in values that remember whether the
// field was there (absent and null are the same: not there). Pointers would tell the same, but encoding/json
// allocates every pointer field on its own, one allocation per field per transaction; these cost nothing,
// and the rows slice into the decoded structs instead of copying. The parsing is go-ethereum's.

type quantity struct {
	v  uint64
	ok bool
}

type hash struct {
	v  common.Hash
	ok bool
}

type address struct {
	v  common.Address
	ok bool
}

type bigQuantity struct {
	v  big.Int
	ok bool
}

type data struct {
	v  hexutil.Bytes
	ok bool
}

// topics holds a log's topics in place: one more slot than the EVM can fill, so that a fifth topic is
// seen (encoding/json drops array elements beyond a Go array's length, and the count is not kept). A
// topic cannot be null, so the topics are the leading set slots. A slice would cost up to three
// allocations per log as encoding/json grows it.
type topics [maxTopics + 1]topic

type topic struct {
	v  common.Hash
	ok bool
}

func (t *topic) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return &json.UnmarshalTypeError{Value: "null", Type: hashType}
	}
	if err := t.v.UnmarshalJSON(b); err != nil {
		return err
	}
	t.ok = true
	return nil
}

// topicsOn converts the topics of the log at c, which must be there, carving the list from *slab when it
// has room (nil: none): a message of many logs takes one allocation for all their lists (countTopics sizes
// it) instead of one a log, and an ethereum-etl log item its own item's.
func (c *conv) topicsOn(field string, p *topics, slab *[][]byte) [][]byte {
	if p == nil {
		c.fail(field, errMissing)
		return nil
	}
	n := countTopics(p)
	if n > maxTopics {
		c.fail(field, fmt.Errorf("has more than %d topics, which the EVM cannot emit", maxTopics))
		return nil
	}
	if n == 0 {
		return nil
	}
	var out [][]byte
	if slab != nil && len(*slab) >= n {
		out, *slab = (*slab)[:n:n], (*slab)[n:]
	} else {
		out = make([][]byte, n)
	}
	for i := range out {
		out[i] = p[i].v[:]
	}
	return out
}

// countTopics is the number of topics a log has (nil: none).
func countTopics(p *topics) int {
	n := 0
	for p != nil && n < len(p) && p[n].ok {
		n++
	}
	return n
}

func isNull(b []byte) bool { return string(b) == "null" }

func (q *quantity) UnmarshalJSON(b []byte) error {
	*q = quantity{}
	if isNull(b) {
		return nil
	}
	var v hexutil.Uint64
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*q = quantity{uint64(v), true}
	return nil
}

func (h *hash) UnmarshalJSON(b []byte) error {
	*h = hash{}
	if isNull(b) {
		return nil
	}
	if err := h.v.UnmarshalJSON(b); err != nil {
		return err
	}
	h.ok = true
	return nil
}

func (a *address) UnmarshalJSON(b []byte) error {
	*a = address{}
	if isNull(b) {
		return nil
	}
	if err := a.v.UnmarshalJSON(b); err != nil {
		return err
	}
	a.ok = true
	return nil
}

func (q *bigQuantity) UnmarshalJSON(b []byte) error {
	*q = bigQuantity{}
	if isNull(b) {
		return nil
	}
	if err := (*hexutil.Big)(&q.v).UnmarshalJSON(b); err != nil {
		return err
	}
	q.ok = true
	return nil
}

func (d *data) UnmarshalJSON(b []byte) error {
	*d = data{}
	if isNull(b) {
		return nil
	}
	if err := d.v.UnmarshalJSON(b); err != nil {
		return err
	}
	d.ok = true
	return nil
}

// conv converts the wire values of one object into column values. It keeps the first failure and turns
// every later call into a no-op, so an object's conversion reads as a list of fields with one check at the
// end. Each converter checks what its column can hold: a value the decoder let through but Postgres
// rejected would fail a whole batch instead of one message.
type conv struct {
	at
	err *decodeError
}

func (c *conv) fail(field string, err error) {
	if c.err == nil {
		c.err = c.at.field(field, err)
	}
}

func (c *conv) hash(field string, h *hash) []byte {
	if !h.ok {
		c.fail(field, errMissing)
		return nil
	}
	return h.v[:]
}

func (c *conv) address(field string, a *address) []byte {
	if !a.ok {
		c.fail(field, errMissing)
		return nil
	}
	return a.v[:]
}

func (c *conv) big(field string, q *bigQuantity) *big.Int {
	if !q.ok {
		c.fail(field, errMissing)
		return nil
	}
	return &q.v
}

// bytes is required data; "0x" is there, and empty.
func (c *conv) bytes(field string, d *data) []byte {
	if !d.ok {
		c.fail(field, errMissing)
		return nil
	}
	return nonNil(d.v)
}

// int64 is a required quantity of a bigint column.
func (c *conv) int64(field string, q *quantity) uint64 {
	if !q.ok {
		c.fail(field, errMissing)
		return 0
	}
	if q.v > math.MaxInt64 {
		c.fail(field, errNotInt64)
		return 0
	}
	return q.v
}

// optInt64 is an optional quantity of a nullable bigint column. The result points at slot, so that the
// caller can hand out the slots of one slab and a message's many nullable integers cost one allocation.
func (c *conv) optInt64(field string, q *quantity, slot *int64) *int64 {
	if !q.ok {
		return nil
	}
	if q.v > math.MaxInt64 {
		c.fail(field, errNotInt64)
		return nil
	}
	*slot = int64(q.v)
	return slot
}

func (c *conv) int32(field string, q *quantity) int32 {
	if !q.ok {
		c.fail(field, errMissing)
		return 0
	}
	if q.v > math.MaxInt32 {
		c.fail(field, errNotInt32)
		return 0
	}
	return int32(q.v)
}

func (c *conv) time(field string, q *quantity) time.Time {
	if !q.ok {
		c.fail(field, errMissing)
		return time.Time{}
	}
	return c.unix(field, q.v)
}

func (c *conv) unix(field string, s uint64) time.Time {
	if s > maxUnixSeconds {
		c.fail(field, errTime)
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

// txType is the EIP-2718 type. Nodes from before typed transactions send none, and then every transaction
// is legacy.
func (c *conv) txType(field string, q *quantity) int16 {
	if !q.ok {
		return 0
	}
	if q.v > math.MaxInt16 {
		c.fail(field, errNotInt16)
		return 0
	}
	return int16(q.v)
}

// status is EIP-658's outcome; pre-Byzantium receipts have none (or null) and a state root instead.
func (c *conv) status(field string, q *quantity, slot *int16) *int16 {
	if !q.ok {
		return nil
	}
	if q.v > 1 {
		c.fail(field, errStatus)
		return nil
	}
	*slot = int16(q.v)
	return slot
}

func optBig(q *bigQuantity) *big.Int {
	if !q.ok {
		return nil
	}
	return &q.v
}

func optHash(h *hash) []byte {
	if !h.ok {
		return nil
	}
	return h.v[:]
}

func optAddress(a *address) []byte {
	if !a.ok {
		return nil
	}
	return a.v[:]
}

func optBytes(d *data) []byte {
	if !d.ok {
		return nil
	}
	return nonNil(d.v)
}

// stateRoot is a pre-Byzantium receipt's post-state root. go-ethereum's types.Receipt encodes a receipt
// without one as "root": "0x" (its RPC leaves the field out): both are NULL.
func stateRoot(d *data) []byte {
	if !d.ok || len(d.v) == 0 {
		return nil
	}
	return d.v
}

// contractAddress is NULL unless the transaction created a contract. go-ethereum's types.Receipt encodes
// "no contract" as the zero address, and its RPC turns that into null the same way: no creation can yield
// the zero address.
func contractAddress(a *address) []byte {
	if !a.ok || a.v == (common.Address{}) {
		return nil
	}
	return a.v[:]
}

// nonNil keeps empty data empty rather than NULL: "0x" is a value.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
