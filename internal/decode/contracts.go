package decode

import (
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/store/chain"
)

// Contracts derives the contracts that rows' transactions created, for a message written in mode m: from the
// create frames of their traces when rows have traces (every successful create at any depth, its code the
// frame's output), and otherwise, for bundles, from the receipts' contractAddress, for the transactions that
// succeeded (or, before Byzantium, whose status is not known), with no code. Single items (ReplaceRows) take
// contracts from trace items only: a contract row belongs to its create frame, which an ethereum-etl
// transaction item would duplicate, without the code, under the same key.
func Contracts(rows *chain.Rows, m chain.Mode) []chain.Contract {
	var out []chain.Contract
	if len(rows.Traces) > 0 || m == chain.ReplaceRows {
		for i := range rows.Traces {
			t := &rows.Traces[i]
			if t.TraceType != "create" || t.Status != 1 || len(t.ToAddress) == 0 {
				continue
			}
			c := chain.Contract{BlockNumber: t.BlockNumber, TransactionIndex: t.TransactionIndex,
				TraceAddress: t.TraceAddress, Address: t.ToAddress, TransactionHash: t.TransactionHash,
				BlockTimestamp: t.BlockTimestamp, Deployer: t.FromAddress}
			withCode(&c, t.Output)
			out = append(out, c)
		}
		return out
	}
	for i := range rows.Transactions {
		tx := &rows.Transactions[i]
		if len(tx.ContractAddress) == 0 || tx.ToAddress != nil || (tx.Status != nil && *tx.Status != 1) {
			continue
		}
		out = append(out, chain.Contract{BlockNumber: tx.BlockNumber, TransactionIndex: tx.TransactionIndex,
			TraceAddress: []int32{}, Address: tx.ContractAddress, TransactionHash: tx.Hash,
			BlockTimestamp: tx.BlockTimestamp, Deployer: tx.FromAddress})
	}
	return out
}

// withCode sets what the deployed code tells: its hash and size and the token standards it dispatches.
func withCode(c *chain.Contract, code []byte) {
	size := int32(len(code))
	in := abi.InterfacesOf(abi.Selectors(code))
	c.CodeHash, c.CodeSize = crypto.Keccak256(code), &size
	c.IsERC20, c.IsERC721, c.IsERC1155 = &in.ERC20, &in.ERC721, &in.ERC1155
}
