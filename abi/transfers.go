package abi

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"sync"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// tokenABI holds what TokenTransfers needs from the embedded ERC-20 and
// ERC-1155 ABIs, so that topic hashes and argument layouts come from the
// same files as the registry rather than from hand-copied constants.
type tokenABI struct {
	transfer   common.Hash // Transfer(address,address,uint256): ERC-20 and ERC-721
	single     common.Hash // TransferSingle(address,address,address,uint256,uint256)
	batch      common.Hash // TransferBatch(address,address,address,uint256[],uint256[])
	singleData gethabi.Arguments
	batchData  gethabi.Arguments
	uint256    gethabi.Type
}

var tokenEvents = sync.OnceValues(func() (*tokenABI, error) {
	load := func(name string) (gethabi.ABI, error) {
		b, err := embedded.ReadFile("abis/" + name + ".json")
		if err != nil {
			return gethabi.ABI{}, err
		}
		norm, err := normalizeABI(b)
		if err != nil {
			return gethabi.ABI{}, err
		}
		return gethabi.JSON(bytes.NewReader(norm))
	}
	erc20, err := load("ERC20")
	if err != nil {
		return nil, fmt.Errorf("loading ERC20 ABI: %w", err)
	}
	erc1155, err := load("ERC1155")
	if err != nil {
		return nil, fmt.Errorf("loading ERC1155 ABI: %w", err)
	}
	u256, err := gethabi.NewType("uint256", "", nil)
	if err != nil {
		return nil, fmt.Errorf("building uint256 type: %w", err)
	}
	tr, ok1 := erc20.Events["Transfer"]
	single, ok2 := erc1155.Events["TransferSingle"]
	batch, ok3 := erc1155.Events["TransferBatch"]
	if !ok1 || !ok2 || !ok3 {
		return nil, errors.New("loading token ABIs: Transfer, TransferSingle or TransferBatch missing")
	}
	return &tokenABI{
		transfer:   tr.ID,
		single:     single.ID,
		batch:      batch.ID,
		singleData: single.Inputs.NonIndexed(),
		batchData:  batch.Inputs.NonIndexed(),
		uint256:    u256,
	}, nil
})

var bigOne = big.NewInt(1)

// TokenTransfers extracts token movements from one log, by topic0 and topic
// count only (no registry, no address knowledge):
//   - Transfer, 3 topics + 32 bytes of data: ERC-20;
//   - Transfer, 4 topics + no data: ERC-721 (Value = 1, TokenID = tokenId);
//   - TransferSingle, 4 topics: one ERC-1155 row;
//   - TransferBatch, 4 topics: one ERC-1155 row per id, BatchIndex = position.
//
// Any other log, including Transfer with 1 or 2 topics (pre-standard tokens,
// CryptoKitties), returns nil, nil: with unindexed arguments nothing tells an
// ERC-20 amount from an ERC-721 token id. A log that has the right topic0
// and topic count but malformed data returns an error. Never panics.
func TokenTransfers(l Log) ([]Transfer, error) {
	return AppendTokenTransfers(nil, l)
}

// AppendTokenTransfers is TokenTransfers appending to dst (returned as it was when the log moves no token or
// fails), for a caller that reads a block's logs into one slice.
func AppendTokenTransfers(dst []Transfer, l Log) (out []Transfer, err error) {
	if len(l.Topics) == 0 {
		return dst, nil
	}
	te, err := tokenEvents()
	if err != nil {
		return dst, err
	}
	topic0 := l.Topics[0]
	if topic0 != te.transfer && topic0 != te.single && topic0 != te.batch {
		return dst, nil
	}
	if len(l.Topics) > maxTopics {
		return dst, fmt.Errorf("extracting token transfer: log has %d topics, the EVM allows %d", len(l.Topics), maxTopics)
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = dst, fmt.Errorf("extracting token transfer: go-ethereum abi panicked: %v", p)
		}
	}()
	from, to := addrTopic(l, 1), addrTopic(l, 2)
	switch {
	case topic0 == te.transfer && len(l.Topics) == 3:
		if len(l.Data) != 32 {
			return dst, fmt.Errorf("extracting ERC-20 transfer: data is %d bytes, want 32", len(l.Data))
		}
		v, err := readUint256(te, l.Data)
		if err != nil {
			return dst, fmt.Errorf("extracting ERC-20 transfer: %w", err)
		}
		return append(dst, Transfer{Token: l.Address, From: from, To: to, Value: v, Standard: StandardERC20}), nil

	case topic0 == te.transfer && len(l.Topics) == 4:
		if len(l.Data) != 0 {
			return dst, fmt.Errorf("extracting ERC-721 transfer: data is %d bytes, want 0", len(l.Data))
		}
		id, err := readUint256(te, l.Topics[3][:])
		if err != nil {
			return dst, fmt.Errorf("extracting ERC-721 transfer: %w", err)
		}
		return append(dst, Transfer{Token: l.Address, From: from, To: to, TokenID: id, Value: new(big.Int).Set(bigOne), Standard: StandardERC721}), nil

	case topic0 == te.single && len(l.Topics) == 4:
		// TransferSingle(operator, from, to, id, value): from/to are topics 2 and 3.
		from, to = addrTopic(l, 2), addrTopic(l, 3)
		if len(l.Data) != 64 {
			return dst, fmt.Errorf("extracting ERC-1155 TransferSingle: data is %d bytes, want 64", len(l.Data))
		}
		vals, err := te.singleData.UnpackValues(l.Data)
		if err != nil {
			return dst, fmt.Errorf("extracting ERC-1155 TransferSingle: %w", err)
		}
		id, ok1 := vals[0].(*big.Int)
		v, ok2 := vals[1].(*big.Int)
		if !ok1 || !ok2 {
			return dst, errors.New("extracting ERC-1155 TransferSingle: unexpected value types")
		}
		return append(dst, Transfer{Token: l.Address, From: from, To: to, TokenID: id, Value: v, Standard: StandardERC1155}), nil

	case topic0 == te.batch && len(l.Topics) == 4:
		from, to = addrTopic(l, 2), addrTopic(l, 3)
		vals, err := te.batchData.UnpackValues(l.Data)
		if err != nil {
			return dst, fmt.Errorf("extracting ERC-1155 TransferBatch: %w", err)
		}
		ids, ok1 := vals[0].([]*big.Int)
		vs, ok2 := vals[1].([]*big.Int)
		if !ok1 || !ok2 {
			return dst, errors.New("extracting ERC-1155 TransferBatch: unexpected value types")
		}
		if len(ids) != len(vs) {
			return dst, fmt.Errorf("extracting ERC-1155 TransferBatch: %d ids but %d values", len(ids), len(vs))
		}
		for i := range ids {
			dst = append(dst, Transfer{Token: l.Address, From: from, To: to, TokenID: ids[i], Value: vs[i], Standard: StandardERC1155, BatchIndex: i})
		}
		return dst, nil
	}
	return dst, nil
}

// addrTopic takes the low 20 bytes of an address topic, as the EVM and
// go-ethereum do; dirty high bytes are not rejected (ethereum-etl agrees).
func addrTopic(l Log, i int) common.Address {
	if i >= len(l.Topics) {
		return common.Address{}
	}
	return common.BytesToAddress(l.Topics[i][:])
}

func readUint256(te *tokenABI, word []byte) (*big.Int, error) {
	v, err := gethabi.ReadInteger(te.uint256, word)
	if err != nil {
		return nil, err
	}
	b, ok := v.(*big.Int)
	if !ok {
		return nil, fmt.Errorf("uint256 decoded as %T", v)
	}
	return b, nil
}
