package typed

import (
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/store/chain"
)

// AddLog appends to rows the typed rows of one log (lg, with l its ABI form): a row in every table whose
// event it is, of every set it belongs to, and, for a factory's creation event, the child's registration in
// chain.ChildrenTable. Rows of a factory set are candidates, for any address: the store keeps those of
// registered children (see Discovery). A log that fits no table adds nothing; one that a table's event
// matches by topic0 and topic count but whose data does not decode adds nothing to that table and is
// returned as the error, after the other tables were filled.
func (ts *Tables) AddLog(rows *chain.Rows, lg *chain.Log, l abi.Log) error {
	_, err := ts.AddLogOwned(rows, lg, l)
	return err
}

// AddLogOwned is AddLog that also reports whether a table took the log for good: one of a set bound to
// addresses or to any address, whose row no factory gate can drop. The decoder need not build the generic
// events row of such a log when the configuration keeps typed events out of events (UntypedEvents).
func (ts *Tables) AddLogOwned(rows *chain.Rows, lg *chain.Log, l abi.Log) (owned bool, err error) {
	if len(l.Topics) == 0 {
		return false, nil
	}
	k := topicKey{l.Topics[0], len(l.Topics)}
	var firstErr error
	var decoded *abi.EventSpec
	var vals []any
	for _, t := range ts.byTopic[k] {
		if !t.covers(l.Address, lg.BlockNumber) {
			continue
		}
		if decoded != t.event {
			var err error
			if vals, err = t.event.Values(l, nil); err != nil {
				decoded, vals = nil, nil
				if firstErr == nil {
					firstErr = fmt.Errorf("decoding %s for table %s: %w", t.event.Signature, t.Name, err)
				}
				continue
			}
			decoded = t.event
		}
		row := make([]any, len(t.Columns))
		row[0], row[1], row[2], row[3], row[4], row[5] = int64(lg.BlockNumber), lg.BlockTimestamp, lg.TransactionHash,
			lg.TransactionIndex, lg.LogIndex, lg.Address
		t.fill(row[len(eventPosition):], vals)
		rows.AddTyped(t.Table, row)
		owned = owned || t.Set.Factory == nil
	}
	for _, s := range ts.factories[k] {
		if l.Address != s.Factory.Address || lg.BlockNumber < s.StartBlock {
			continue
		}
		vals, err := s.Factory.Event.Values(l, nil)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("decoding factory event %s of set %s: %w", s.Factory.Event.Signature, s.Name, err)
			}
			continue
		}
		rows.AddTyped(chain.ChildrenTable, chain.ChildRow(lg, s.Name, vals[s.Factory.Param].([]byte)))
	}
	return owned, firstErr
}

// AddTransaction appends the typed call rows of one transaction: a row in every call table whose function
// its input's selector is, of every set whose contract it calls, at trace address {}.
func (ts *Tables) AddTransaction(rows *chain.Rows, tx *chain.Transaction) error {
	_, err := ts.AddTransactionOwned(rows, tx)
	return err
}

// AddTransactionOwned is AddTransaction that also reports whether a table took the call for good (as
// AddLogOwned): the decoder need not build its generic calls row when the configuration keeps typed calls
// out of calls (UntypedCalls).
func (ts *Tables) AddTransactionOwned(rows *chain.Rows, tx *chain.Transaction) (owned bool, err error) {
	if tx.ToAddress == nil {
		return false, nil
	}
	return ts.addCall(rows, call{block: tx.BlockNumber, time: tx.BlockTimestamp, hash: tx.Hash, index: tx.TransactionIndex,
		status: tx.Status, from: tx.FromAddress, to: tx.ToAddress, input: tx.Input, path: []int32{}})
}

// AddTrace appends the typed call rows of one internal call: a frame below its transaction's own (whose
// rows AddTransaction gives) of type call or staticcall, the frames that run the callee's code in its own
// context. A delegatecall runs the callee's code for the caller (a proxy's implementation, a library), so
// it is not a call of the callee's contract; the call into the proxy, a frame above it, is.
func (ts *Tables) AddTrace(rows *chain.Rows, tr *chain.Trace) error {
	if len(tr.TraceAddress) == 0 || tr.ToAddress == nil || (tr.Type != "call" && tr.Type != "staticcall") {
		return nil
	}
	status := tr.Status
	_, err := ts.addCall(rows, call{block: tr.BlockNumber, time: tr.BlockTimestamp, hash: tr.TransactionHash, index: tr.TransactionIndex,
		status: &status, from: tr.FromAddress, to: tr.ToAddress, input: tr.Input, path: tr.TraceAddress})
	return err
}

