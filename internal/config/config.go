package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"go.yaml.in/yaml/v3"
)

// File is a parsed configuration file.
type File struct {
	// Path is the file as given.
	Path string
	// ABIDir is the directory of extra ABI files, as --abi-dir; a relative path in the file is relative to
	// the file's directory. Empty when not set.
	ABIDir string
	// Sets are the contract sets, in file order.
	Sets []*Set
	// UntypedEvents (`events_table: untyped`) keeps the generic events table to the events no typed table
	// holds: a set's events are stored once, in its tables. The default, `events_table: all`, stores every
	// event an ABI decodes in events, the sets' too. UntypedCalls (`calls_table: untyped`) does the same for
	// calls and the typed call tables (a transaction's own call; internal calls are never in calls).
	UntypedEvents, UntypedCalls bool
}

// Set is one entry of `contracts`: a contract (or any contract, or a factory's children) whose events and
// functions get one table each, named after Name.
type Set struct {
	// Name is the tables' prefix: [a-z][a-z0-9_]*.
	Name string
	// ABIs are the ABIs the set decodes with, each from its block on: one (from block 0) for a plain
	// `abi: NAME`; several for a proxy whose implementation was upgraded, `abi: [{from_block: 0, name: V1},
	// {from_block: N, name: V2}]`, in ascending from_block order.
	ABIs []ABIVersion
	// Addresses limits the set to these contracts. Nil with a nil Factory means any address.
	Addresses []common.Address
	// Factory, when set, makes the set the children its factory creates.
	Factory *Factory
	// Events are the events selected by name or canonical signature; nil means every event of the ABI.
	Events []string
	// Calls are the functions selected by name or signature; nil means none, ["*"] every function.
	Calls []string
	// StartBlock: rows of blocks below it are not produced.
	StartBlock uint64

	// Pos is where the set starts in the file; at holds the position of each of its keys.
	Pos Pos
	at  map[string]Pos
}

// ABIVersion is an ABI in force from a block on.
type ABIVersion struct {
	FromBlock uint64
	Name      string
	Pos       Pos
}

// Factory says where a set's contracts come from: the addresses that one parameter of a factory's creation
// event holds.
type Factory struct {
	Address   common.Address
	ABI       string
	Event     string
	Parameter string
	Pos       Pos
	at        map[string]Pos
}

// Pos is a place in the file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// At is the position of the set's key (e.g. "events"), or of the set when the key is absent.
func (s *Set) At(key string) Pos {
	if p, ok := s.at[key]; ok {
		return p
	}
	return s.Pos
}

// At is the position of the factory's key, or of the factory.
func (f *Factory) At(key string) Pos {
	if p, ok := f.at[key]; ok {
		return p
	}
	return f.Pos
}

// Error is a mistake in the file at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errorf returns an *Error at p.
func Errorf(p Pos, format string, args ...any) error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// NamePattern is what a set's name must match: it becomes the prefix of table names.
var NamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// MaxNameLength keeps `<name>_evt_<event>` within Postgres's 63-byte identifiers for most events.
const MaxNameLength = 32

// Load reads and checks the file at path. The error joins every mistake found (each an *Error).
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	f, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if f.ABIDir != "" && !filepath.IsAbs(f.ABIDir) {
		f.ABIDir = filepath.Join(filepath.Dir(path), f.ABIDir)
	}
	return f, nil
}

