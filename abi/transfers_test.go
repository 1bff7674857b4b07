package abi

import (
	"math/big"
	"slices"
	"strings"
	"testing"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestTokenTransfersEthereumETL feeds real logs through TokenTransfers and
// compares with ethereum-etl's independently decoded token_transfers.
func TestTokenTransfersEthereumETL(t *testing.T) {
	cases := []struct {
		name     string
		logs     func(t *testing.T) []fixtureLog
		expected func(t *testing.T) []transferRow
		want     int
		erc721   int
		skipped  int // logs that must yield nothing
	}{
		{
			name: "block 17173049",
			logs: func(t *testing.T) []fixtureLog { return loadETLLogs(t, blockDir+"/expected_logs.json") },
			expected: func(t *testing.T) []transferRow {
				var rows []transferRow
				decodeJSONLines(t, blockDir+"/expected_token_transfers.json", func(m map[string]any) { rows = append(rows, rowFromMap(t, m)) })
				return rows
			},
			want: 114, erc721: 8, skipped: 271 - 114,
		},
		{
			name: "block 483920 (receipts)",
			logs: func(t *testing.T) []fixtureLog {
				return loadReceiptLogs(t, etlDir+"/test_export_receipts_job/receipts_with_logs")
			},
			expected: func(t *testing.T) []transferRow {
				return csvRows(t, etlDir+"/test_export_token_transfers_job/block_with_transfers/expected_token_transfers.csv")
			},
			want: 2,
		},
		{
			name: "block 1452581 (logs.csv, one non-Transfer log)",
			logs: func(t *testing.T) []fixtureLog {
				var out []fixtureLog
				for _, m := range readCSV(t, etlDir+"/test_extract_token_transfers_job/logs/logs.csv") {
					out = append(out, logFromMap(t, m))
				}
				return out
			},
			expected: func(t *testing.T) []transferRow {
				return csvRows(t, etlDir+"/test_extract_token_transfers_job/logs/expected_token_transfers.csv")
			},
			want: 2, skipped: 1,
		},
		{
			name: "block 1755635 (TheDAO)",
			logs: func(t *testing.T) []fixtureLog {
				return loadETLLogs(t, etlDir+"/test_stream/blocks_1755634_1755635/expected_logs.json")
			},
			expected: func(t *testing.T) []transferRow {
				var rows []transferRow
				decodeJSONLines(t, etlDir+"/test_stream/blocks_1755634_1755635/expected_token_transfers.json", func(m map[string]any) { rows = append(rows, rowFromMap(t, m)) })
				return rows
			},
			want: 1, skipped: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []transferRow
			erc721, skipped := 0, 0
			for _, l := range tc.logs(t) {
				trs, err := TokenTransfers(l.Log)
				if err != nil {
					t.Fatalf("log %s#%d: %v", l.TxHash, l.LogIndex, err)
				}
				if len(trs) == 0 {
					skipped++
				}
				for _, tr := range trs {
					// ethereum-etl's value is the tokenId for ERC-721.
					v := tr.Value
					if tr.Standard == StandardERC721 {
						erc721++
						if tr.Value.Cmp(big.NewInt(1)) != 0 {
							t.Errorf("ERC-721 value = %s, want 1", tr.Value)
						}
						v = tr.TokenID
					}
					if tr.Standard == StandardERC20 && tr.TokenID != nil {
						t.Errorf("ERC-20 transfer with TokenID %s", tr.TokenID)
					}
					got = append(got, transferRow{
						Token: hexAddr(tr.Token), From: hexAddr(tr.From), To: hexAddr(tr.To),
						Value: v.String(), TxHash: strings.ToLower(l.TxHash), LogIndex: l.LogIndex,
					})
				}
			}
			want := tc.expected(t)
			if len(want) != tc.want {
				t.Fatalf("fixture has %d expected rows, want %d", len(want), tc.want)
			}
			sortRows(got)
			sortRows(want)
			if len(got) != len(want) {
				t.Errorf("got %d transfers, want %d", len(got), len(want))
			}
			for i := 0; i < min(len(got), len(want)); i++ {
				if got[i] != want[i] {
					t.Errorf("row %d:\n got  %v\n want %v", i, got[i], want[i])
				}
			}
			if erc721 != tc.erc721 {
				t.Errorf("ERC-721 rows = %d, want %d", erc721, tc.erc721)
			}
			if skipped != tc.skipped {
				t.Errorf("logs without transfers = %d, want %d", skipped, tc.skipped)
			}
		})
	}
}