// call is what a call table's row holds of a transaction or a frame.
type call struct {
	block    uint64
	time     time.Time
	hash     []byte
	index    int32
	status   *int16
	from, to []byte
	input    []byte
	path     []int32
}

func (ts *Tables) addCall(rows *chain.Rows, c call) (owned bool, err error) {
	if len(c.input) < 4 {
		return false, nil
	}
	to := common.BytesToAddress(c.to)
	var firstErr error
	var decoded *abi.FunctionSpec
	var vals []any
	for _, t := range ts.bySelector[[4]byte(c.input[:4])] {
		if !t.covers(to, c.block) {
			continue
		}
		if decoded != t.function {
			var err error
			if vals, err = t.function.Values(c.input, nil); err != nil {
				decoded, vals = nil, nil
				if firstErr == nil {
					firstErr = fmt.Errorf("decoding %s for table %s: %w", t.function.Signature, t.Name, err)
				}
				continue
			}
			decoded = t.function
		}
		row := make([]any, len(t.Columns))
		row[0], row[1], row[2], row[3] = int64(c.block), c.time, c.hash, c.index
		row[4], row[5], row[6] = c.status, c.from, c.to
		t.fill(row[len(callPosition):len(row)-1], vals)
		row[len(row)-1] = c.path
		rows.AddTyped(t.Table, row)
		owned = owned || t.Set.Factory == nil
	}
	return owned, firstErr
}

// Derive fills rows.Typed from rows.Logs, rows.Transactions and rows.Traces, replacing what it held, and
// returns how many logs, transactions and internal calls an event or function matched but could not be
// decoded. It is what
// chain.Discovery.Derive and a redecode call; the live path calls AddLog and AddTransaction from
// internal/decode, which builds each abi.Log once for every decoder.
func (ts *Tables) Derive(rows *chain.Rows) (undecodable int) {
	rows.Typed = nil
	var topics []common.Hash
	for i := range rows.Logs {
		lg := &rows.Logs[i]
		topics = topics[:0]
		for _, t := range lg.Topics {
			topics = append(topics, common.BytesToHash(t))
		}
		if ts.AddLog(rows, lg, abi.Log{Address: common.BytesToAddress(lg.Address), Topics: topics, Data: lg.Data}) != nil {
			undecodable++
		}
	}
	for i := range rows.Transactions {
		if ts.AddTransaction(rows, &rows.Transactions[i]) != nil {
			undecodable++
		}
	}
	for i := range rows.Traces {
		if ts.AddTrace(rows, &rows.Traces[i]) != nil {
			undecodable++
		}
	}
	return undecodable
}

// covers reports whether the table holds a's rows at block n, as far as decoding can tell: from the set's
// start block, of its addresses, while an ABI version that has the table's entry is in force. A factory set
// covers every address here, and the store keeps only its children.
func (t *Table) covers(a common.Address, n uint64) bool {
	s := t.Set
	if n < s.StartBlock || (s.Addresses != nil && !s.Addresses[a]) {
		return false
	}
	for _, r := range t.ranges {
		if r.holds(n) {
			return true
		}
	}
	return false
}

func (t *Table) fill(dst []any, vals []any) {
	for i, v := range vals {
		if t.params[i] == colBigint {
			v = v.(*big.Int).Int64() // sqlType chose bigint only for widths that fit
		}
		dst[i] = v
	}
}

// Discovery is what the store needs to gate the rows of factory sets by their registered children; nil
// when no set has a factory.
func (ts *Tables) Discovery() *chain.Discovery {
	if !ts.hasFactory {
		return nil
	}
	d := &chain.Discovery{Derive: func(raw *chain.Rows) { ts.Derive(raw) }}
	for _, t := range ts.All {
		if t.Set.Factory != nil {
			d.Gated = append(d.Gated, chain.Gated{Table: t.Table, Set: t.Set.Name, AddressColumn: contractColumn(t)})
		}
	}
	return d
}

func contractColumn(t *Table) int {
	if t.Kind == KindCall {
		return len(callPosition) - 1
	}
	return len(eventPosition) - 1
}
