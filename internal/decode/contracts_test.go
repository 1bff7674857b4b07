package decode_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/format"
	"github.com/chainsink/chainsink/store/chain"
)

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

// TestContractsOfETLTracesAreETLContracts: the contracts that chainsink derives from ethereum-etl's trace
// items are ethereum-etl's own contract items of the same mainnet blocks (address, block, code, is_erc20,
// is_erc721), which is why contract items themselves add no rows.
func TestContractsOfETLTracesAreETLContracts(t *testing.T) {
	root, reg := testdataAndABIs(t)
	dec := decode.New(reg, nil)
	for _, b := range []string{"blocks_508110_508110", "blocks_2112234_2112234"} {
		dir := filepath.Join(root, "ethereum-etl/tests/resources/test_stream", b)
		var got []chain.Contract
		for _, item := range lines(t, filepath.Join(dir, "expected_traces.json")) {
			rows, failure := dec.Decode(format.EthereumETL, nil, item)
			if failure != nil {
				t.Fatalf("%s: %v", b, failure.Err)
			}
			got = append(got, rows.Contracts...)
		}
		want := lines(t, filepath.Join(dir, "expected_contracts.json"))
		if len(got) != len(want) {
			t.Fatalf("%s: %d contracts from the traces, ethereum-etl has %d", b, len(got), len(want))
		}
		for i, item := range want {
			var c struct {
				Address     string `json:"address"`
				Bytecode    string `json:"bytecode"`
				IsERC20     bool   `json:"is_erc20"`
				IsERC721    bool   `json:"is_erc721"`
				BlockNumber uint64 `json:"block_number"`
			}
			if err := json.Unmarshal(item, &c); err != nil {
				t.Fatal(err)
			}
			g := got[i]
			code := hexutil.MustDecode(c.Bytecode)
			if common.BytesToAddress(g.Address) != common.HexToAddress(c.Address) || g.BlockNumber != c.BlockNumber ||
				!bytes.Equal(g.CodeHash, crypto.Keccak256(code)) || int(*g.CodeSize) != len(code) ||
				*g.IsERC20 != c.IsERC20 || *g.IsERC721 != c.IsERC721 {
				t.Errorf("%s: contract %x at %d (erc20 %v, erc721 %v, code %d bytes); ethereum-etl: %s at %d (erc20 %v, erc721 %v, code %d bytes)",
					b, g.Address, g.BlockNumber, *g.IsERC20, *g.IsERC721, *g.CodeSize, c.Address, c.BlockNumber, c.IsERC20, c.IsERC721, len(code))
			}
		}
	}
}

// TestContractsOfETLTransactions: an ethereum-etl transaction item that created a contract gives no contract
// row (its create trace item does, with the code, under the same key); a bundle's receipt does when the
// bundle has no traces.
func TestContractsOfETLTransactions(t *testing.T) {
	created := []byte{0xae, 0x9b}
	tx := chain.Transaction{BlockNumber: 1, ContractAddress: created, Hash: []byte{1}}
	rows := chain.Rows{Transactions: []chain.Transaction{tx}}
	if got := decode.Contracts(&rows, chain.ReplaceRows); len(got) != 0 {
		t.Errorf("items: %d contracts from a transaction", len(got))
	}
	if got := decode.Contracts(&rows, chain.ReplaceBlocks); len(got) != 1 || !bytes.Equal(got[0].Address, created) || got[0].CodeHash != nil {
		t.Errorf("bundle: contracts %+v", got)
	}
}
