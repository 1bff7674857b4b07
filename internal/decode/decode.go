package decode

import (
	"slices"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store/chain"
)

// Metrics counts what decoding finds; chainsink's Prometheus metrics (internal/metrics) implement it. It must
// be safe for concurrent use.
type Metrics interface {
	// EventDecoded counts a log decoded into an event.
	EventDecoded(abiName, event string)
	// LogUndecoded counts a log whose topic0 an ABI knows but whose topics or data do not fit it.
	LogUndecoded()
}

// Decoder is safe for concurrent use.
type Decoder struct {
	reg     *abi.Registry
	metrics Metrics
	tables  *typed.Tables
}

// New returns a decoder over reg; m may be nil (no counting).
func New(reg *abi.Registry, m Metrics) *Decoder {
	return &Decoder{reg: reg, metrics: m}
}

// WithTables returns a decoder that also fills the typed tables ts (nil: none).
func (d *Decoder) WithTables(ts *typed.Tables) *Decoder {
	out := *d
	out.tables = ts
	return &out
}

// Decode turns one message of format f into rows, decoded ones included, or into a dead-letter failure.
func (d *Decoder) Decode(f format.Format, key, value []byte) (chain.Rows, *chain.Failure) {
	rows, failure := format.Decode(f, key, value)
	if failure != nil {
		return chain.Rows{}, failure
	}
	d.Enrich(&rows)
	rows.Contracts = Contracts(&rows, f.Mode())
	return rows, nil
}

// Format is the messages of one wire format decoded with d's ABIs: what `chainsink run` gives the indexer
// for a topic (it is an indexer.Format).
func (d *Decoder) Format(f format.Format) Format { return Format{d: d, f: f} }

// Format is a wire format decoded with a Decoder's ABIs. Build it with Decoder.Format.
type Format struct {
	d *Decoder
	f format.Format
}

// Name is the wire format's name, e.g. "bundle".
func (f Format) Name() string { return string(f.f) }

// Mode is how the wire format's rows replace stored rows.
func (f Format) Mode() chain.Mode { return f.f.Mode() }

// Decode decodes one message; see Decoder.Decode.
func (f Format) Decode(key, value []byte) (chain.Rows, *chain.Failure) {
	return f.d.Decode(f.f, key, value)
}

// scratch collects one message's derived rows. Its slices are reused from message to message, and the
// result is copied out at its exact size: appending to fresh slices instead doubled them up to a block's
// ~240 events, and that garbage was a tenth of all chainsink allocated in make bench.
type scratch struct {
	transfers []chain.TokenTransfer
	events    []chain.Event
	calls     []chain.Call
	topics    []common.Hash
	moved     []abi.Transfer
	addresses []byte       // the transfers' addresses: a slab for the rows of one message, never reused
	perSlab   int          // addresses a slab holds: two for each of the message's logs, at most 128
	args      abi.ArgsSlab // the events' args, the same way
}

// argsPerLog is about what an event's JSON args take on average (136 bytes in mainnet block 17173049).
const argsPerLog = 160

