package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// maxTopics is the most topics an EVM log can carry (LOG0..LOG4).
const maxTopics = 4

// eventKey is the O(1) lookup key for named events. The topic count is part
// of the key because ERC-20 and ERC-721 Transfer/Approval share topic0 and
// differ only in how many of their arguments are indexed.
type eventKey struct {
	topic0  common.Hash
	ntopics uint8
}

// compiledABI is one parsed ABI file with its own lookup tables. It is
// immutable once built, so registries (and their snapshots) share it freely.
type compiledABI struct {
	name    string
	events  map[eventKey][]*eventDecoder
	anon    map[uint8][]*eventDecoder // anonymous events by topic count; only used for bound addresses
	methods map[[4]byte][]*methodDecoder
	// contract is the typed view of the same ABI (see Contract), built with it.
	contract *Contract
}

// node mirrors a go-ethereum abi.Type with what the JSON writer needs
// precomputed (tuple keys), so that decoding never re-derives names.
type node struct {
	t      *gethabi.Type
	elem   *node   // slice and array element
	fields []*node // tuple components, ABI order
	keys   [][]byte
}

// field is one top-level event or method parameter.
type field struct {
	name    string // as in the ABI, possibly empty
	key     []byte // `"name":` already JSON-encoded
	n       *node
	indexed bool
	hashed  bool              // indexed reference type: the topic holds keccak256 of the value, not the value
	topic   int               // index into Log.Topics when indexed
	single  gethabi.Arguments // one non-indexed copy of the argument, to decode a topic word with go-ethereum
	word    wordKind          // of an indexed, not hashed argument: how readWord decodes its topic
	dataIdx int               // position in the UnpackValues result when not indexed
}

type eventDecoder struct {
	abiName   string
	name      string
	sig       string
	topic0    common.Hash
	anonymous bool
	ntopics   uint8
	layout    string // sig + indexed mask: two events with equal layout decode identically
	fields    []field
	data      gethabi.Arguments // non-indexed arguments, in ABI order
	dataWords []wordKind        // their word kinds, when every one has one (see wordValues); else nil
	sizeHint  int
}

type methodDecoder struct {
	abiName  string
	name     string
	sig      string
	selector [4]byte
	inputs   gethabi.Arguments
	words    []wordKind // the inputs' word kinds, when every one has one (see wordValues); else nil
	fields   []field
	sizeHint int
}

// rawArg and rawEntry mirror the Solidity ABI JSON. We round-trip through
// them (instead of handing the bytes straight to go-ethereum) to fix up the
// few things go-ethereum rejects but real-world ABIs contain.
type rawArg struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	InternalType string   `json:"internalType,omitempty"`
	Components   []rawArg `json:"components,omitempty"`
	Indexed      bool     `json:"indexed,omitempty"`
}

type rawEntry struct {
	Type            string   `json:"type"`
	Name            string   `json:"name"`
	Inputs          []rawArg `json:"inputs"`
	Outputs         []rawArg `json:"outputs"`
	StateMutability string   `json:"stateMutability,omitempty"`
	Constant        bool     `json:"constant,omitempty"`
	Payable         bool     `json:"payable,omitempty"`
	Anonymous       bool     `json:"anonymous,omitempty"`
}