// Parse checks the contents of a configuration file; name is the file name used in errors.
func Parse(name string, b []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &parser{file: name}
	f := &File{Path: name}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errorf(Pos{name, 1}, "the file is empty: want a mapping with contracts")
	}
	root := doc.Content[0]
	p.mapping(root, "the file", func(key string, k, v *yaml.Node) {
		switch key {
		case "abi_dir":
			f.ABIDir = p.str(v, key)
		case "events_table":
			f.UntypedEvents = p.untyped(v, key)
		case "calls_table":
			f.UntypedCalls = p.untyped(v, key)
		case "contracts":
			if v.Kind != yaml.SequenceNode {
				p.errorf(v, "contracts: want a list of contract sets")
				return
			}
			for _, item := range v.Content {
				if s := p.set(item); s != nil {
					f.Sets = append(f.Sets, s)
				}
			}
		default:
			p.errorf(k, "unknown key %q (want abi_dir, events_table, calls_table, contracts)", key)
		}
	})
	seen := map[string]Pos{}
	for _, s := range f.Sets {
		if first, dup := seen[s.Name]; dup {
			p.errs = append(p.errs, Errorf(s.At("name"), "contract set name %q is used twice (first at line %d)", s.Name, first.Line))
			continue
		}
		seen[s.Name] = s.At("name")
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{p.file, n.Line} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, Errorf(p.pos(n), format, args...))
}

