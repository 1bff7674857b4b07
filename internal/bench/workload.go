package bench

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

const (
	// FirstBlock is the number of the workload's first renumbered copy of block 17173049.
	FirstBlock = 20_000_000
	// FirstPreloadBlock numbers the copies that preload the tables for the cost-growth runs: below the
	// workload, so that the workload appends at the right end of every block-number index, as new blocks do.
	FirstPreloadBlock = 10_000_000
	// ItemsPerBlock is the number of ethereum-etl messages of one copy: 1 block, 116 transactions, 271 logs.
	ItemsPerBlock = 388
)

// Block is one renumbered copy of mainnet block 17173049 in every shape the benchmark needs.
type Block struct {
	Number uint64
	// Items are its ethereum-etl items: the block, 116 transactions and 271 logs (388 messages).
	Items [][]byte
	// Bundle is the bundle message rebuilt from Items (format.BundleFromETLItems); nil for blocks that only
	// feed the ethereum-etl backlog.
	Bundle []byte
	// Rows is Bundle decoded by chainsink's decoder (format + ABIs), derived rows included.
	Rows chain.Rows
}

// Workload is the benchmark's input, built once.
type Workload struct {
	// Blocks are the workload's blocks; the first Bundled of them have Bundle and Rows.
	Blocks  []Block
	Bundled int
	// Base is block 17173049's own decoded rows, the template of the preload copies.
	Base chain.Rows
}

// BuildWorkload renumbers the ethereum-etl items of block 17173049 into blocks copies numbered from
// FirstBlock (fixtures.Renumber: unique block and transaction hashes), rebuilds the first bundled of them as
// bundles and decodes those with chainsink's decoder (decode.New(abi.Default(), nil)). It uses every CPU.
func BuildWorkload(testdata string, blocks, bundled int) (*Workload, error) {
	items, err := fixtures.ETLItems(testdata)
	if err != nil {
		return nil, err
	}
	var one [][]byte
	for _, k := range []string{"block", "transaction", "log"} {
		one = append(one, items[k]...)
	}
	if len(one) != ItemsPerBlock {
		return nil, fmt.Errorf("block %d has %d ethereum-etl items, want %d", fixtures.Block17173049, len(one), ItemsPerBlock)
	}
	reg, err := abi.Default()
	if err != nil {
		return nil, err
	}
	dec := decode.New(reg, nil)
	w := &Workload{Blocks: make([]Block, max(blocks, bundled)), Bundled: bundled}

	base, err := format.BundleFromETLItems(one)
	if err != nil {
		return nil, err
	}
	baseRows, failure := dec.Decode(format.Bundle, format.BundleKey(fixtures.Block17173049), base)
	if failure != nil {
		return nil, fmt.Errorf("decode block %d: %w", fixtures.Block17173049, failure.Err)
	}
	w.Base = baseRows

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for g := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(w.Blocks) || errs[g] != nil {
					return
				}
				errs[g] = w.build(dec, one, i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *Workload) build(dec *decode.Decoder, one [][]byte, i int) error {
	b := &w.Blocks[i]
	b.Number = FirstBlock + uint64(i)
	b.Items = make([][]byte, len(one))
	for j, it := range one {
		v, err := fixtures.Renumber(it, b.Number)
		if err != nil {
			return err
		}
		b.Items[j] = v
	}
	if i >= w.Bundled {
		return nil
	}
	bundle, err := format.BundleFromETLItems(b.Items)
	if err != nil {
		return fmt.Errorf("bundle of block %d: %w", b.Number, err)
	}
	b.Bundle = bundle
	rows, failure := dec.Decode(format.Bundle, format.BundleKey(b.Number), bundle)
	if failure != nil {
		return fmt.Errorf("decode bundle of block %d: %w", b.Number, failure.Err)
	}
	b.Rows = rows
	return nil
}

// RowsPerBlock is the number of rows one copy of the block writes, in every table.
func (w *Workload) RowsPerBlock() int { return w.Base.Len() }

// BundleRows is the decoded rows of the bundled blocks.
func (w *Workload) BundleRows() []chain.Rows {
	out := make([]chain.Rows, w.Bundled)
	for i := range out {
		out[i] = w.Blocks[i].Rows
	}
	return out
}
