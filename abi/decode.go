package abi

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// DecodeLog decodes l with the ABI that knows its topic0 and topic count.
//
// ok=false: no ABI knows the log. err != nil (with ok=true): at least one
// ABI matched topic0 and the topic count but the data or topics do not fit
// it; the caller keeps the log raw and counts it. Candidates are tried in lookup order
// (bound named, bound anonymous, global) and the first that decodes wins; on
// total failure the first candidate's error is returned. Never panics.
func (r *Registry) DecodeLog(l Log) (ev Event, ok bool, err error) {
	return r.DecodeLogOn(l, nil)
}

// DecodeLogOn is DecodeLog writing the event's JSON args onto slab (nil: an allocation of their own), for a
// caller that decodes the logs of one message, whose rows live and die together.
func (r *Registry) DecodeLogOn(l Log, slab *ArgsSlab) (ev Event, ok bool, err error) {
	if len(l.Topics) > maxTopics {
		return Event{}, false, nil
	}
	idx := r.snapshot()
	n := uint8(len(l.Topics))
	var firstErr error
	try := func(cands []*eventDecoder) bool {
		for _, d := range cands {
			args, derr := d.decode(l, slab)
			if derr == nil {
				ev = Event{Name: d.name, Signature: d.sig, ABIName: d.abiName, Args: args}
				return true
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("decoding %s log with ABI %s: %w", d.sig, d.abiName, derr)
			}
		}
		return false
	}
	if bound, isBound := idx.bound[l.Address]; isBound {
		if n > 0 && try(bound.events[eventKey{l.Topics[0], n}]) {
			return ev, true, nil
		}
		if try(bound.anon[n]) {
			return ev, true, nil
		}
	}
	if n > 0 && try(idx.events[eventKey{l.Topics[0], n}]) {
		return ev, true, nil
	}
	if firstErr != nil {
		return Event{}, true, firstErr
	}
	return Event{}, false, nil
}

// decode renders the log's arguments as a JSON object: from the words when every
// argument takes one (decodeWords), else from go-ethereum's values: UnpackValues
// for the data (or readWord), and for each indexed value-type argument
// UnpackValues on the 32-byte topic (which is exactly what abi.ParseTopics does
// internally, minus the reflection into a struct or map).
func (d *eventDecoder) decode(l Log, slab *ArgsSlab) (out []byte, err error) {
	defer func() {
		// go-ethereum's decoder is not our code; a panic on hostile input
		// must become an error, never take the indexer down.
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("go-ethereum abi panicked: %v", p)
		}
	}()
	if out, ok := d.decodeWords(l, slab); ok {
		return out, nil
	}
	return d.decodeValues(l)
}

// decodeWords is decode for an event whose arguments each take one word, written from the words (see
// appendWord); false for any other event and wherever the words are not what decodeValues would write
// without an error.
func (d *eventDecoder) decodeWords(l Log, slab *ArgsSlab) ([]byte, bool) {
	if d.dataWords == nil && len(d.data) > 0 || len(l.Data) < 32*len(d.data) {
		return nil, false
	}
	// sizeHint allows each value the 80 bytes of the longest word (a quoted uint256 or negative int256);
	// the commas are the rest.
	buf := slab.room(d.sizeHint + len(d.fields))
	buf = append(buf, '{')
	for i := range d.fields {
		f := &d.fields[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, f.key...)
		ok := true
		switch {
		case !f.indexed:
			at := 32 * f.dataIdx
			buf, ok = appendWord(buf, f.n.t, d.dataWords[f.dataIdx], l.Data[at:at+32])
		case f.hashed:
			buf = appendHex(buf, l.Topics[f.topic][:])
		case f.word != wordOther:
			buf, ok = appendWord(buf, f.n.t, f.word, l.Topics[f.topic][:])
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return slab.keep(append(buf, '}')), true
}

// ArgsSlab holds the JSON args of many events in a few allocations. The zero value is ready; Next sizes each
// allocation (at least what an event needs). The args it holds are never written again, so the events
// keep them as long as they need; a slab must not be shared between goroutines.
type ArgsSlab struct {
	buf  []byte
	Next int
}

// room returns an empty slice with at least n bytes of capacity, at the end of the slab.
func (s *ArgsSlab) room(n int) []byte {
	if s == nil {
		return make([]byte, 0, n)
	}
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, max(n, s.Next))
	}
	return s.buf[len(s.buf):]
}

// keep takes b, written into what room returned, into the slab; a b that outgrew the room (which the
// bound passed to room rules out) is an allocation of its own and is returned as it is.
func (s *ArgsSlab) keep(b []byte) []byte {
	if s == nil || cap(b) != cap(s.buf)-len(s.buf) {
		return b
	}
	s.buf = s.buf[:len(s.buf)+len(b)]
	return b[:len(b):len(b)]
}

