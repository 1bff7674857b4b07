package decode_test

import (
	"testing"

	"github.com/chainsink/chainsink/internal/decode"
	"github.com/chainsink/chainsink/internal/fixtures"
	"github.com/chainsink/chainsink/internal/format"
)

// BenchmarkDecodeMessages is what a worker does with each message before batching it (the wire format, then
// the events, token transfers and calls), for mainnet block 17173049: as one bundle, and as its 388
// ethereum-etl items, one op being the whole block either way.
func BenchmarkDecodeMessages(b *testing.B) {
	root, reg := testdataAndABIs(b)
	d := decode.New(reg, nil)
	key, bundle, err := fixtures.Bundle17173049(root)
	if err != nil {
		b.Fatal(err)
	}
	byType, err := fixtures.ETLItems(root)
	if err != nil {
		b.Fatal(err)
	}
	var items [][]byte
	for _, typ := range []string{"block", "transaction", "log"} {
		items = append(items, byType[typ]...)
	}
	for _, tc := range []struct {
		name     string
		f        format.Format
		messages [][]byte
		keys     [][]byte
	}{{"bundle", format.Bundle, [][]byte{bundle}, [][]byte{key}}, {"items", format.EthereumETL, items, make([][]byte, len(items))}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, m := range tc.messages {
					if _, fail := d.Decode(tc.f, tc.keys[i], m); fail != nil {
						b.Fatal(fail.Err)
					}
				}
			}
		})
	}
}