// mapping calls fn for each key of n, refusing duplicate keys.
func (p *parser) mapping(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping", what)
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errorf(k, "key %q is given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
	return true
}

func (p *parser) str(v *yaml.Node, key string) string {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Value == "" {
		p.errorf(v, "%s: want a non-empty string", key)
		return ""
	}
	return v.Value
}

// untyped reads an events_table or calls_table value: all (false) or untyped (true).
func (p *parser) untyped(v *yaml.Node, key string) bool {
	switch s := p.str(v, key); s {
	case "all":
	case "untyped":
		return true
	default:
		p.errorf(v, "%s: %q is neither all nor untyped", key, s)
	}
	return false
}

func (p *parser) strList(v *yaml.Node, key string) []string {
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" && v.Value != "" {
		return []string{v.Value} // a single name is a list of one
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, "%s: want a list of names", key)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, item := range v.Content {
		s := p.str(item, key)
		if s == "" {
			continue
		}
		if slices.Contains(out, s) {
			p.errorf(item, "%s: %q is listed twice", key, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *parser) address(v *yaml.Node, key string) (common.Address, bool) {
	s := p.str(v, key)
	if s == "" {
		return common.Address{}, false
	}
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		p.errorf(v, "%s: %q is not a 0x-prefixed 20-byte hex address", key, s)
		return common.Address{}, false
	}
	if s != strings.ToLower(s) && s != common.HexToAddress(s).Hex() {
		// Mixed case is an EIP-55 checksum; a wrong one is a typo somewhere in the address.
		p.errorf(v, "%s: %q has a wrong EIP-55 checksum (write it in lower case, or as %s)", key, s, common.HexToAddress(s).Hex())
		return common.Address{}, false
	}
	return common.HexToAddress(s), true
}

func (p *parser) set(n *yaml.Node) *Set {
	s := &Set{Pos: p.pos(n), at: map[string]Pos{}}
	before := len(p.errs)
	ok := p.mapping(n, "contract set", func(key string, k, v *yaml.Node) {
		s.at[key] = p.pos(v)
		switch key {
		case "name":
			s.Name = p.str(v, key)
			if s.Name != "" && !NamePattern.MatchString(s.Name) {
				p.errorf(v, "name %q: want lower-case letters, digits and _, starting with a letter", s.Name)
			} else if len(s.Name) > MaxNameLength {
				p.errorf(v, "name %q: at most %d characters (it prefixes table names)", s.Name, MaxNameLength)
			}
		case "abi":
			s.ABIs = p.abiVersions(v)
		case "address":
			list := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				list = v.Content
				if len(list) == 0 {
					p.errorf(v, "address: an empty list; leave the key out for any address")
				}
			}
			for _, item := range list {
				if a, ok := p.address(item, key); ok {
					if slices.Contains(s.Addresses, a) {
						p.errorf(item, "address: %s is listed twice", strings.ToLower(a.Hex()))
						continue
					}
					s.Addresses = append(s.Addresses, a)
				}
			}
		case "factory":
			s.Factory = p.factory(v)
		case "events":
			s.Events = p.strList(v, key)
			if s.Events == nil {
				s.Events = []string{}
			}
		case "calls":
			s.Calls = p.strList(v, key)
			if slices.Contains(s.Calls, "*") && len(s.Calls) > 1 {
				p.errorf(v, `calls: "*" already means every function`)
			}
		case "start_block":
			u, err := strconv.ParseUint(v.Value, 10, 63)
			if v.Kind != yaml.ScalarNode || err != nil {
				p.errorf(v, "start_block: want a block number, not %q", v.Value)
				return
			}
			s.StartBlock = u
		default:
			p.errorf(k, "unknown key %q (want name, abi, address, factory, events, calls, start_block)", key)
		}
	})
	if !ok {
		return nil
	}
	if s.Name == "" && len(p.errs) == before {
		p.errorf(n, "contract set: name is missing")
	}
	if _, given := s.at["abi"]; !given {
		p.errorf(n, "contract set %s: abi is missing", s.Name)
	}
	if s.Factory != nil && s.at["address"] != (Pos{}) {
		p.errorf(n, "contract set %s: give address or factory, not both", s.Name)
	}
	if len(p.errs) > before {
		return nil
	}
	return s
}

// abiVersions reads `abi`: a name, or a list of {from_block, name} in strictly ascending from_block order.
func (p *parser) abiVersions(v *yaml.Node) []ABIVersion {
	if v.Kind != yaml.SequenceNode {
		if name := p.str(v, "abi"); name != "" {
			return []ABIVersion{{Name: name, Pos: p.pos(v)}}
		}
		return nil
	}
	if len(v.Content) == 0 {
		p.errorf(v, "abi: an empty list")
		return nil
	}
	var out []ABIVersion
	for _, item := range v.Content {
		ver := ABIVersion{Pos: p.pos(item)}
		given := map[string]bool{}
		p.mapping(item, "abi version", func(key string, k, val *yaml.Node) {
			given[key] = true
			switch key {
			case "from_block":
				u, err := strconv.ParseUint(val.Value, 10, 63)
				if val.Kind != yaml.ScalarNode || err != nil {
					p.errorf(val, "abi: from_block: want a block number, not %q", val.Value)
				}
				ver.FromBlock = u
			case "name":
				ver.Name = p.str(val, "abi: name")
			default:
				p.errorf(k, "unknown key %q in abi version (want from_block, name)", key)
			}
		})
		for _, k := range []string{"from_block", "name"} {
			if !given[k] && item.Kind == yaml.MappingNode {
				p.errorf(item, "abi version: %s is missing", k)
			}
		}
		if len(out) > 0 && ver.FromBlock <= out[len(out)-1].FromBlock {
			p.errorf(item, "abi: from_block %d does not follow %d: list the versions in ascending from_block order", ver.FromBlock, out[len(out)-1].FromBlock)
		}
		out = append(out, ver)
	}
	return out
}

func (p *parser) factory(n *yaml.Node) *Factory {
	f := &Factory{Pos: p.pos(n), at: map[string]Pos{}}
	before := len(p.errs)
	ok := p.mapping(n, "factory", func(key string, k, v *yaml.Node) {
		f.at[key] = p.pos(v)
		switch key {
		case "address":
			f.Address, _ = p.address(v, "factory.address")
		case "abi":
			f.ABI = p.str(v, "factory.abi")
		case "event":
			f.Event = p.str(v, "factory.event")
		case "parameter":
			f.Parameter = p.str(v, "factory.parameter")
		default:
			p.errorf(k, "unknown key %q in factory (want address, abi, event, parameter)", key)
		}
	})
	if !ok {
		return nil
	}
	for _, k := range []string{"address", "abi", "event", "parameter"} {
		if _, given := f.at[k]; !given {
			p.errorf(n, "factory: %s is missing", k)
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return f
}
