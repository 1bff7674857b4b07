package abi

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// Log is the raw log input.
type Log struct {
	Address common.Address
	Topics  []common.Hash
	Data    []byte
}

// Event is a decoded log.
type Event struct {
	Name      string // e.g. "Transfer"
	Signature string // canonical, e.g. "Transfer(address,address,uint256)"
	ABIName   string // registry name of the ABI, e.g. "ERC20" (file name without .json)
	Args      []byte // JSON object, keys = ABI parameter names in ABI order ("arg0","arg1"… for unnamed)
}

// Call is decoded calldata.
type Call struct {
	Name, Signature, ABIName string
	Args                     []byte // JSON object, same rules as Event.Args
}

// Token standards reported in Transfer.Standard.
const (
	StandardERC20   = "erc20"
	StandardERC721  = "erc721"
	StandardERC1155 = "erc1155"
)

// Transfer is one token movement; Standard is "erc20" | "erc721" | "erc1155".
type Transfer struct {
	Token      common.Address
	From, To   common.Address
	TokenID    *big.Int // nil for erc20
	Value      *big.Int // erc20 amount; 1 for erc721; amount for erc1155
	Standard   string
	BatchIndex int // position inside an ERC-1155 TransferBatch, 0 otherwise
}