// normalizeABI accepts a bare ABI array or a build artifact with an "abi"
// field (Truffle, Hardhat, Foundry) and returns an ABI array go-ethereum
// accepts:
//   - a missing "type" means "function" (Solidity ABI spec default);
//   - constructor, fallback and receive are dropped: they never decode a log
//     or a selector, and go-ethereum rejects files that merge several ABIs
//     (two fallbacks, a non-payable receive);
//   - unnamed tuple components are named argN, because go-ethereum refuses
//     tuples whose components have no usable Go field name.
func normalizeABI(abiJSON []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(abiJSON)
	if len(trimmed) == 0 {
		return nil, errors.New("empty ABI JSON")
	}
	if trimmed[0] == '{' {
		var artifact struct {
			ABI json.RawMessage `json:"abi"`
		}
		if err := json.Unmarshal(trimmed, &artifact); err != nil {
			return nil, fmt.Errorf("parsing artifact object: %w", err)
		}
		if len(artifact.ABI) == 0 {
			return nil, errors.New(`parsing artifact object: no "abi" field`)
		}
		trimmed = bytes.TrimSpace(artifact.ABI)
		// Some tools store the ABI as a JSON string holding the array.
		if len(trimmed) > 0 && trimmed[0] == '"' {
			var s string
			if err := json.Unmarshal(trimmed, &s); err != nil {
				return nil, fmt.Errorf("parsing artifact abi string: %w", err)
			}
			trimmed = []byte(s)
		}
	}
	var entries []rawEntry
	if err := json.Unmarshal(trimmed, &entries); err != nil {
		return nil, fmt.Errorf("parsing ABI array: %w", err)
	}
	kept := entries[:0]
	for _, e := range entries {
		switch e.Type {
		case "":
			e.Type = "function"
		case "constructor", "fallback", "receive":
			continue
		}
		fixComponents(e.Inputs)
		fixComponents(e.Outputs)
		kept = append(kept, e)
	}
	out, err := json.Marshal(kept)
	if err != nil {
		return nil, fmt.Errorf("re-encoding ABI: %w", err)
	}
	return out, nil
}

func fixComponents(args []rawArg) {
	for i := range args {
		comps := args[i].Components
		for j := range comps {
			if !validGoFieldName(gethabi.ToCamelCase(comps[j].Name)) {
				comps[j].Name = "arg" + strconv.Itoa(j)
			}
		}
		fixComponents(comps)
	}
}

// validGoFieldName matches go-ethereum's isValidFieldName (unexported).
func validGoFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf && unicode.IsLetter(c)
		if i == 0 && !letter {
			return false
		}
		if !letter && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}

// compileABI parses one ABI with go-ethereum and precomputes decoders.
func compileABI(name string, abiJSON []byte) (*compiledABI, error) {
	norm, err := normalizeABI(abiJSON)
	if err != nil {
		return nil, err
	}
	parsed, err := gethabi.JSON(bytes.NewReader(norm))
	if err != nil {
		return nil, fmt.Errorf("parsing ABI with go-ethereum: %w", err)
	}
	c := &compiledABI{
		name:     name,
		events:   make(map[eventKey][]*eventDecoder),
		anon:     make(map[uint8][]*eventDecoder),
		methods:  make(map[[4]byte][]*methodDecoder),
		contract: &Contract{Name: name, Hash: contentHash(norm)},
	}
	// go-ethereum keeps events and methods in maps; iterate in a fixed order
	// so that duplicate resolution inside one file is deterministic.
	for _, ev := range sortedEvents(parsed) {
		d, err := compileEvent(name, ev)
		if err != nil {
			return nil, fmt.Errorf("compiling event %s: %w", ev.Sig, err)
		}
		c.contract.Events = append(c.contract.Events, newEventSpec(d))
		if d.anonymous {
			c.anon[d.ntopics] = appendEvent(c.anon[d.ntopics], d)
			continue
		}
		k := eventKey{d.topic0, d.ntopics}
		c.events[k] = appendEvent(c.events[k], d)
	}
	for _, m := range sortedMethods(parsed) {
		d := compileMethod(name, m)
		c.contract.Functions = append(c.contract.Functions, newFunctionSpec(d))
		c.methods[d.selector] = appendMethod(c.methods[d.selector], d)
	}
	c.contract.sortSpecs()
	return c, nil
}

// appendEvent adds d unless an event with the same layout is already there:
// identical signature and indexed layout decode identically, so the first
// one (the higher-priority ABI) is enough.
func appendEvent(list []*eventDecoder, d *eventDecoder) []*eventDecoder {
	for _, e := range list {
		if e.layout == d.layout {
			return list
		}
	}
	return append(list, d)
}

func appendMethod(list []*methodDecoder, d *methodDecoder) []*methodDecoder {
	for _, m := range list {
		if m.sig == d.sig {
			return list
		}
	}
	return append(list, d)
}

