package simchain_test

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/chainsink/chainsink/internal/simchain"
)

// TestSendTwiceInOneBlock: two transactions of one account sent back to back take consecutive nonces and both
// land in the next block, which the node serves over its HTTP URL. (Send's wait for the pool guards a race
// seen only under load in CI: this test passes without it on an idle machine.)
func TestSendTwiceInOneBlock(t *testing.T) {
	ctx := context.Background()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	n, err := simchain.Start(types.GenesisAlloc{from: {Balance: big.NewInt(1e18)}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	to := common.HexToAddress("0x42")
	var sent []string
	for range 2 {
		h, err := simchain.Send(ctx, n.Client(), key, &to, big.NewInt(1000), nil, 21_000)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, h.Hex())
	}
	n.Commit()
	c, err := ethclient.DialContext(ctx, n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.BlockByNumber(ctx, big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Transactions()) != 2 || b.Transactions()[0].Hash().Hex() != sent[0] || b.Transactions()[1].Hash().Hex() != sent[1] {
		t.Fatalf("block 1 over %s holds %d transactions, want the two sent: %v", n.URL, len(b.Transactions()), sent)
	}
	if got, err := c.BalanceAt(ctx, to, nil); err != nil || got.Int64() != 2000 {
		t.Fatalf("balance of the recipient %v, %v; want 2000", got, err)
	}
}

// TestOnFreePortRetries: a start that loses the race for its port is tried again on another; after three
// failures the errors come back together.
func TestOnFreePortRetries(t *testing.T) {
	var ports []int
	v, port, err := simchain.OnFreePort(func(port int) (string, error) {
		ports = append(ports, port)
		if len(ports) < 3 {
			return "", errors.New("address already in use")
		}
		return "started", nil
	})
	if err != nil || v != "started" || port != ports[2] || port == 0 {
		t.Fatalf("OnFreePort = %q, %d, %v after ports %v; want the third start's", v, port, err, ports)
	}
	_, _, err = simchain.OnFreePort(func(int) (int, error) { return 0, errors.New("address already in use") })
	if err == nil {
		t.Fatal("OnFreePort succeeded though every start failed")
	}
}
