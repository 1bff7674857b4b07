package tokens

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// Watcher is the backfill.TokenSink of `backfill --tokens-topic` and `follow --tokens-topic`: it finds the
// token contracts of a batch's Transfer logs, keeps those that no chain read describes yet (neither stored
// in tokens nor claimed by this process at a block as low), reads them at the block where each was first
// seen, and publishes them as ethereum-etl token items, acknowledged before Observe returns.
//
// Backfill's batches run concurrently, so a batch above may claim a token before the batch that holds its
// first transfer: then both publish it, and the store keeps the read of the lower block ("as first read").
// The price is a duplicate item now and then; the alternative, one claim whatever the block, would describe
// the token as it was wherever a batch happened to see it first.
type Watcher struct {
	reader *Reader
	pub    backfill.Publisher
	db     store.DB
	log    *slog.Logger

	mu      sync.Mutex
	claimed map[common.Address]uint64 // the lowest block this process read each token at, or is reading it at
}

// maxClaims bounds the claims a Watcher remembers (≈ 10 MiB).
const maxClaims = 1 << 17

// NewWatcher reads with r, publishes to pub and looks up what is stored in db. logger may be nil.
func NewWatcher(r *Reader, pub backfill.Publisher, db store.DB, logger *slog.Logger) *Watcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{reader: r, pub: pub, db: db, log: logger, claimed: map[common.Address]uint64{}}
}

// Observe implements backfill.TokenSink.
func (w *Watcher) Observe(ctx context.Context, blocks []chain.Rows) error {
	found := map[common.Address]firstTransfer{}
	var order []common.Address
	var topics []common.Hash // reused from log to log
	w.mu.Lock()
	if len(w.claimed) > maxClaims {
		// A follower runs for ever and a backfill from genesis meets millions of tokens: forget the claims
		// rather than grow. What was forgotten and is stored by now is found by ReadTokens below; the rest is
		// at worst read and published once more, which the store keeps once.
		clear(w.claimed)
	}
	for i := range blocks {
		for j := range blocks[i].Logs {
			lg := &blocks[i].Logs[j]
			topics = topics[:0]
			for _, t := range lg.Topics {
				topics = append(topics, common.BytesToHash(t))
			}
			transfers, err := abi.TokenTransfers(abi.Log{Address: common.BytesToAddress(lg.Address), Topics: topics, Data: lg.Data})
			if err != nil || len(transfers) == 0 {
				continue
			}
			a := common.BytesToAddress(lg.Address)
			if _, ok := found[a]; ok {
				continue
			}
			if n, ok := w.claimed[a]; ok && n <= lg.BlockNumber {
				continue
			}
			w.claimed[a] = lg.BlockNumber
			found[a] = firstTransfer{lg.BlockNumber, transfers[0].Standard}
			order = append(order, a)
		}
	}
	w.mu.Unlock()
	if len(order) == 0 {
		return nil
	}
	// A failed Observe gives its claims up: its retry, or another batch, must read them again.
	published := false
	defer func() {
		if !published {
			w.unclaim(found)
		}
	}()
	addrs := make([][]byte, len(order))
	for i, a := range order {
		addrs[i] = a.Bytes()
	}
	stored, err := store.ReadTokens(ctx, w.db, addrs)
	if err != nil {
		return err
	}
	// One read per block, each at its block: a token's first transfer is where it is first described.
	byBlock := map[uint64][]Token{}
	var blockOrder []uint64
	for _, a := range order {
		if stored[string(a.Bytes())] {
			continue
		}
		f := found[a]
		if _, ok := byBlock[f.block]; !ok {
			blockOrder = append(blockOrder, f.block)
		}
		byBlock[f.block] = append(byBlock[f.block], Token{Address: a, Standard: f.standard})
	}
	var acks acknowledgements
	items := 0
	for _, n := range blockOrder {
		got, err := w.reader.Read(ctx, byBlock[n], n)
		if err != nil {
			return acks.wait(err)
		}
		for _, t := range got {
			value, err := format.EncodeETLToken(t)
			if err != nil {
				return acks.wait(err)
			}
			a := common.BytesToAddress(t.Address)
			acks.add()
			if err := w.pub.Publish(ctx, []byte(a.Hex()), value, acks.done); err != nil {
				acks.done(err)
				return acks.wait(fmt.Errorf("publish token item of %s: %w", a, err))
			}
			items++
		}
	}
	if err := acks.wait(nil); err != nil {
		return err
	}
	published = true
	w.log.Info("token items published", "tokens", items, "blocks", len(blockOrder))
	return nil
}

// firstTransfer is where a batch saw a token first.
type firstTransfer struct {
	block    uint64
	standard string
}

// unclaim gives up the claims of a failed Observe.
func (w *Watcher) unclaim(found map[common.Address]firstTransfer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, f := range found {
		if w.claimed[a] == f.block {
			delete(w.claimed, a)
		}
	}
}