func compileEvent(abiName string, ev gethabi.Event) (*eventDecoder, error) {
	d := &eventDecoder{
		abiName:   abiName,
		name:      ev.RawName,
		sig:       ev.Sig,
		topic0:    ev.ID,
		anonymous: ev.Anonymous,
	}
	topic := 1
	if ev.Anonymous {
		topic = 0
	}
	mask := make([]byte, 0, len(ev.Inputs))
	keys := uniqueKeys(rawNames(ev.Inputs))
	dataIdx := 0
	for i, in := range ev.Inputs {
		t := in.Type
		f := field{name: in.Name, key: keys[i], n: buildNode(&t), indexed: in.Indexed}
		if in.Indexed {
			mask = append(mask, '1')
			f.topic = topic
			topic++
			switch t.T {
			case gethabi.StringTy, gethabi.BytesTy, gethabi.SliceTy, gethabi.ArrayTy, gethabi.TupleTy:
				f.hashed = true
			default:
				f.single = gethabi.Arguments{{Name: in.Name, Type: t}}
				f.word = wordKindOf(t)
			}
		} else {
			mask = append(mask, '0')
			f.dataIdx = dataIdx
			dataIdx++
			d.data = append(d.data, gethabi.Argument{Name: in.Name, Type: t})
			d.dataWords = append(d.dataWords, wordKindOf(t))
		}
		d.fields = append(d.fields, f)
		d.sizeHint += len(f.key) + 80
	}
	if topic > maxTopics {
		return nil, fmt.Errorf("%d indexed arguments do not fit in %d topics", topic-1, maxTopics)
	}
	if slices.Contains(d.dataWords, wordOther) {
		d.dataWords = nil
	}
	d.ntopics = uint8(topic)
	d.layout = d.sig + "/" + string(mask)
	if ev.Anonymous {
		d.layout = "anonymous:" + d.layout
	}
	d.sizeHint += 2
	return d, nil
}

func compileMethod(abiName string, m gethabi.Method) *methodDecoder {
	d := &methodDecoder{
		abiName: abiName,
		name:    m.RawName,
		sig:     m.Sig,
		inputs:  m.Inputs,
	}
	copy(d.selector[:], m.ID)
	keys := uniqueKeys(rawNames(m.Inputs))
	for i, in := range m.Inputs {
		t := in.Type
		d.fields = append(d.fields, field{name: in.Name, key: keys[i], n: buildNode(&t), dataIdx: i})
		d.sizeHint += len(keys[i]) + 80
		d.words = append(d.words, wordKindOf(t))
	}
	d.sizeHint += 2
	if slices.Contains(d.words, wordOther) {
		d.words = nil
	}
	return d
}

func rawNames(args gethabi.Arguments) []string {
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = a.Name
	}
	return names
}

// uniqueKeys turns parameter names into JSON keys: empty (or unusable) names
// become argN (N = position), and a repeated name gets the argN form too, so
// that jsonb, which keeps only the last duplicate key, loses nothing.
func uniqueKeys(names []string) [][]byte {
	used := make(map[string]bool, len(names))
	keys := make([][]byte, len(names))
	for i, name := range names {
		if name == "" || used[name] || !utf8.ValidString(name) || bytes.IndexByte([]byte(name), 0) >= 0 {
			name = "arg" + strconv.Itoa(i)
			for used[name] {
				name += "_"
			}
		}
		used[name] = true
		k := appendJSONString(nil, name)
		keys[i] = append(k, ':')
	}
	return keys
}

func buildNode(t *gethabi.Type) *node {
	n := &node{t: t}
	switch t.T {
	case gethabi.SliceTy, gethabi.ArrayTy:
		n.elem = buildNode(t.Elem)
	case gethabi.TupleTy:
		n.keys = uniqueKeys(t.TupleRawNames)
		for _, e := range t.TupleElems {
			n.fields = append(n.fields, buildNode(e))
		}
	}
	return n
}

func sortedEvents(a gethabi.ABI) []gethabi.Event {
	out := make([]gethabi.Event, 0, len(a.Events))
	for _, e := range a.Events {
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y gethabi.Event) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func sortedMethods(a gethabi.ABI) []gethabi.Method {
	out := make([]gethabi.Method, 0, len(a.Methods))
	for _, m := range a.Methods {
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y gethabi.Method) int { return strings.Compare(x.Name, y.Name) })
	return out
}
