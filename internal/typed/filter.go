package typed

import (
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
)

// Filtered mode (`chainsink backfill --config`, issue 17) fetches only what a configuration's tables need:
// the logs of its sets' events, the creation logs of their factories, and the transactions that call the
// functions of sets with call tables. A Filter says what to ask the node for and what of its answer to
// keep; it is pure, and the fetcher keeps the factories' children it has seen.

// Filter is the selection of a configuration's tables.
type Filter struct {
	ts *Tables
}

// Filter returns the selection of ts.
func (ts *Tables) Filter() *Filter { return &Filter{ts: ts} }

// Children are the contracts that factories registered so far, by set; the fetcher adds to it with
// Filter.Register.
type Children map[string]map[common.Address]bool

// LogQuery is one eth_getLogs filter: logs of Addresses (any address when empty) whose topic0 is one of
// Topic0s.
type LogQuery struct {
	Addresses []common.Address
	Topic0s   []common.Hash
}

// Factories is the query of every factory's creation events; ok is false when no set has a factory.
func (f *Filter) Factories() (q LogQuery, ok bool) {
	for _, s := range f.ts.Sets {
		if s.Factory == nil {
			continue
		}
		q.Addresses = appendNew(q.Addresses, s.Factory.Address)
		q.Topic0s = appendNew(q.Topic0s, s.Factory.Event.Topic0)
	}
	return q, len(q.Addresses) > 0
}

// FactoryStart is the lowest start block of the sets with a factory: where their children must be looked
// for from.
func (f *Filter) FactoryStart() uint64 {
	start, any := uint64(0), false
	for _, s := range f.ts.Sets {
		if s.Factory != nil && (!any || s.StartBlock < start) {
			start, any = s.StartBlock, true
		}
	}
	return start
}

// Register adds to kids the children that log l (at block n) registers as a creation event of a set's
// factory, and reports whether it is one.
func (f *Filter) Register(kids Children, l abi.Log, n uint64) bool {
	if len(l.Topics) == 0 {
		return false
	}
	found := false
	for _, s := range f.ts.factories[topicKey{l.Topics[0], len(l.Topics)}] {
		if l.Address != s.Factory.Address || n < s.StartBlock {
			continue
		}
		vals, err := s.Factory.Event.Values(l, nil)
		if err != nil {
			continue // as AddLog: a creation log that does not decode registers nothing
		}
		if kids[s.Name] == nil {
			kids[s.Name] = map[common.Address]bool{}
		}
		kids[s.Name][common.BytesToAddress(vals[s.Factory.Param].([]byte))] = true
		found = true
	}
	return found
}

// Logs is the query of every log the tables need, factories' creation logs included, with the children in
// kids. Any address is asked for when a set has no addresses and no factory (it matches by topic0 alone), or
// when there are more than maxAddresses to list, which nodes refuse: Keep then sorts the answer.
func (f *Filter) Logs(kids Children, maxAddresses int) LogQuery {
	var q LogQuery
	// The sets whose addresses the query lists, unless they are too many (counted before they are listed:
	// a factory may have hundreds of thousands of children).
	var listed []*Set
	anyAddress, n := false, 0
	for _, t := range f.ts.All {
		if t.Kind != KindEvent {
			continue
		}
		q.Topic0s = append(q.Topic0s, t.event.Topic0)
		switch s := t.Set; {
		case s.Factory == nil && s.Addresses == nil:
			anyAddress = true
		case !slices.Contains(listed, s):
			listed = append(listed, s)
			n += len(kids[s.Name]) + len(s.Addresses)
		}
	}
	fq, factories := f.Factories()
	if factories {
		q.Topic0s = append(q.Topic0s, fq.Topic0s...)
	}
	q.Topic0s = dedupe(q.Topic0s)
	if anyAddress || n+len(fq.Addresses) > maxAddresses {
		return q
	}
	for _, s := range listed {
		for a := range kids[s.Name] {
			q.Addresses = append(q.Addresses, a)
		}
		for a := range s.Addresses {
			q.Addresses = append(q.Addresses, a)
		}
	}
	q.Addresses = dedupe(append(q.Addresses, fq.Addresses...))
	return q
}

// Keep reports whether log l of block n belongs to what the tables store: an event of a table whose set
// covers its address at n (a factory set's: a registered child's), or a factory's creation log.
func (f *Filter) Keep(kids Children, l abi.Log, n uint64) bool {
	if len(l.Topics) == 0 {
		return false
	}
	k := topicKey{l.Topics[0], len(l.Topics)}
	for _, t := range f.ts.byTopic[k] {
		if f.covers(kids, t, l.Address, n) {
			return true
		}
	}
	for _, s := range f.ts.factories[k] {
		if l.Address == s.Factory.Address && n >= s.StartBlock {
			return true
		}
	}
	return false
}

// Calls reports whether a set has call tables: filtered mode then reads whole blocks, to find their calls.
func (f *Filter) Calls() bool { return len(f.ts.bySelector) > 0 }

// KeepCall reports whether a transaction of block n to to with input calls a function of a call table of a
// set that covers to.
func (f *Filter) KeepCall(kids Children, to common.Address, input []byte, n uint64) bool {
	if len(input) < 4 {
		return false
	}
	for _, t := range f.ts.bySelector[[4]byte(input[:4])] {
		if f.covers(kids, t, to, n) {
			return true
		}
	}
	return false
}

func (f *Filter) covers(kids Children, t *Table, a common.Address, n uint64) bool {
	if t.Set.Factory != nil && !kids[t.Set.Name][a] {
		return false
	}
	return t.covers(a, n)
}

func appendNew[T comparable](xs []T, x T) []T {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

func dedupe[T interface {
	comparable
	Cmp(T) int
}](xs []T) []T {
	slices.SortFunc(xs, func(a, b T) int { return a.Cmp(b) })
	return slices.Compact(xs)
}
