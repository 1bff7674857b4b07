package abi

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
)

//go:embed abis/*.json
var embedded embed.FS

// defaultOrder is the priority of the embedded ABIs. When two ABIs define
// the same event layout or function signature, the earlier one answers for
// unbound addresses: token standards first (they are what these shared
// events mean on an arbitrary contract), then mainnet WETH, then the Uniswap
// contracts, and last the WETH9 test copy from Uniswap's periphery package,
// which only duplicates WETH9.
var defaultOrder = []string{
	"ERC20",
	"ERC721",
	"ERC1155",
	"WETH9",
	"UniswapV2Pair",
	"UniswapV2Factory",
	"UniswapV2Router02",
	"UniswapV3Pool",
	"UniswapV3Factory",
	"WETH9_uniswap_v2_periphery",
}

// Registry maps topic0/selectors to ABIs. Build it with NewRegistry or
// Default, then Add, LoadDir and BindContracts. Every method is safe for
// concurrent use: decoders read an immutable snapshot through an atomic
// pointer (no lock on the hot path), and writers publish a new snapshot.
type Registry struct {
	mu  sync.Mutex // serialises writers
	idx atomic.Pointer[index]
}

// index is one immutable snapshot of the registry.
type index struct {
	abis    []*compiledABI // priority order
	byName  map[string]*compiledABI
	events  map[eventKey][]*eventDecoder
	methods map[[4]byte][]*methodDecoder
	bound   map[common.Address]*compiledABI
}

var emptyIndex = &index{
	byName:  map[string]*compiledABI{},
	events:  map[eventKey][]*eventDecoder{},
	methods: map[[4]byte][]*methodDecoder{},
	bound:   map[common.Address]*compiledABI{},
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.idx.Store(emptyIndex)
	return r
}

func (r *Registry) snapshot() *index {
	if idx := r.idx.Load(); idx != nil {
		return idx
	}
	return emptyIndex // zero Registry
}

// buildIndex merges the per-ABI tables in priority order: the first ABI to
// define a layout keeps the slot, a different layout under the same key is
// kept after it as a fallback candidate.
func buildIndex(abis []*compiledABI, bound map[common.Address]*compiledABI) *index {
	idx := &index{
		abis:    abis,
		byName:  make(map[string]*compiledABI, len(abis)),
		events:  make(map[eventKey][]*eventDecoder),
		methods: make(map[[4]byte][]*methodDecoder),
		bound:   bound,
	}
	for _, c := range abis {
		idx.byName[c.name] = c
		for k, ds := range c.events {
			for _, d := range ds {
				idx.events[k] = appendEvent(idx.events[k], d)
			}
		}
		for sel, ds := range c.methods {
			for _, d := range ds {
				idx.methods[sel] = appendMethod(idx.methods[sel], d)
			}
		}
	}
	return idx
}

type namedABI struct {
	name string
	json []byte
}

// add compiles every ABI first so that a bad file leaves the registry unchanged.
func (r *Registry) add(items []namedABI) error {
	compiled := make([]*compiledABI, 0, len(items))
	for _, it := range items {
		if it.name == "" {
			return errors.New("adding ABI: empty name")
		}
		c, err := compileABI(it.name, it.json)
		if err != nil {
			return fmt.Errorf("adding ABI %q: %w", it.name, err)
		}
		compiled = append(compiled, c)
	}
	return r.addCompiled(compiled)
}

func (r *Registry) addCompiled(compiled []*compiledABI) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	abis := slices.Clone(old.abis)
	seen := make(map[string]bool, len(abis)+len(compiled))
	for _, c := range abis {
		seen[c.name] = true
	}
	for _, c := range compiled {
		if seen[c.name] {
			return fmt.Errorf("adding ABI %q: name already registered", c.name)
		}
		seen[c.name] = true
		abis = append(abis, c)
	}
	r.idx.Store(buildIndex(abis, old.bound))
	return nil
}

// Add registers an ABI under name, with lower priority than every ABI added
// before it. abiJSON is a Solidity ABI array (old constant/payable style or
// new stateMutability style) or a Truffle/Hardhat artifact object with an
// "abi" field. A name can be added only once.
func (r *Registry) Add(name string, abiJSON []byte) error {
	return r.add([]namedABI{{name, abiJSON}})
}