// decodeValues is decode through the Go values of the arguments.
func (d *eventDecoder) decodeValues(l Log) (out []byte, err error) {
	values, err := d.dataValues(l.Data)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, d.sizeHint)
	buf = append(buf, '{')
	for i := range d.fields {
		f := &d.fields[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, f.key...)
		if !f.indexed {
			if buf, err = appendValue(buf, f.n, values[f.dataIdx]); err != nil {
				return nil, fmt.Errorf("argument %d: %w", i, err)
			}
			continue
		}
		// Slice the caller's topic in place: a local copy would escape to the heap.
		topic := l.Topics[f.topic][:]
		if f.hashed {
			buf = appendHex(buf, topic)
			continue
		}
		tv, terr := f.topicValue(topic)
		if terr != nil {
			return nil, fmt.Errorf("indexed argument %d: %w", i, terr)
		}
		if buf, err = appendValue(buf, f.n, tv); err != nil {
			return nil, fmt.Errorf("indexed argument %d: %w", i, err)
		}
	}
	return append(buf, '}'), nil
}

// dataValues unpacks the non-indexed arguments from a log's data, in ABI order.
func (d *eventDecoder) dataValues(data []byte) ([]any, error) {
	return unpack(d.data, d.dataWords, data)
}

// DecodeCall decodes transaction input by its 4-byte selector, preferring the
// ABI bound to *to. to == nil means contract creation: the input is init
// code, not calldata, so ok=false. ok=false also when the input is shorter
// than 4 bytes or no ABI knows the selector; err != nil (with ok=true) when
// an ABI knows the selector but the arguments do not decode. Never panics.
func (r *Registry) DecodeCall(to *common.Address, input []byte) (call Call, ok bool, err error) {
	if to == nil || len(input) < 4 {
		return Call{}, false, nil
	}
	idx := r.snapshot()
	sel := [4]byte(input[:4])
	var firstErr error
	try := func(cands []*methodDecoder) bool {
		for _, d := range cands {
			args, derr := d.decode(input[4:])
			if derr == nil {
				call = Call{Name: d.name, Signature: d.sig, ABIName: d.abiName, Args: args}
				return true
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("decoding %s call with ABI %s: %w", d.sig, d.abiName, derr)
			}
		}
		return false
	}
	if bound, isBound := idx.bound[*to]; isBound && try(bound.methods[sel]) {
		return call, true, nil
	}
	if try(idx.methods[sel]) {
		return call, true, nil
	}
	if firstErr != nil {
		return Call{}, true, firstErr
	}
	return Call{}, false, nil
}

func (d *methodDecoder) decode(data []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("go-ethereum abi panicked: %v", p)
		}
	}()
	if out, ok := d.decodeWords(data); ok {
		return out, nil
	}
	return d.decodeValues(data)
}

// decodeWords is eventDecoder.decodeWords for calldata.
func (d *methodDecoder) decodeWords(data []byte) ([]byte, bool) {
	if d.words == nil && len(d.inputs) > 0 || len(data) < 32*len(d.inputs) {
		return nil, false
	}
	buf := make([]byte, 0, d.sizeHint)
	buf = append(buf, '{')
	for i := range d.fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, d.fields[i].key...)
		var ok bool
		if buf, ok = appendWord(buf, d.fields[i].n.t, d.words[i], data[32*i:32*i+32]); !ok {
			return nil, false
		}
	}
	return append(buf, '}'), true
}

// decodeValues is decode through the Go values of the arguments.
func (d *methodDecoder) decodeValues(data []byte) (out []byte, err error) {
	values, err := d.values(data)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, d.sizeHint)
	buf = append(buf, '{')
	for i := range d.fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, d.fields[i].key...)
		if buf, err = appendValue(buf, d.fields[i].n, values[i]); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
	}
	return append(buf, '}'), nil
}

// values decodes calldata after the selector into one value per input.
func (d *methodDecoder) values(data []byte) ([]any, error) {
	return unpack(d.inputs, d.words, data)
}

// topicValue decodes the topic of an indexed argument that is not hashed, as go-ethereum does.
func (f *field) topicValue(topic []byte) (any, error) {
	if f.word != wordOther {
		return readWord(f.single[0].Type, f.word, topic)
	}
	tv, err := f.single.UnpackValues(topic)
	if err != nil {
		return nil, err
	}
	if len(tv) != 1 {
		return nil, errors.New("no value")
	}
	return tv[0], nil
}
