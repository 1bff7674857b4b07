package abi

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// kitchenABI exercises every JSON rule in doc.go. The second "small" and the
// unnamed uint8 must come out as arg15 and arg14; the unnamed tuple
// component as arg2.
const kitchenABI = `[
 {"type":"event","name":"Kitchen","anonymous":false,"inputs":[
  {"name":"who","type":"address","indexed":true},
  {"name":"label","type":"string","indexed":true},
  {"name":"tick","type":"int24","indexed":true},
  {"name":"small","type":"int8"},
  {"name":"big","type":"int256"},
  {"name":"u64","type":"uint64"},
  {"name":"u112","type":"uint112"},
  {"name":"flag","type":"bool"},
  {"name":"blob","type":"bytes"},
  {"name":"b3","type":"bytes3"},
  {"name":"b32","type":"bytes32"},
  {"name":"nul","type":"string"},
  {"name":"bad","type":"string"},
  {"name":"text","type":"string"},
  {"name":"","type":"uint8"},
  {"name":"small","type":"uint16[2]"},
  {"name":"pos","type":"tuple","components":[
    {"name":"owner","type":"address"},
    {"name":"ids","type":"uint256[]"},
    {"name":"","type":"bool"},
    {"name":"inner","type":"tuple[]","components":[{"name":"k","type":"bytes4"},{"name":"v","type":"int64"}]}]}
 ]},
 {"type":"function","name":"cook","stateMutability":"nonpayable","outputs":[],"inputs":[
  {"name":"a","type":"int8"},
  {"name":"s","type":"string"},
  {"name":"pos","type":"tuple","components":[
    {"name":"owner","type":"address"},
    {"name":"ids","type":"uint256[]"},
    {"name":"","type":"bool"},
    {"name":"inner","type":"tuple[]","components":[{"name":"k","type":"bytes4"},{"name":"v","type":"int64"}]}]},
  {"name":"path","type":"address[]"},
  {"name":"u128","type":"uint128"}
 ]}
]`

type kitchenInner struct {
	K [4]byte
	V int64
}

type kitchenPos struct {
	Owner common.Address
	Ids   []*big.Int
	Arg2  bool
	Inner []kitchenInner
}

func kitchen(t testing.TB) (gethabi.ABI, *Registry) {
	t.Helper()
	norm, err := normalizeABI([]byte(kitchenABI))
	if err != nil {
		t.Fatal(err)
	}
	a, err := gethabi.JSON(strings.NewReader(string(norm)))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	if err := r.Add("Kitchen", []byte(kitchenABI)); err != nil {
		t.Fatal(err)
	}
	return a, r
}

func bigPow2(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }

