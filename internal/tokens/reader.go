package tokens

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

// The ERC-20 metadata functions' selectors.
var (
	selName        = hexutil.MustDecode("0x06fdde03")
	selSymbol      = hexutil.MustDecode("0x95d89b41")
	selDecimals    = hexutil.MustDecode("0x313ce567")
	selTotalSupply = hexutil.MustDecode("0x18160ddd")
)

// callsPerToken is the number of eth_calls a token costs.
const callsPerToken = 4

// Reader reads token metadata over JSON-RPC.
type Reader struct {
	client *rpc.Client
	// batch is how many tokens one batch request asks for (four calls each).
	batch int
}

// NewReader reads through c, batch tokens per request (0 means 50: 200 calls, which public nodes accept).
func NewReader(c *rpc.Client, batch int) *Reader {
	if batch <= 0 {
		batch = 50
	}
	return &Reader{client: c, batch: batch}
}

// Token is a token to read: its address and, when known, its standard (from its transfers).
type Token struct {
	Address  common.Address
	Standard string
}

// Head is the node's latest block number, the block a fill reads every token at.
func (r *Reader) Head(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	if err := r.client.CallContext(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, fmt.Errorf("read the head block number: %w", err)
	}
	return uint64(n), nil
}

// Read returns the metadata of tokens at block, in their order. A call the contract reverts or answers with
// something unreadable leaves its field nil; only a failure of the request itself (transport, HTTP, a batch
// the node refused whole) is an error, which the caller may retry.
func (r *Reader) Read(ctx context.Context, tokens []Token, block uint64) ([]chain.Token, error) {
	out := make([]chain.Token, 0, len(tokens))
	for start := 0; start < len(tokens); start += r.batch {
		part := tokens[start:min(start+r.batch, len(tokens))]
		got, err := r.read(ctx, part, block)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

type callArgs struct {
	To   common.Address `json:"to"`
	Data hexutil.Bytes  `json:"data"`
}

func (r *Reader) read(ctx context.Context, tokens []Token, block uint64) ([]chain.Token, error) {
	at := hexutil.EncodeUint64(block)
	elems := make([]rpc.BatchElem, 0, len(tokens)*callsPerToken)
	results := make([]hexutil.Bytes, len(tokens)*callsPerToken)
	for i, t := range tokens {
		for j, sel := range [callsPerToken][]byte{selName, selSymbol, selDecimals, selTotalSupply} {
			elems = append(elems, rpc.BatchElem{Method: "eth_call", Args: []any{callArgs{To: t.Address, Data: sel}, at},
				Result: &results[i*callsPerToken+j]})
		}
	}
	if err := r.client.BatchCallContext(ctx, elems); err != nil {
		return nil, fmt.Errorf("read %d tokens at block %d: %w", len(tokens), block, err)
	}
	for _, e := range elems {
		if e.Error != nil && !isCallError(e.Error) {
			return nil, fmt.Errorf("read %d tokens at block %d: %w", len(tokens), block, e.Error)
		}
	}
	out := make([]chain.Token, len(tokens))
	for i, t := range tokens {
		ret := func(j int) []byte {
			if elems[i*callsPerToken+j].Error != nil {
				return nil
			}
			return results[i*callsPerToken+j]
		}
		n := block
		out[i] = chain.Token{
			Address:     t.Address.Bytes(),
			Name:        format.TokenText(Text(ret(0))),
			Symbol:      format.TokenText(Text(ret(1))),
			Decimals:    Decimals(ret(2)),
			TotalSupply: Uint256(ret(3)),
			Standard:    t.Standard,
			BlockNumber: &n,
			Source:      chain.TokenFromChain,
		}
	}
	return out, nil
}

// isCallError tells an answer about the call (it reverted, or failed in the EVM: out of gas, an invalid
// opcode, the address has no such function and no fallback) from a failure to get an answer. Only the
// former leaves a field NULL for good; anything else (a timeout, a rate limit, state the node does not have,
// an error chainsink does not know) fails the read, to be retried, so that no outage is stored as a token
// without metadata. geth answers a revert with code 3 and other EVM failures with -32000 and the EVM's
// message; other nodes use the same messages.
func isCallError(err error) bool {
	var re rpc.Error
	if !errors.As(err, &re) {
		return false
	}
	if re.ErrorCode() == 3 {
		return true
	}
	if re.ErrorCode() != -32000 {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, s := range evmFailures {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// evmFailures are the messages of calls that failed in the EVM (go-ethereum's core/vm errors).
var evmFailures = []string{"revert", "out of gas", "invalid opcode", "invalid jump", "stack underflow",
	"stack overflow", "write protection", "return data out of bounds", "max code size", "max initcode size",
	"contract address collision", "insufficient balance", "gas uint64 overflow", "invalid code"}

// Text decodes a name() or symbol() return: an ABI string, or else a bytes32 read up to its first NUL (MKR's
// and SAI's symbol). Anything else, including no return at all, is nil.
func Text(ret []byte) *string {
	if s, ok := abiString(ret); ok {
		return &s
	}
	if len(ret) == 32 {
		end := 0
		for end < 32 && ret[end] != 0 {
			end++
		}
		s := string(ret[:end])
		return &s
	}
	return nil
}

// abiString decodes ret as the ABI encoding of one string: an offset word, then at the offset a length word
// and that many bytes. It accepts any offset that stays inside ret, as the EVM's decoders do.
func abiString(ret []byte) (string, bool) {
	if len(ret) < 64 {
		return "", false
	}
	off, ok := word(ret[:32])
	if !ok || off > uint64(len(ret)-32) {
		return "", false
	}
	n, ok := word(ret[off : off+32])
	if !ok || n > uint64(len(ret))-off-32 {
		return "", false
	}
	return string(ret[off+32 : off+32+n]), true
}

// word is a 32-byte big-endian word that fits in 32 bits (offsets and lengths never need more).
func word(w []byte) (uint64, bool) {
	for _, b := range w[:28] {
		if b != 0 {
			return 0, false
		}
	}
	return uint64(w[28])<<24 | uint64(w[29])<<16 | uint64(w[30])<<8 | uint64(w[31]), true
}

// Decimals decodes a decimals() return: a uint8 in the first 32-byte word. A value above 255, which no token
// means, or a return shorter than a word, is nil.
func Decimals(ret []byte) *int32 {
	v := Uint256(ret)
	if v == nil || !v.IsInt64() || v.Int64() > 255 {
		return nil
	}
	d := int32(v.Int64())
	return &d
}

// Uint256 decodes a uint256 return: the first 32-byte word; nil when there is none.
func Uint256(ret []byte) *big.Int {
	if len(ret) < 32 {
		return nil
	}
	return new(big.Int).SetBytes(ret[:32])
}
