package format

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// Format names the shape of a topic's messages.
type Format string

const (
	// Bundle is one message per block: the block with full transactions and all its receipts.
	Bundle Format = "bundle"
	// EthereumETL is one ethereum-etl item (block, transaction, log, ...) per message.
	EthereumETL Format = "ethereum-etl"
	// BundleMerge is bundles whose rows are merged into their height by their own keys, as ethereum-etl
	// items are, instead of replacing the height: what a set's own filtered backfill publishes (`backfill
	// --config F --sets S`), next to the topic that holds the rest of the heights.
	BundleMerge Format = "bundle-merge"
)

// Parse validates a format given by a user (flag, environment, config file).
func Parse(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case Bundle, EthereumETL, BundleMerge:
		return f, nil
	}
	return "", fmt.Errorf("unknown message format %q: want %q, %q or %q", s, Bundle, EthereumETL, BundleMerge)
}

func (f Format) String() string { return string(f) }

// Mode is how the rows of f's messages replace stored rows: a bundle carries whole blocks, so it replaces
// them; an ethereum-etl item carries one row, so it replaces only that row, and so do the rows of a merged
// bundle.
func (f Format) Mode() chain.Mode {
	if f == EthereumETL || f == BundleMerge {
		return chain.ReplaceRows
	}
	return chain.ReplaceBlocks
}

// MaxMessageBytes is the default limit on a message's value. The biggest mainnet bundles are a few MiB;
// anything far beyond is more likely garbage than a block, and parsing it would cost memory for nothing.
const MaxMessageBytes = 16 << 20

// Failure reasons. They are stable: dashboards and `chainsink status` group dead letters by them.
const (
	ReasonEmpty            = "empty"             // no value (e.g. a tombstone)
	ReasonTooLarge         = "too_large"         // value above the size limit; not parsed
	ReasonInvalidJSON      = "invalid_json"      // not JSON at all
	ReasonBadField         = "bad_field"         // JSON, but a field is missing, mistyped, malformed or out of range
	ReasonReceiptsMismatch = "receipts_mismatch" // a bundle's receipts do not belong to its transactions
	ReasonTracesMismatch   = "traces_mismatch"   // a bundle's traces do not belong to its transactions, or the node failed to trace one
	ReasonUnknownItemType  = "unknown_item_type" // an ethereum-etl item of a type chainsink does not know
	// ReasonUnknownFormat means the caller passed a Format that Parse would have rejected: a configuration bug.
	ReasonUnknownFormat = "unknown_format"
	// ReasonInternalError means the decoder panicked: a chainsink bug. The message is kept as a dead letter
	// so that one bad block cannot crash-loop the consumer; the stack is in the error.
	ReasonInternalError = "internal_error"
)

// Decoder decodes the messages of one format. The zero MaxMessageBytes means the package default. A Decoder
// holds no state, so one value can be used from many goroutines.
type Decoder struct {
	Format          Format
	MaxMessageBytes int
}

// Decode turns one message into rows with the default size limit. See Decoder.Decode.
func Decode(f Format, key, value []byte) (chain.Rows, *chain.Failure) {
	return Decoder{Format: f}.Decode(key, value)
}

