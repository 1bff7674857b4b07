package metrics_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chainsink/chainsink/internal/metrics"
)

// TestGCCPUIsExported: the garbage collector's CPU is on /metrics beside the process's, which is how an
// operator (and make bench) sees what GOGC and the memory limit cost.
func TestGCCPUIsExported(t *testing.T) {
	m := metrics.New()
	runtime.GC()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "go_cpu_classes_gc_total_cpu_seconds_total" {
			if v := f.GetMetric()[0].GetCounter().GetValue(); v <= 0 {
				t.Fatalf("%s = %v after a collection, want > 0", f.GetName(), v)
			}
			return
		}
	}
	t.Fatal("go_cpu_classes_gc_total_cpu_seconds_total is not gathered")
}

// TestCountsPerMessageAndEvent: the counters that the hot path increments (by topic, by ABI and event) count
// every call, from concurrent workers, under the labels they were given.
func TestCountsPerMessageAndEvent(t *testing.T) {
	m := metrics.New()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for n := range 1000 {
				m.MessageConsumed([]string{"blocks", "items"}[n%2])
				m.EventDecoded("ERC20", []string{"Transfer", "Approval", "Transfer"}[n%3])
			}
		})
	}
	wg.Wait()
	for _, c := range []struct {
		got  float64
		want float64
	}{
		{testutil.ToFloat64(m.MessagesConsumed.WithLabelValues("blocks")), 2000},
		{testutil.ToFloat64(m.MessagesConsumed.WithLabelValues("items")), 2000},
		{testutil.ToFloat64(m.EventsDecoded.WithLabelValues("ERC20", "Transfer")), 2668},
		{testutil.ToFloat64(m.EventsDecoded.WithLabelValues("ERC20", "Approval")), 1332},
	} {
		if c.got != c.want {
			t.Errorf("counted %v, want %v", c.got, c.want)
		}
	}
}

// BenchmarkEventDecoded is what counting costs a decoded event (and MessageConsumed a message, the same way).
func BenchmarkEventDecoded(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.EventDecoded("UniswapV2Pair", "Swap")
		}
	})
}