// kitchenSamples packs one Kitchen log and one cook call with go-ethereum.
func kitchenSamples(t testing.TB) (Log, []byte) {
	t.Helper()
	a, _ := kitchen(t)
	ev := a.Events["Kitchen"]
	who := common.HexToAddress("0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")
	var b32 [32]byte
	b32[31] = 0xff
	pos := kitchenPos{
		Owner: common.HexToAddress("0x00000000000000000000000000000000000000aa"),
		Ids:   []*big.Int{big.NewInt(0), big.NewInt(1)},
		Arg2:  true,
		Inner: []kitchenInner{{K: [4]byte{0x12, 0x34, 0x56, 0x78}, V: -1 << 63}},
	}
	data, err := ev.Inputs.NonIndexed().Pack(
		int8(-128),
		new(big.Int).Neg(bigPow2(255)),
		uint64(1<<64-1),
		new(big.Int).Sub(bigPow2(112), big.NewInt(1)),
		true,
		[]byte{0xde, 0xad, 0xbe, 0xef},
		[3]byte{1, 2, 3},
		b32,
		"a\x00b",
		"\xff\xfe",
		"q\"\\\n\t\x01é€😀",
		uint8(255),
		[2]uint16{1, 65535},
		pos,
	)
	if err != nil {
		t.Fatal(err)
	}
	topics, err := gethabi.MakeTopics([]any{who}, []any{"hello"}, []any{big.NewInt(-42)})
	if err != nil {
		t.Fatal(err)
	}
	l := Log{Address: who, Topics: []common.Hash{ev.ID, topics[0][0], topics[1][0], topics[2][0]}, Data: data}
	input, err := a.Pack("cook", int8(5), "plain", pos, []common.Address{who, {}}, new(big.Int).Sub(bigPow2(128), big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	return l, input
}

func TestJSONRules(t *testing.T) {
	a, r := kitchen(t)
	l, input := kitchenSamples(t)
	data := l.Data
	got, ok, err := r.DecodeLog(l)
	if !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := `{"who":"0xabcdef0123456789abcdef0123456789abcdef01",` +
		`"label":"` + crypto.Keccak256Hash([]byte("hello")).Hex() + `",` +
		`"tick":"-42",` +
		`"small":"-128",` +
		`"big":"-57896044618658097711785492504343953926634992332820282019728792003956564819968",` +
		`"u64":"18446744073709551615",` +
		`"u112":"5192296858534827628530496329220095",` +
		`"flag":true,` +
		`"blob":"0xdeadbeef",` +
		`"b3":"0x010203",` +
		`"b32":"0x00000000000000000000000000000000000000000000000000000000000000ff",` +
		`"nul":"0x610062",` +
		`"bad":"0xfffe",` +
		`"text":"q\"\\\n\t\u0001é€😀",` +
		`"arg14":"255",` +
		`"arg15":["1","65535"],` +
		`"pos":{"owner":"0x00000000000000000000000000000000000000aa","ids":["0","1"],"arg2":true,"inner":[{"k":"0x12345678","v":"-9223372036854775808"}]}}`
	if string(got.Args) != want {
		t.Errorf("args:\n got  %s\n want %s", got.Args, want)
	}
	if !json.Valid(got.Args) {
		t.Error("args are not valid JSON")
	}
	wantSig := "Kitchen(address,string,int24,int8,int256,uint64,uint112,bool,bytes,bytes3,bytes32,string,string,string,uint8,uint16[2],(address,uint256[],bool,(bytes4,int64)[]))"
	if got.Name != "Kitchen" || got.ABIName != "Kitchen" || got.Signature != wantSig {
		t.Errorf("got %q %q %q", got.Name, got.ABIName, got.Signature)
	}

	t.Run("call", func(t *testing.T) {
		m := a.Methods["cook"]
		to := common.Address{1}
		c, ok, err := r.DecodeCall(&to, input)
		if !ok || err != nil {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		want := `{"a":"5","s":"plain",` +
			`"pos":{"owner":"0x00000000000000000000000000000000000000aa","ids":["0","1"],"arg2":true,"inner":[{"k":"0x12345678","v":"-9223372036854775808"}]},` +
			`"path":["0xabcdef0123456789abcdef0123456789abcdef01","0x0000000000000000000000000000000000000000"],` +
			`"u128":"340282366920938463463374607431768211455"}`
		if string(c.Args) != want || c.Signature != m.Sig || c.Name != "cook" {
			t.Errorf("got %s %s\n%s\nwant %s", c.Name, c.Signature, c.Args, want)
		}
	})

	t.Run("out of range for declared width", func(t *testing.T) {
		// 2^112 does not fit uint112: go-ethereum accepts it, we must not.
		bad := append([]byte(nil), data...)
		u112 := 3 * 32
		word := bigPow2(112).FillBytes(make([]byte, 32))
		copy(bad[u112:u112+32], word)
		if _, ok, err := r.DecodeLog(Log{Topics: l.Topics, Data: bad}); !ok || err == nil || !strings.Contains(err.Error(), "out of range for uint112") {
			t.Errorf("want an error for 2^112 in a uint112, got ok=%v err=%v", ok, err)
		}
		// int24 topic: +2^23 does not fit, -2^23 does.
		for _, c := range []struct {
			v    *big.Int
			fits bool
		}{{bigPow2(23), false}, {new(big.Int).Neg(bigPow2(23)), true}, {new(big.Int).Sub(bigPow2(23), big.NewInt(1)), true}} {
			tp, _ := gethabi.MakeTopics([]any{c.v})
			ll := Log{Topics: []common.Hash{l.Topics[0], l.Topics[1], l.Topics[2], tp[0][0]}, Data: data}
			if _, _, err := r.DecodeLog(ll); (err == nil) != c.fits || (err != nil && !strings.Contains(err.Error(), "out of range for int24")) {
				t.Errorf("int24 %s: err=%v, fits=%v", c.v, err, c.fits)
			}
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"":                     `""`,
		"plain":                `"plain"`,
		"\"\\/":                `"\"\\/"`,
		"\x1f\x7f\u2028":       `"\u001f` + "\x7f\u2028" + `"`,
		"tab\there\r\n":        `"tab\there\r\n"`,
		"日本":                   `"日本"`,
		"trailing \\":          `"trailing \\"`,
		"\x00 never gets here": `"\u0000 never gets here"`,
	} {
		got := string(appendJSONString(nil, in))
		if got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != in {
			t.Errorf("%s does not round-trip: %q %v", got, back, err)
		}
	}
	for in, want := range map[string]string{
		"ok":       `"ok"`,
		"a\x00":    `"0x6100"`,
		"\xc3\x28": `"0xc328"`,
		"":         `""`,
	} {
		if got := string(appendText(nil, in)); got != want {
			t.Errorf("appendText(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestAppendDecimalMatchesBigInt: the uint256 conversion writes every integer as big.Int does, at the edges
// of int64, uint64, 10^19 (its chunks), 2^255 and 2^256, and beyond, where it leaves the value to big.Int.
func TestAppendDecimalMatchesBigInt(t *testing.T) {
	var vals []*big.Int
	for _, e := range []int{0, 1, 62, 63, 64, 65, 127, 128, 129, 191, 192, 255, 256, 257, 300} {
		p := new(big.Int).Lsh(big.NewInt(1), uint(e))
		for _, d := range []int64{-1, 0, 1} {
			v := new(big.Int).Add(p, big.NewInt(d))
			vals = append(vals, v, new(big.Int).Neg(v))
		}
	}
	for e := int64(18); e <= 78; e += 19 {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(e), nil)
		vals = append(vals, p, new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Neg(p))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(33))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		v := new(big.Int).SetBytes(b)
		if rng.IntN(2) == 0 {
			v.Neg(v)
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		if got, want := string(appendDecimal([]byte("x"), v)), "x"+v.Text(10); got != want {
			t.Fatalf("%s: got %s", want, got)
		}
	}
}