func csvRows(t *testing.T, path string) []transferRow {
	var rows []transferRow
	for _, m := range readCSV(t, path) {
		rows = append(rows, rowFromMap(t, m))
	}
	return rows
}

func sortRows(rows []transferRow) {
	slices.SortFunc(rows, func(a, b transferRow) int {
		if c := strings.Compare(a.TxHash, b.TxHash); c != 0 {
			return c
		}
		return int(a.LogIndex - b.LogIndex)
	})
}

// TestWETHDepositWithdrawalAreNotTransfers pins the rule documented in doc.go.
func TestWETHDepositWithdrawalAreNotTransfers(t *testing.T) {
	deposit := crypto.Keccak256Hash([]byte("Deposit(address,uint256)"))
	withdrawal := crypto.Keccak256Hash([]byte("Withdrawal(address,uint256)"))
	reg := defaultRegistry(t)
	n := map[string]int{}
	for _, l := range loadETLLogs(t, blockDir+"/expected_logs.json") {
		if l.Topics[0] != deposit && l.Topics[0] != withdrawal {
			continue
		}
		trs, err := TokenTransfers(l.Log)
		if err != nil || trs != nil {
			t.Errorf("log %d: TokenTransfers = %v, %v; want nil, nil", l.LogIndex, trs, err)
		}
		ev, ok, err := reg.DecodeLog(l.Log)
		if !ok || err != nil {
			t.Fatalf("log %d: DecodeLog ok=%v err=%v", l.LogIndex, ok, err)
		}
		n[ev.Name+"/"+ev.ABIName]++
	}
	if n["Deposit/WETH9"] != 14 || n["Withdrawal/WETH9"] != 11 {
		t.Errorf("WETH events decoded: %v, want 14 Deposit and 11 Withdrawal from WETH9", n)
	}
}

