package typed_test

import (
	"os"
	"testing"

	"github.com/chainsink/chainsink/internal/fixtures"
)

// BenchmarkDerive fills the typed tables of the demo's configuration from mainnet block 17173049 (534 typed
// rows from 271 logs and 116 transactions).
func BenchmarkDerive(b *testing.B) {
	root, err := fixtures.Root()
	if err != nil {
		b.Fatal(err)
	}
	conf, err := os.ReadFile(root + "/../internal/demo/chainsink.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ts := compile(b, string(conf))
	rows, err := fixtures.Rows17173049(root)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := rows
		ts.Derive(&r)
		n = 0
		for _, t := range r.Typed {
			n += len(t)
		}
	}
	b.ReportMetric(float64(n), "rows/op")
}
