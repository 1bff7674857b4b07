package simchain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
)

// ChainID is the simulated chain's id (go-ethereum's dev chain).
var ChainID = big.NewInt(1337)

// Node is a simulated backend with the addresses it serves JSON-RPC on.
type Node struct {
	*simulated.Backend
	URL   string // http://127.0.0.1:PORT
	WSURL string // ws://127.0.0.1:PORT, the same listener
}

// Start starts a simulated chain whose genesis holds alloc, serving the eth, net and web3 APIs over HTTP and
// WebSocket on a free local port.
func Start(alloc types.GenesisAlloc) (*Node, error) {
	n, port, err := OnFreePort(func(port int) (b *simulated.Backend, err error) {
		// simulated.NewBackend panics when its node cannot start (the port taken meanwhile, say).
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("start simulated backend: %v", p)
			}
		}()
		return simulated.NewBackend(alloc, func(nc *node.Config, _ *ethconfig.Config) {
			modules := []string{"eth", "net", "web3"}
			nc.HTTPHost, nc.HTTPPort, nc.HTTPModules = "127.0.0.1", port, modules
			// go-ethereum upgrades HTTP connections on the same port to WebSocket (new-heads subscriptions).
			nc.WSHost, nc.WSPort, nc.WSModules = "127.0.0.1", port, modules
		}), nil
	})
	if err != nil {
		return nil, err
	}
	return &Node{Backend: n, URL: fmt.Sprintf("http://127.0.0.1:%d", port), WSURL: fmt.Sprintf("ws://127.0.0.1:%d", port)}, nil
}

// OnFreePort calls start with a free local port. A node is configured with a port number rather than a
// listener, so another process can take the port between the check and the start: start is tried again on
// another port, up to three times.
func OnFreePort[T any](start func(port int) (T, error)) (T, int, error) {
	var errs []error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			var zero T
			return zero, 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		v, err := start(port)
		if err == nil {
			return v, port, nil
		}
		errs = append(errs, err)
	}
	var zero T
	return zero, 0, errors.Join(errs...)
}

// Client is what Send needs of a node's client (simulated.Client and ethclient.Client both are).
type Client interface {
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
}

// Send signs a dynamic-fee transaction of key with the account's pending nonce and submits it. It returns once
// the pool holds it (the pool takes transactions in asynchronously: until the pending nonce moves past this
// one, the next Send would read the same nonce and be refused as an underpriced replacement), or after 10 s.
func Send(ctx context.Context, c Client, key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte, gas uint64) (common.Hash, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		return common.Hash{}, fmt.Errorf("read nonce of %s: %w", from, err)
	}
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return common.Hash{}, fmt.Errorf("read head: %w", err)
	}
	tip := big.NewInt(2e9)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: ChainID, Nonce: nonce, To: to, Value: value, Gas: gas,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip), Data: data})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(ChainID), key)
	if err != nil {
		return common.Hash{}, fmt.Errorf("sign transaction: %w", err)
	}
	if err := c.SendTransaction(ctx, signed); err != nil {
		return common.Hash{}, fmt.Errorf("send transaction %d of %s: %w", nonce, from, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.PendingNonceAt(ctx, from)
		if err != nil {
			return common.Hash{}, fmt.Errorf("read nonce of %s: %w", from, err)
		}
		if n > nonce {
			return signed.Hash(), nil
		}
		if time.Now().After(deadline) {
			return common.Hash{}, fmt.Errorf("transaction %d of %s: not in the pool after 10 s", nonce, from)
		}
		select {
		case <-ctx.Done():
			return common.Hash{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