// LoadDir adds every *.json file of dir (not recursive), in file-name order,
// each under its file name without extension. Nothing is added if one fails.
func (r *Registry) LoadDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("loading ABI dir: %w", err)
	}
	var items []namedABI
	for _, e := range entries { // os.ReadDir sorts by name
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("loading ABI dir: %w", err)
		}
		items = append(items, namedABI{strings.TrimSuffix(e.Name(), filepath.Ext(e.Name())), b})
	}
	if err := r.add(items); err != nil {
		return fmt.Errorf("loading ABI dir %s: %w", dir, err)
	}
	return nil
}

// BindContracts reads {"0xaddr": "AbiName", ...} and makes that ABI the
// first choice for logs and calls of that address. Binding is what resolves
// anonymous events (they have no topic0 to look up) and ambiguous signatures
// (ERC-20 vs ERC-721 transferFrom, or two ABIs with the same topic0 and
// topic count). The ABIs must already be registered; a later binding of the
// same address replaces the earlier one. Nothing is bound if one entry fails.
func (r *Registry) BindContracts(rd io.Reader) error {
	var m map[string]string
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("reading contract bindings: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	bound := make(map[common.Address]*compiledABI, len(old.bound)+len(m))
	for a, c := range old.bound {
		bound[a] = c
	}
	for addr, name := range m {
		if !common.IsHexAddress(addr) {
			return fmt.Errorf("binding contract %q: not a hex address", addr)
		}
		c, ok := old.byName[name]
		if !ok {
			return fmt.Errorf("binding contract %s: unknown ABI %q", addr, name)
		}
		bound[common.HexToAddress(addr)] = c
	}
	next := *old
	next.bound = bound
	r.idx.Store(&next)
	return nil
}

// Names returns the registered ABI names in priority order.
func (r *Registry) Names() []string {
	idx := r.snapshot()
	names := make([]string, len(idx.abis))
	for i, c := range idx.abis {
		names[i] = c.name
	}
	return names
}

// Subset returns a new registry restricted to the named ABIs, keeping their
// relative priority and only the bindings that point at them.
func (r *Registry) Subset(names ...string) (*Registry, error) {
	if len(names) == 0 {
		return nil, errors.New("subsetting registry: no ABI names given")
	}
	idx := r.snapshot()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if _, ok := idx.byName[n]; !ok {
			return nil, fmt.Errorf("subsetting registry: unknown ABI %q", n)
		}
		want[n] = true
	}
	var abis []*compiledABI
	for _, c := range idx.abis {
		if want[c.name] {
			abis = append(abis, c)
		}
	}
	bound := make(map[common.Address]*compiledABI)
	for a, c := range idx.bound {
		if want[c.name] {
			bound[a] = c
		}
	}
	out := &Registry{}
	out.idx.Store(buildIndex(abis, bound))
	return out, nil
}

// defaultABIs parses the embedded files once; every Default registry shares
// the immutable result.
var defaultABIs = sync.OnceValues(func() ([]*compiledABI, error) {
	files, err := embedded.ReadDir("abis")
	if err != nil {
		return nil, fmt.Errorf("reading embedded ABIs: %w", err)
	}
	byName := map[string][]byte{}
	for _, f := range files {
		b, err := embedded.ReadFile("abis/" + f.Name())
		if err != nil {
			return nil, fmt.Errorf("reading embedded ABI %s: %w", f.Name(), err)
		}
		byName[strings.TrimSuffix(f.Name(), ".json")] = b
	}
	order := slices.Clone(defaultOrder)
	var extra []string
	for n := range byName {
		if !slices.Contains(order, n) {
			extra = append(extra, n) // a file added without updating defaultOrder
		}
	}
	slices.Sort(extra)
	order = append(order, extra...)
	var out []*compiledABI
	for _, n := range order {
		b, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("embedded ABI %s.json is missing", n)
		}
		c, err := compileABI(n, b)
		if err != nil {
			return nil, fmt.Errorf("compiling embedded ABI %s: %w", n, err)
		}
		out = append(out, c)
	}
	return out, nil
})

// Default returns a new registry holding the embedded ABIs, with no bindings.
func Default() (*Registry, error) {
	abis, err := defaultABIs()
	if err != nil {
		return nil, err
	}
	r := NewRegistry()
	if err := r.addCompiled(abis); err != nil {
		return nil, fmt.Errorf("building default registry: %w", err)
	}
	return r, nil
}
