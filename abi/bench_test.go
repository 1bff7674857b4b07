package abi

import (
	"testing"
)

// The block benchmarks decode all of block 17173049 per op (271 logs, 116
// txs) and also report ns per item; the /item variants cycle through the
// same inputs one per op, so allocs/op is per log or per tx.

func BenchmarkDecodeLog(b *testing.B) {
	r := defaultRegistry(b)
	fl := loadETLLogs(b, blockDir+"/expected_logs.json")
	logs := make([]Log, len(fl))
	for i, l := range fl {
		logs[i] = l.Log
	}
	b.Run("block", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range logs {
				if _, _, err := r.DecodeLog(l); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(logs)), "ns/log")
	})
	b.Run("item", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.DecodeLog(logs[i])
			if i++; i == len(logs) {
				i = 0
			}
		}
	})
}

func BenchmarkTokenTransfers(b *testing.B) {
	fl := loadETLLogs(b, blockDir+"/expected_logs.json")
	logs := make([]Log, len(fl))
	for i, l := range fl {
		logs[i] = l.Log
	}
	b.Run("block", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range logs {
				if _, err := TokenTransfers(l); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(logs)), "ns/log")
	})
	b.Run("item", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			TokenTransfers(logs[i])
			if i++; i == len(logs) {
				i = 0
			}
		}
	})
}

func BenchmarkDecodeCall(b *testing.B) {
	r := defaultRegistry(b)
	txs := loadETLTransactions(b, blockDir+"/expected_transactions.json")
	b.Run("block", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, tx := range txs {
				if _, _, err := r.DecodeCall(tx.To, tx.Input); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(txs)), "ns/tx")
	})
	b.Run("item", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.DecodeCall(txs[i].To, txs[i].Input)
			if i++; i == len(txs) {
				i = 0
			}
		}
	})
}