// address copies a onto the message's slab: an allocation for up to 128 addresses, not one for each (and no
// more than an item's one log needs).
func (sc *scratch) address(a common.Address) []byte {
	if cap(sc.addresses)-len(sc.addresses) < len(a) {
		sc.addresses = make([]byte, 0, max(1, sc.perSlab)*len(a))
	}
	n := len(sc.addresses)
	sc.addresses = append(sc.addresses, a[:]...)
	return sc.addresses[n : n+len(a) : n+len(a)]
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Enrich derives token transfers, events, calls and the rows of the typed tables from rows' logs and
// transactions, replacing any it had. A log an ABI claims but cannot decode stays raw in logs (never dropped,
// never half-decoded) and is counted.
func (d *Decoder) Enrich(rows *chain.Rows) {
	sc := scratchPool.Get().(*scratch)
	defer func() {
		// The rows hold copies by now; the scratch must not keep what they point to alive.
		clear(sc.transfers)
		clear(sc.events)
		clear(sc.calls)
		clear(sc.moved)
		sc.transfers, sc.events, sc.calls, sc.moved = sc.transfers[:0], sc.events[:0], sc.calls[:0], sc.moved[:0]
		sc.addresses, sc.args = nil, abi.ArgsSlab{}
		scratchPool.Put(sc)
	}()
	rows.Typed = nil
	d.enrich(rows, sc)
	// Fresh slices, never the scratch: the caller's Rows may share backing arrays with another value.
	rows.TokenTransfers, rows.Events, rows.Calls = clone(sc.transfers), clone(sc.events), clone(sc.calls)
}

// DeriveTyped fills only the typed tables' rows (and factory registrations) of rows, replacing those it had:
// what `redecode --typed-only` needs, without decoding the events, calls and transfers it would leave alone.
func (d *Decoder) DeriveTyped(rows *chain.Rows) {
	rows.Typed = nil
	if d.tables != nil {
		undecodable := d.tables.Derive(rows)
		if d.metrics != nil {
			for range undecodable {
				d.metrics.LogUndecoded()
			}
		}
	}
}

// clone copies s into a new slice of its length, or returns nil for an empty s (slices.Clone would return a
// zero-capacity slice of the scratch array, keeping it alive).
func clone[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func (d *Decoder) enrich(rows *chain.Rows, sc *scratch) {
	sc.perSlab = 2 * min(64, len(rows.Logs))
	topics := sc.topics
	defer func() { sc.topics = topics[:0] }()
	for i := range rows.Logs {
		lg := &rows.Logs[i]
		topics = topics[:0]
		for _, t := range lg.Topics {
			topics = append(topics, common.BytesToHash(t))
		}
		l := abi.Log{Address: common.BytesToAddress(lg.Address), Topics: topics, Data: lg.Data}
		owned := false
		if d.tables != nil {
			var err error
			if owned, err = d.tables.AddLogOwned(rows, lg, l); err != nil && d.metrics != nil {
				d.metrics.LogUndecoded()
			}
		}
		if moved, err := abi.AppendTokenTransfers(sc.moved[:0], l); err == nil {
			sc.moved = moved
			for i := range moved {
				t := &moved[i]
				tt := chain.TokenTransfer{BlockNumber: lg.BlockNumber, LogIndex: lg.LogIndex,
					BatchIndex: int32(t.BatchIndex), TransactionHash: lg.TransactionHash, BlockTimestamp: lg.BlockTimestamp,
					TokenAddress: lg.Address, FromAddress: sc.address(t.From), ToAddress: sc.address(t.To),
					TokenID: t.TokenID, Value: t.Value, Standard: t.Standard}
				sc.transfers = append(sc.transfers, tt)
			}
		}
		if owned && d.tables.UntypedEvents {
			continue // its typed row is its only decoded row; the store leaves the events of the rest out
		}
		// The events' args share the message's slabs, sized for the logs left (most are decoded).
		sc.args.Next = min(64<<10, (len(rows.Logs)-i)*argsPerLog)
		ev, ok, err := d.reg.DecodeLogOn(l, &sc.args)
		switch {
		case err != nil:
			if d.metrics != nil {
				d.metrics.LogUndecoded()
			}
		case ok:
			sc.events = append(sc.events, chain.Event{BlockNumber: lg.BlockNumber, LogIndex: lg.LogIndex,
				TransactionHash: lg.TransactionHash, BlockTimestamp: lg.BlockTimestamp, Address: lg.Address,
				EventName: ev.Name, Signature: ev.Signature, ABIName: ev.ABIName, Args: ev.Args})
			if d.metrics != nil {
				d.metrics.EventDecoded(ev.ABIName, ev.Name)
			}
		}
	}
	for i := range rows.Transactions {
		tx := &rows.Transactions[i]
		owned := false
		if d.tables != nil {
			// Calldata that does not fit its function is only not decoded, as below.
			owned, _ = d.tables.AddTransactionOwned(rows, tx)
		}
		if tx.ToAddress == nil || len(tx.Input) < 4 || (owned && d.tables.UntypedCalls) {
			continue // with calls_table: untyped, an owned call's typed row is its only decoded row
		}
		to := common.BytesToAddress(tx.ToAddress)
		call, ok, err := d.reg.DecodeCall(&to, tx.Input)
		if err != nil || !ok {
			continue
		}
		sc.calls = append(sc.calls, chain.Call{BlockNumber: tx.BlockNumber, TransactionIndex: tx.TransactionIndex,
			TransactionHash: tx.Hash, BlockTimestamp: tx.BlockTimestamp, ToAddress: tx.ToAddress, Status: tx.Status,
			MethodName: call.Name, Signature: call.Signature, ABIName: call.ABIName, Args: call.Args})
	}
	if d.tables != nil {
		for i := range rows.Traces {
			_ = d.tables.AddTrace(rows, &rows.Traces[i]) // as for transactions
		}
	}
}
