package tokens

import (
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

// list is the part of the tokenlists.org schema (https://github.com/Uniswap/token-lists) that a token row
// needs.
type list struct {
	Name   string `json:"name"`
	Tokens []struct {
		ChainID  uint64 `json:"chainId"`
		Address  string `json:"address"`
		Name     string `json:"name"`
		Symbol   string `json:"symbol"`
		Decimals *int   `json:"decimals"`
	} `json:"tokens"`
}

// ParseList returns the tokens of a token list that are on chainID, as rows of source token_list (ERC-20:
// token lists list fungible tokens). name is the list's name. An entry with a malformed address or
// decimals outside 0..255 is an error that names it, since the list, not the chain, is wrong.
func ParseList(data []byte, chainID uint64) (name string, out []chain.Token, err error) {
	var l list
	if err := json.Unmarshal(data, &l); err != nil {
		return "", nil, fmt.Errorf("parse token list: %w", err)
	}
	if l.Tokens == nil {
		return "", nil, fmt.Errorf("parse token list: no \"tokens\" array (not a tokenlists.org list?)")
	}
	for i, t := range l.Tokens {
		if t.ChainID != chainID {
			continue
		}
		if !common.IsHexAddress(t.Address) {
			return "", nil, fmt.Errorf("token list entry %d (%s): address %q is not an address", i, t.Symbol, t.Address)
		}
		row := chain.Token{
			Address:  common.HexToAddress(t.Address).Bytes(),
			Name:     format.TokenText(&t.Name),
			Symbol:   format.TokenText(&t.Symbol),
			Standard: "erc20",
			Source:   chain.TokenFromList,
		}
		if t.Decimals != nil {
			if *t.Decimals < 0 || *t.Decimals > 255 {
				return "", nil, fmt.Errorf("token list entry %d (%s): decimals %d outside 0..255", i, t.Symbol, *t.Decimals)
			}
			d := int32(*t.Decimals)
			row.Decimals = &d
		}
		out = append(out, row)
	}
	return l.Name, out, nil
}
