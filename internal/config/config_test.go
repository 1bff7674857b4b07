package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainsink/chainsink/internal/config"
)

const good = `# the demo's sets
abi_dir: ./abis
contracts:
  - name: univ2
    abi: UniswapV2Pair
    factory:
      address: "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f"
      abi: UniswapV2Factory
      event: PairCreated
      parameter: pair
    events: [Swap, Mint, Burn, Sync]
    calls: [swap]
    start_block: 10000835
  - name: weth
    abi: WETH9
    address: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
  - name: erc20
    abi: ERC20
    events: Transfer
`

func TestParseGood(t *testing.T) {
	f, err := config.Parse("chainsink.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sets) != 3 || f.ABIDir != "./abis" || f.UntypedEvents {
		t.Fatalf("sets %d, abi_dir %q, untyped events %v", len(f.Sets), f.ABIDir, f.UntypedEvents)
	}
	for value, want := range map[string]bool{"all": false, "untyped": true} {
		f, err := config.Parse("c.yaml", []byte("events_table: "+value+"\ncontracts:\n  - name: a\n    abi: X\n"))
		if err != nil || f.UntypedEvents != want || f.UntypedCalls {
			t.Fatalf("events_table: %s gives %+v (%v), want untyped events %v", value, f, err, want)
		}
		f, err = config.Parse("c.yaml", []byte("calls_table: "+value+"\ncontracts:\n  - name: a\n    abi: X\n"))
		if err != nil || f.UntypedCalls != want || f.UntypedEvents {
			t.Fatalf("calls_table: %s gives %+v (%v), want untyped calls %v", value, f, err, want)
		}
	}
	u := f.Sets[0]
	if u.Name != "univ2" || len(u.ABIs) != 1 || u.ABIs[0].Name != "UniswapV2Pair" || u.Factory == nil || u.Factory.Parameter != "pair" ||
		strings.Join(u.Events, ",") != "Swap,Mint,Burn,Sync" || strings.Join(u.Calls, ",") != "swap" || u.StartBlock != 10000835 {
		t.Fatalf("univ2: %+v", u)
	}
	if got := strings.ToLower(u.Factory.Address.Hex()); got != "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f" {
		t.Fatalf("factory address %s", got)
	}
	if u.At("events").Line != 11 || u.Factory.At("event").Line != 9 {
		t.Fatalf("positions: events %v, factory.event %v", u.At("events"), u.Factory.At("event"))
	}
	if w := f.Sets[1]; len(w.Addresses) != 1 || w.Events != nil || w.Calls != nil {
		t.Fatalf("weth: %+v", w)
	}
	if e := f.Sets[2]; strings.Join(e.Events, ",") != "Transfer" {
		t.Fatalf("erc20 events %v", e.Events)
	}
}

