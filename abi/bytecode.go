package abi

import (
	"bytes"
	"slices"

	"github.com/ethereum/go-ethereum/crypto"
)

// EVM opcodes that the dispatcher scan reads.
const (
	opPush1  = 0x60
	opPush4  = 0x63
	opPush32 = 0x7f
	opEQ     = 0x14
	opXOR    = 0x18 // Vyper compares with XOR
	opDup1   = 0x80
	opDup16  = 0x8f
	// opInvalid is the designated invalid instruction that solc puts at the end of a contract's code section:
	// what follows is data (the creation code of contracts it deploys, the metadata), not the dispatcher.
	opInvalid = 0xfe
)

// Selectors returns the function selectors that a contract's runtime code dispatches on, sorted: every
// PUSH4 whose value is compared with the calldata's selector, that is followed by EQ (or XOR), directly or
// after one DUP (solc's `DUP1 PUSH4 s EQ` and older `PUSH4 s DUP2 EQ`, Vyper's `PUSH4 s DUP2 XOR`). PUSH4s
// of other use, such as the selectors of the contract's own calls to other contracts and 0xffffffff masks,
// are left out. The push data of every PUSHn is skipped, so that no byte of data is read as an opcode, and
// the scan ends at the first INVALID: the dispatcher comes first, and after the code section come the
// creation code of the contracts it deploys (a factory's children, whose selectors are not its own) and
// the metadata. On
// ethereum-etl's mainnet contracts this gives exactly its function_sighashes, less the mask 0xffffffff that
// its first-basic-block scan counts.
func Selectors(code []byte) [][4]byte {
	var out [][4]byte
	for i := 0; i < len(code); i++ {
		op := code[i]
		if op == opInvalid {
			break
		}
		if op < opPush1 || op > opPush32 {
			continue
		}
		if op == opPush4 && i+5 < len(code) {
			next := code[i+5]
			compared := next == opEQ || next == opXOR ||
				(next >= opDup1 && next <= opDup16 && i+6 < len(code) && (code[i+6] == opEQ || code[i+6] == opXOR))
			if compared {
				out = append(out, [4]byte(code[i+1:i+5]))
			}
		}
		i += int(op-opPush1) + 1
	}
	slices.SortFunc(out, func(a, b [4]byte) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// Interfaces says which token standards a contract's selectors implement, by ethereum-etl's rules for
// ERC-20 and ERC-721 (every function a wallet needs, not the optional name/symbol/decimals) and the same rule
// for ERC-1155. A proxy, whose code only forwards, implements none.
type Interfaces struct {
	ERC20, ERC721, ERC1155 bool
}

func selectorsOf(sigs ...string) [][4]byte {
	out := make([][4]byte, len(sigs))
	for i, s := range sigs {
		out[i] = [4]byte(crypto.Keccak256([]byte(s))[:4])
	}
	return out
}

var (
	erc20Functions = selectorsOf("totalSupply()", "balanceOf(address)", "transfer(address,uint256)",
		"transferFrom(address,address,uint256)", "approve(address,uint256)", "allowance(address,address)")
	erc721Functions = selectorsOf("balanceOf(address)", "ownerOf(uint256)", "approve(address,uint256)")
	// ERC-721 allows either transfer function: early tokens (CryptoKitties) have transfer, all have transferFrom.
	erc721Transfers  = selectorsOf("transfer(address,uint256)", "transferFrom(address,address,uint256)")
	erc1155Functions = selectorsOf("safeTransferFrom(address,address,uint256,uint256,bytes)",
		"safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", "balanceOf(address,uint256)",
		"balanceOfBatch(address[],uint256[])", "setApprovalForAll(address,bool)", "isApprovedForAll(address,address)")
)

// InterfacesOf judges the sorted selectors sels (as Selectors returns them).
func InterfacesOf(sels [][4]byte) Interfaces {
	has := func(s [4]byte) bool {
		_, ok := slices.BinarySearchFunc(sels, s, func(a, b [4]byte) int { return bytes.Compare(a[:], b[:]) })
		return ok
	}
	all := func(want [][4]byte) bool {
		for _, s := range want {
			if !has(s) {
				return false
			}
		}
		return true
	}
	return Interfaces{
		ERC20:   all(erc20Functions),
		ERC721:  all(erc721Functions) && (has(erc721Transfers[0]) || has(erc721Transfers[1])),
		ERC1155: all(erc1155Functions),
	}
}