// erc1155Event returns the embedded ERC1155 ABI's event, for packing test logs.
func erc1155Event(t testing.TB, name string) gethabi.Event {
	t.Helper()
	b, err := embedded.ReadFile("abis/ERC1155.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := gethabi.JSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := a.Events[name]
	if !ok {
		t.Fatalf("ERC1155 ABI has no %s", name)
	}
	return ev
}

func addrHash(a common.Address) common.Hash { return common.BytesToHash(a[:]) }

func TestTokenTransfersERC1155(t *testing.T) {
	single := erc1155Event(t, "TransferSingle")
	batch := erc1155Event(t, "TransferBatch")
	token := common.HexToAddress("0x76be3b62873462d2142405439777e971754e8e77")
	op := common.HexToAddress("0x1111111111111111111111111111111111111111")
	from := common.HexToAddress("0x2222222222222222222222222222222222222222")
	to := common.HexToAddress("0x3333333333333333333333333333333333333333")
	topics := func(ev gethabi.Event) []common.Hash {
		return []common.Hash{ev.ID, addrHash(op), addrHash(from), addrHash(to)}
	}
	big2 := func(s string) *big.Int { b, _ := new(big.Int).SetString(s, 10); return b }
	maxU := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

	singleData, err := single.Inputs.NonIndexed().Pack(big.NewInt(10527), maxU)
	if err != nil {
		t.Fatal(err)
	}
	ids := []*big.Int{big.NewInt(1), big2("115792089237316195423570985008687907853269984665640564039457584007913129639935"), big.NewInt(0)}
	vals := []*big.Int{big.NewInt(5), big.NewInt(1), big.NewInt(7)}
	batchData, err := batch.Inputs.NonIndexed().Pack(ids, vals)
	if err != nil {
		t.Fatal(err)
	}
	emptyBatch, _ := batch.Inputs.NonIndexed().Pack([]*big.Int{}, []*big.Int{})
	mismatch, _ := batch.Inputs.NonIndexed().Pack([]*big.Int{big.NewInt(1), big.NewInt(2)}, []*big.Int{big.NewInt(1)})

	t.Run("single", func(t *testing.T) {
		trs, err := TokenTransfers(Log{Address: token, Topics: topics(single), Data: singleData})
		if err != nil || len(trs) != 1 {
			t.Fatalf("got %v, %v", trs, err)
		}
		want := Transfer{Token: token, From: from, To: to, TokenID: big.NewInt(10527), Value: maxU, Standard: "erc1155"}
		if !sameTransfer(trs[0], want) {
			t.Errorf("got %+v, want %+v", trs[0], want)
		}
	})
	t.Run("batch", func(t *testing.T) {
		trs, err := TokenTransfers(Log{Address: token, Topics: topics(batch), Data: batchData})
		if err != nil || len(trs) != 3 {
			t.Fatalf("got %v, %v", trs, err)
		}
		for i, tr := range trs {
			want := Transfer{Token: token, From: from, To: to, TokenID: ids[i], Value: vals[i], Standard: "erc1155", BatchIndex: i}
			if !sameTransfer(tr, want) {
				t.Errorf("row %d: got %+v, want %+v", i, tr, want)
			}
		}
	})
	t.Run("batch decodes through registry too", func(t *testing.T) {
		ev, ok, err := defaultRegistry(t).DecodeLog(Log{Address: token, Topics: topics(batch), Data: batchData})
		if !ok || err != nil {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		want := `{"operator":"0x1111111111111111111111111111111111111111","from":"0x2222222222222222222222222222222222222222","to":"0x3333333333333333333333333333333333333333","ids":["1","115792089237316195423570985008687907853269984665640564039457584007913129639935","0"],"values":["5","1","7"]}`
		if string(ev.Args) != want || ev.ABIName != "ERC1155" || ev.Signature != "TransferBatch(address,address,address,uint256[],uint256[])" {
			t.Errorf("got %s %s %s", ev.ABIName, ev.Signature, ev.Args)
		}
	})

	malformed := []struct {
		name    string
		l       Log
		wantErr bool
	}{
		{"single, 3 topics", Log{Address: token, Topics: topics(single)[:3], Data: singleData}, false},
		{"single, 5 topics", Log{Address: token, Topics: append(topics(single), common.Hash{}), Data: singleData}, true},
		{"single, short data", Log{Address: token, Topics: topics(single), Data: singleData[:63]}, true},
		{"single, long data", Log{Address: token, Topics: topics(single), Data: append(slices.Clone(singleData), 0)}, true},
		{"single, no data", Log{Address: token, Topics: topics(single)}, true},
		{"batch, 2 topics", Log{Address: token, Topics: topics(batch)[:2], Data: batchData}, false},
		{"batch, truncated", Log{Address: token, Topics: topics(batch), Data: batchData[:len(batchData)-32]}, true},
		{"batch, no data", Log{Address: token, Topics: topics(batch)}, true},
		{"batch, length mismatch", Log{Address: token, Topics: topics(batch), Data: mismatch}, true},
		{"batch, huge offset", Log{Address: token, Topics: topics(batch), Data: append([]byte{0xff}, batchData[1:]...)}, true},
		{"batch, empty", Log{Address: token, Topics: topics(batch), Data: emptyBatch}, false},
		{"erc20 transfer, 64-byte data", Log{Address: token, Topics: []common.Hash{erc20Transfer, addrHash(from), addrHash(to)}, Data: make([]byte, 64)}, true},
		{"erc20 transfer, no data", Log{Address: token, Topics: []common.Hash{erc20Transfer, addrHash(from), addrHash(to)}}, true},
		{"erc721 transfer, with data", Log{Address: token, Topics: []common.Hash{erc20Transfer, addrHash(from), addrHash(to), {}}, Data: make([]byte, 32)}, true},
		{"transfer, 1 topic (unindexed, CryptoKitties style)", Log{Address: token, Topics: []common.Hash{erc20Transfer}, Data: make([]byte, 96)}, false},
		{"transfer, 2 topics", Log{Address: token, Topics: []common.Hash{erc20Transfer, addrHash(from)}, Data: make([]byte, 64)}, false},
		{"no topics", Log{Address: token, Data: singleData}, false},
		{"unrelated topic0", Log{Address: token, Topics: []common.Hash{{1}, {2}, {3}}, Data: make([]byte, 32)}, false},
	}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			trs, err := TokenTransfers(tc.l)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if trs != nil {
				t.Errorf("got transfers %v from a malformed or foreign log", trs)
			}
		})
	}
}

var erc20Transfer = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))

func sameTransfer(a, b Transfer) bool {
	eq := func(x, y *big.Int) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return x.Cmp(y) == 0
	}
	return a.Token == b.Token && a.From == b.From && a.To == b.To && a.Standard == b.Standard &&
		a.BatchIndex == b.BatchIndex && eq(a.TokenID, b.TokenID) && eq(a.Value, b.Value)
}

func defaultRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
