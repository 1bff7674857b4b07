package abi

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// TestSelectorsLikeEthereumETL: the dispatcher scan of real mainnet contracts (a 2015 contract, a 2016 token,
// CryptoKitties) finds exactly the function selectors ethereum-etl lists for them, but for the 0xffffffff
// mask its scan takes for one, and judges ERC-20 and ERC-721 as ethereum-etl does.
func TestSelectorsLikeEthereumETL(t *testing.T) {
	files := []string{
		"test_stream/blocks_508110_508110/expected_contracts.json",
		"test_stream/blocks_2112234_2112234/expected_contracts.json",
		"test_export_contracts_job/erc721_contract/expected_contracts.json",
	}
	var erc20, erc721 int
	for _, f := range files {
		fh, err := os.Open(filepath.Join(etlDir, f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var c struct {
				Address   string   `json:"address"`
				Bytecode  string   `json:"bytecode"`
				Sighashes []string `json:"function_sighashes"`
				IsERC20   bool     `json:"is_erc20"`
				IsERC721  bool     `json:"is_erc721"`
			}
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			sels := Selectors(hexutil.MustDecode(c.Bytecode))
			var got []string
			for _, s := range sels {
				got = append(got, hexutil.Encode(s[:]))
			}
			want := slices.DeleteFunc(slices.Clone(c.Sighashes), func(s string) bool { return s == "0xffffffff" })
			if !slices.Equal(got, want) {
				t.Errorf("%s: selectors %v, ethereum-etl %v", c.Address, got, want)
			}
			in := InterfacesOf(sels)
			if in.ERC20 != c.IsERC20 || in.ERC721 != c.IsERC721 || in.ERC1155 {
				t.Errorf("%s: %+v, ethereum-etl erc20 %v erc721 %v", c.Address, in, c.IsERC20, c.IsERC721)
			}
			if in.ERC20 {
				erc20++
			}
			if in.ERC721 {
				erc721++
			}
		}
		fh.Close()
	}
	if erc20 != 1 || erc721 != 1 {
		t.Errorf("%d ERC-20 and %d ERC-721 contracts among the fixtures, want one of each", erc20, erc721)
	}
	// Push data is skipped: a PUSH4 EQ pattern inside a PUSH32's data is not a selector.
	code := append([]byte{0x7f}, make([]byte, 32)...)
	copy(code[1:], []byte{0x63, 0xa9, 0x05, 0x9c, 0xbb, 0x14})
	if got := Selectors(append(code, 0x63, 0x18, 0x16, 0x0d, 0xdd, 0x81, 0x14)); len(got) != 1 || hexutil.Encode(got[0][:]) != "0x18160ddd" {
		t.Errorf("selectors %x", got)
	}
}
