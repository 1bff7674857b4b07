package abi

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestUniswapSwapsMatchTransfers checks decoded swap amounts against the
// token transfers of the same transaction (block 17173049): an amount that
// went into the pool must appear as a Transfer to the pool, an amount that
// left it as a Transfer from the pool, both before the Swap log. Uniswap
// sorts token0 < token1 by address, which also catches swapped arguments.
func TestUniswapSwapsMatchTransfers(t *testing.T) {
	reg := defaultRegistry(t)
	logs := loadETLLogs(t, blockDir+"/expected_logs.json")

	type xfer struct {
		tr       Transfer
		logIndex int64
	}
	byTx := map[string][]xfer{}
	for _, l := range logs {
		trs, err := TokenTransfers(l.Log)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			if tr.Standard == StandardERC20 {
				byTx[l.TxHash] = append(byTx[l.TxHash], xfer{tr, l.LogIndex})
			}
		}
	}
	prevSwap := map[string]int64{} // tx+pool -> log index of the pool's previous Swap
	// find returns the token of the closest earlier transfer of amount
	// into (in=true) or out of the pool.
	find := func(l fixtureLog, pool common.Address, amount *big.Int, in bool) (common.Address, bool) {
		xs := byTx[l.TxHash]
		for i := len(xs) - 1; i >= 0; i-- {
			x := xs[i]
			if x.logIndex >= l.LogIndex || x.tr.Value.Cmp(amount) != 0 {
				continue
			}
			if (in && x.tr.To == pool) || (!in && x.tr.From == pool) {
				return x.tr.Token, true
			}
		}
		// Fee-on-transfer tokens split what the pool sends into several
		// Transfer logs (recipient + fee): then their sum is the amount.
		if !in {
			sums := map[common.Address]*big.Int{}
			for _, x := range xs {
				prev, ok := prevSwap[l.TxHash+pool.Hex()]
				if !ok {
					prev = -1
				}
				if x.logIndex < l.LogIndex && x.logIndex > prev && x.tr.From == pool {
					if sums[x.tr.Token] == nil {
						sums[x.tr.Token] = new(big.Int)
					}
					sums[x.tr.Token].Add(sums[x.tr.Token], x.tr.Value)
				}
			}
			for tok, sum := range sums {
				if sum.Cmp(amount) == 0 {
					return tok, true
				}
			}
			// A token whose fee is burnt without a Transfer log: the only
			// trace is a transfer out of the pool for less than the amount.
			for _, x := range xs {
				if x.logIndex < l.LogIndex && x.tr.From == pool && unloggedFeeTokens[x.tr.Token] &&
					x.tr.Value.Cmp(amount) < 0 && new(big.Int).Mul(x.tr.Value, big.NewInt(100)).Cmp(new(big.Int).Mul(amount, big.NewInt(90))) >= 0 {
					return x.tr.Token, true
				}
			}
		}
		return common.Address{}, false
	}
	num := func(t *testing.T, m map[string]any, k string) *big.Int {
		t.Helper()
		s, ok := m[k].(string)
		if !ok {
			t.Fatalf("arg %s is %T, want a decimal string", k, m[k])
		}
		b, ok := new(big.Int).SetString(s, 10)
		if !ok {
			t.Fatalf("arg %s = %q is not a decimal integer", k, s)
		}
		return b
	}

	var v2, v3 int
	for _, l := range logs {
		ev, ok, err := reg.DecodeLog(l.Log)
		if err != nil {
			t.Fatalf("log %d: %v", l.LogIndex, err)
		}
		if !ok || ev.Name != "Swap" {
			continue
		}
		keys, args := decodeArgs(t, ev.Args)
		pool := l.Address
		// token[0], token[1]: the token seen moving for amount0 / amount1.
		var token [2]common.Address
		var seen [2]bool
		check := func(side int, amount *big.Int, in bool, what string) {
			if amount.Sign() == 0 {
				return
			}
			tok, ok := find(l, pool, amount, in)
			if !ok {
				t.Errorf("tx %s log %d: %s = %s has no matching transfer (in=%v)", l.TxHash, l.LogIndex, what, amount, in)
				return
			}
			if seen[side] && token[side] != tok {
				t.Errorf("tx %s log %d: %s moved token %s, other amount of the same side moved %s", l.TxHash, l.LogIndex, what, tok, token[side])
			}
			token[side], seen[side] = tok, true
		}
		switch ev.Signature {
		case "Swap(address,uint256,uint256,uint256,uint256,address)":
			v2++
			if ev.ABIName != "UniswapV2Pair" || !equalStrings(keys, []string{"sender", "amount0In", "amount1In", "amount0Out", "amount1Out", "to"}) {
				t.Fatalf("V2 swap decoded as %s %v", ev.ABIName, keys)
			}
			check(0, num(t, args, "amount0In"), true, "amount0In")
			check(1, num(t, args, "amount1In"), true, "amount1In")
			check(0, num(t, args, "amount0Out"), false, "amount0Out")
			check(1, num(t, args, "amount1Out"), false, "amount1Out")
		case "Swap(address,address,int256,int256,uint160,uint128,int24)":
			v3++
			if ev.ABIName != "UniswapV3Pool" {
				t.Fatalf("V3 swap decoded as %s", ev.ABIName)
			}
			a0, a1 := num(t, args, "amount0"), num(t, args, "amount1")
			if a0.Sign() == a1.Sign() {
				t.Errorf("tx %s log %d: amount0 %s and amount1 %s have the same sign", l.TxHash, l.LogIndex, a0, a1)
			}
			check(0, new(big.Int).Abs(a0), a0.Sign() > 0, "amount0")
			check(1, new(big.Int).Abs(a1), a1.Sign() > 0, "amount1")
			num(t, args, "tick") // int24 must be a decimal string too
		default:
			continue
		}
		prevSwap[l.TxHash+pool.Hex()] = l.LogIndex
		if !seen[0] || !seen[1] {
			t.Errorf("tx %s log %d: swap did not move both tokens", l.TxHash, l.LogIndex)
			continue
		}
		if bytes.Compare(token[0][:], token[1][:]) >= 0 {
			t.Errorf("tx %s log %d: token0 %s is not below token1 %s: amounts are in the wrong slots", l.TxHash, l.LogIndex, token[0], token[1])
		}
	}
	if v2 != 27 || v3 != 5 {
		t.Errorf("decoded %d V2 and %d V3 swaps, want 27 and 5", v2, v3)
	}
}

// unloggedFeeTokens take a transfer fee without logging it (checked by hand
// on block 17173049: the recipient gets exactly 95% of the pool's amountOut).
var unloggedFeeTokens = map[common.Address]bool{
	common.HexToAddress("0x83946345b86ee5ccc046de8c2ae4fcf1bad92317"): true,
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var _ = json.Number("") // decodeArgs returns json.Number for numbers