// Decode turns one message into rows, or into a Failure that explains why it cannot (see the package
// documentation for the formats and the reasons). Ignored input (an ethereum-etl item that chainsink does
// not store, like a token_transfer) gives empty rows and no failure.
func (d Decoder) Decode(key, value []byte) (rows chain.Rows, failure *chain.Failure) {
	defer func() {
		if p := recover(); p != nil {
			rows = chain.Rows{}
			failure = &chain.Failure{Reason: ReasonInternalError,
				Err: fmt.Errorf("decode %s message: decoder panic (a chainsink bug): %v\n%s", d.Format, p, debug.Stack())}
		}
	}()
	limit := d.MaxMessageBytes
	if limit <= 0 {
		limit = MaxMessageBytes
	}
	switch {
	case len(value) == 0 && (d.Format == Bundle || d.Format == BundleMerge) && len(key) > 0:
		// A tombstone: the producer says that height is no longer part of the chain (it became shorter).
		n, err := strconv.ParseUint(string(key), 10, 64)
		if err != nil {
			return rows, d.fail(ReasonEmpty, fmt.Errorf("a tombstone's key %q is not a block height", clip(key)))
		}
		rows.Tombstones = []uint64{n}
		return rows, nil
	case len(value) == 0:
		return rows, d.fail(ReasonEmpty, errors.New("message has no value"))
	case len(value) > limit:
		return rows, d.fail(ReasonTooLarge, fmt.Errorf("value is %d bytes, above the limit of %d", len(value), limit))
	}
	var err *decodeError
	switch d.Format {
	case Bundle, BundleMerge:
		rows, err = decodeBundle(key, value)
	case EthereumETL:
		rows, err = decodeETL(value)
	default:
		return rows, d.fail(ReasonUnknownFormat, fmt.Errorf("unknown format %q", string(d.Format)))
	}
	if err != nil {
		return chain.Rows{}, d.fail(err.reason, err.err)
	}
	return rows, nil
}

func (d Decoder) fail(reason string, err error) *chain.Failure {
	return &chain.Failure{Reason: reason, Err: fmt.Errorf("decode %s message: %w", d.Format, err)}
}

// decodeError is a failure before it is wrapped with the format.
type decodeError struct {
	reason string
	err    error
}

func failWith(reason string, err error) *decodeError { return &decodeError{reason: reason, err: err} }

// FieldError says which field of a message is wrong. Path is the JSON path inside the message, e.g.
// "block.transactions[3].gas" or "receipts[0].logs[2].topics"; for an ethereum-etl item it starts with the
// item type, e.g. "transaction.gas".
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

var (
	errMissing  = errors.New("missing required field")
	errNotInt64 = fmt.Errorf("out of range: above %d, the largest Postgres bigint", int64(1<<63-1))
	errNotInt32 = fmt.Errorf("out of range: above %d, the largest Postgres integer", int32(1<<31-1))
	errNotInt16 = fmt.Errorf("out of range: above %d, the largest Postgres smallint", int16(1<<15-1))
	errTime     = fmt.Errorf("out of range: after %s, the last time Postgres can store",
		time.Unix(maxUnixSeconds, 0).UTC().Format(time.RFC3339))
	errStatus = errors.New("out of range: a receipt status is 0 or 1")
)

// maxUnixSeconds is 294276-12-31T23:59:59Z, the last second of timestamptz (Postgres counts microseconds
// since 2000 in an int64). A later time would decode but make the COPY fail.
const maxUnixSeconds = 9224318015999

// at is the position of the object being converted, kept as parts so that no path string is built unless
// something fails. i < 0 means "not in a list".
type at struct {
	list string
	i    int
	sub  string
	j    int
}

func (a at) path(field string) string {
	var b strings.Builder
	b.WriteString(a.list)
	if a.i >= 0 {
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(a.i))
		b.WriteByte(']')
	}
	if a.sub != "" {
		b.WriteByte('.')
		b.WriteString(a.sub)
		if a.j >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(a.j))
			b.WriteByte(']')
		}
	}
	if field != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(field)
	}
	return b.String()
}

// field is the failure of one field: always bad_field.
func (a at) field(field string, err error) *decodeError {
	return failWith(ReasonBadField, &FieldError{Path: a.path(field), Err: err})
}

// jsonError turns an encoding/json error into a failure. Syntax errors are invalid_json; everything else
// (wrong JSON type, bad hex, a number too big for its type) is bad_field at the path the decoder reports.
func (a at) jsonError(err error) *decodeError {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return failWith(ReasonInvalidJSON, fmt.Errorf("invalid JSON at byte %d: %w", syn.Offset, err))
	}
	if te := typeError(err); te != nil {
		return a.field(te.Field, fmt.Errorf("invalid value (%s), want %s", te.Value, describe(te.Type)))
	}
	return a.field("", fmt.Errorf("invalid value (%w)", err))
}

