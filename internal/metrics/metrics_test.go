package metrics_test

import (
	"runtime"
	"testing"

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
