package format

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeETL decodes the 388 items of mainnet block 17173049 (1 block, 116 transactions, 271 logs)
// per iteration: one op is one block's worth of items.
func BenchmarkDecodeETL(b *testing.B) {
	benchmarkDecodeETL(b, etlItems17173049(b))
}

// BenchmarkDecodeETLSortedKeys is BenchmarkDecodeETL with the keys of every item sorted, as a producer that
// re-encodes items through a map writes them: "type" is then not the first key.
func BenchmarkDecodeETLSortedKeys(b *testing.B) {
	items := etlItems17173049(b)
	for i, it := range items {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(it, &m); err != nil {
			b.Fatal(err)
		}
		sorted, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = sorted
	}
	benchmarkDecodeETL(b, items)
}

func benchmarkDecodeETL(b *testing.B, items [][]byte) {
	size := 0
	for _, it := range items {
		size += len(it)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range items {
			if _, fail := Decode(EthereumETL, nil, it); fail != nil {
				b.Fatal(fail.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(items)), "ns/item")
}

// BenchmarkDecodeBundle decodes mainnet block 17173049 (116 transactions, 271 logs, 16 withdrawals) as one
// bundle, rebuilt in RPC shape from its ethereum-etl items.
func BenchmarkDecodeBundle(b *testing.B) {
	items := etlItems17173049(b)
	bundle, err := BundleFromETLItems(items)
	if err != nil {
		b.Fatal(err)
	}
	key := BundleKey(17173049)
	b.SetBytes(int64(len(bundle)))
	b.ReportAllocs()
	for b.Loop() {
		if _, fail := Decode(Bundle, key, bundle); fail != nil {
			b.Fatal(fail.Err)
		}
	}
}

// BenchmarkDecodeBundleSmall is block 483920 (4 transactions, 2 logs) from recorded responses.
func BenchmarkDecodeBundleSmall(b *testing.B) {
	bundle := bundle483920(b)
	b.SetBytes(int64(len(bundle)))
	b.ReportAllocs()
	for b.Loop() {
		if _, fail := Decode(Bundle, nil, bundle); fail != nil {
			b.Fatal(fail.Err)
		}
	}
}