// typeError finds a type error in err. go-ethereum's hex types report theirs as encoding/json's
// UnmarshalTypeError; the decoder's own are the json package's (a different type until encoding/json is
// built on v2, Go 1.27). Both carry the same fields.
// wireOptions decode the wire formats with v1's semantics (names matched case-insensitively, duplicate names
// and invalid UTF-8 accepted, an array of any length, a name given twice merged into what the first gave,
// elements of an array included), through v2's Unmarshal: the same values, in 14 % less
// time for a mainnet bundle (BenchmarkDecodeBundle; v1's defaults cost the rest, v2 does the same work).
// FuzzDecodeBundle and FuzzDecodeETL compare the two on every input. Failures are still explained with v1
// (decodeAt), field by field.
var wireOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), json.MatchCaseSensitiveDelimiter(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true), json.UnmarshalArrayFromAnyLength(true),
	json.MergeWithLegacySemantics(true))

// unmarshalWire decodes a message (or an item) of a wire format into v.
func unmarshalWire(data []byte, v any) error { return jsonv2.Unmarshal(data, v, wireOptions) }

func typeError(err error) *json.UnmarshalTypeError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te
	}
	var std *stdjson.UnmarshalTypeError
	if errors.As(err, &std) {
		return &json.UnmarshalTypeError{Value: std.Value, Type: std.Type, Offset: std.Offset, Field: std.Field}
	}
	return nil
}

// decodeAt decodes raw, the object at a, into v, which points to a struct. On failure it decodes each
// member on its own to name the culprit: the v2-based decoder does not name the field of an error that a
// field's UnmarshalJSON makes up (common.Hash of the wrong length is one, go-ethereum's hex errors all are).
// Only failures pay for this.
func decodeAt(a at, raw []byte, v any) *decodeError {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return a.jsonError(err)
	}
	if name, merr := badMember(raw, reflect.TypeOf(v).Elem()); name != "" {
		if te := typeError(merr); te != nil {
			return a.field(name, fmt.Errorf("invalid value (%s), want %s", te.Value, describe(te.Type)))
		}
		return a.field(name, fmt.Errorf("invalid value (%w)", merr))
	}
	return a.jsonError(err)
}

// badMember returns the first member of the JSON object raw, in key order, that does not decode into the
// field of struct type t that encoding/json would put it in.
func badMember(raw []byte, t reflect.Type) (string, error) {
	var members map[string]json.RawMessage
	if t.Kind() != reflect.Struct || json.Unmarshal(raw, &members) != nil {
		return "", nil
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, f := range reflect.VisibleFields(t) { // the fields of embedded structs too (traces' frames)
			if f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !strings.EqualFold(name, k) {
				continue
			}
			if err := json.Unmarshal(members[k], reflect.New(f.Type).Interface()); err != nil {
				return k, err
			}
		}
	}
	return "", nil
}

var (
	hashType    = reflect.TypeFor[common.Hash]()
	addressType = reflect.TypeFor[common.Address]()
	bigType     = reflect.TypeFor[*hexutil.Big]()
	uint64Type  = reflect.TypeFor[hexutil.Uint64]()
	bytesType   = reflect.TypeFor[hexutil.Bytes]()
	etlIntType  = reflect.TypeFor[etlInt]()
)

// describe names what a field wants in the words of the wire format rather than of Go.
func describe(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer && t != bigType {
		t = t.Elem()
	}
	switch t {
	case hashType:
		return "a 32-byte 0x-prefixed hex string"
	case addressType:
		return "a 20-byte 0x-prefixed hex string"
	case bigType:
		return "a 0x-prefixed hex quantity of at most 256 bits"
	case uint64Type:
		return "a 0x-prefixed hex quantity of at most 64 bits"
	case bytesType:
		return "0x-prefixed hex data"
	case etlIntType:
		return "a non-negative integer of at most 256 bits"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return t.String()
}