func TestParseABIVersions(t *testing.T) {
	f, err := config.Parse("c.yaml", []byte("contracts:\n  - name: usdc\n    abi:\n      - {from_block: 0, name: FiatTokenV1}\n      - {from_block: 12000000, name: FiatTokenV2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := f.Sets[0].ABIs
	if len(v) != 2 || v[0].Name != "FiatTokenV1" || v[1].FromBlock != 12000000 || v[1].Pos.Line != 5 {
		t.Fatalf("%+v", v)
	}
}

// JSON is YAML's subset: the same sets written as JSON parse the same.
func TestParseJSON(t *testing.T) {
	f, err := config.Parse("c.json", []byte(`{"contracts": [{"name": "weth", "abi": "WETH9",
		"address": ["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"], "events": ["Deposit"], "calls": ["*"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Sets[0]; s.Name != "weth" || len(s.Addresses) != 1 || s.Calls[0] != "*" {
		t.Fatalf("%+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // each a "file:line: …" substring
	}{
		{"unknown top-level key", "contract:\n  - name: a\n", []string{`c.yaml:1: unknown key "contract"`}},
		{"unknown set key", "contracts:\n  - name: a\n    abi: ERC20\n    adress: \"0x00\"\n", []string{`c.yaml:4: unknown key "adress"`}},
		{"unknown factory key", "contracts:\n  - name: a\n    abi: X\n    factory:\n      address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n      abi: F\n      event: E\n      param: p\n",
			[]string{`c.yaml:8: unknown key "param" in factory`, "c.yaml:5: factory: parameter is missing"}},
		{"bad name", "contracts:\n  - name: Uni-V2\n    abi: X\n", []string{`c.yaml:2: name "Uni-V2"`}},
		{"duplicate name", "contracts:\n  - name: a\n    abi: X\n  - name: a\n    abi: Y\n", []string{`c.yaml:4: contract set name "a" is used twice (first at line 2)`}},
		{"short address", "contracts:\n  - name: a\n    abi: X\n    address: \"0x1234\"\n", []string{`c.yaml:4: address: "0x1234" is not`}},
		{"bad checksum", "contracts:\n  - name: a\n    abi: X\n    address: \"0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756CC2\"\n", []string{"c.yaml:4: address:", "wrong EIP-55 checksum"}},
		{"missing abi", "contracts:\n  - name: a\n", []string{"c.yaml:2: contract set a: abi is missing"}},
		{"bad start block", "contracts:\n  - name: a\n    abi: X\n    start_block: -5\n", []string{`c.yaml:4: start_block: want a block number, not "-5"`}},
		{"address and factory", "contracts:\n  - name: a\n    abi: X\n    address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n    factory:\n      address: \"0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f\"\n      abi: F\n      event: E\n      parameter: p\n",
			[]string{"c.yaml:2: contract set a: give address or factory, not both"}},
		{"duplicate key", "contracts:\n  - name: a\n    abi: X\n    abi: Y\n", []string{`key "abi" is given twice`}},
		{"abi versions out of order", "contracts:\n  - name: a\n    abi:\n      - {from_block: 5, name: V1}\n      - {from_block: 5, name: V2}\n",
			[]string{"c.yaml:5: abi: from_block 5 does not follow 5"}},
		{"abi version without a name", "contracts:\n  - name: a\n    abi:\n      - {from_block: 0}\n", []string{"c.yaml:4: abi version: name is missing"}},
		{"abi version unknown key", "contracts:\n  - name: a\n    abi:\n      - {from: 0, name: V1}\n", []string{`c.yaml:4: unknown key "from" in abi version`}},
		{"calls star and names", "contracts:\n  - name: a\n    abi: X\n    calls: [\"*\", swap]\n", []string{`c.yaml:4: calls: "*" already means every function`}},
		{"events_table value", "events_table: typed\ncontracts:\n  - name: a\n    abi: X\n", []string{`c.yaml:1: events_table: "typed" is neither all nor untyped`}},
		{"calls_table value", "contracts:\n  - name: a\n    abi: X\ncalls_table: [untyped]\n", []string{`c.yaml:4: calls_table: want a non-empty string`}},
		{"not yaml", "contracts: [\n", []string{"c.yaml: yaml:"}},
		{"empty", "", []string{"c.yaml:1: the file is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestErrorsCarryPositions(t *testing.T) {
	_, err := config.Parse("c.yaml", []byte("contracts:\n  - name: a\n    abi: X\n    nope: 1\n  - name: B\n    abi: X\n"))
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *config.Error", err)
	}
	if n := strings.Count(err.Error(), "c.yaml:"); n != 2 {
		t.Fatalf("want both mistakes reported, got %d: %v", n, err)
	}
}

func TestLoadResolvesABIDirNextToTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "chainsink.yaml")
	if err := os.WriteFile(p, []byte("abi_dir: abis\ncontracts:\n  - name: a\n    abi: ERC20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.ABIDir != filepath.Join(dir, "abis") {
		t.Fatalf("abi_dir %s", f.ABIDir)
	}
}
