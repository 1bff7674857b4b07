package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// histogram is a Prometheus histogram as scraped from /metrics: cumulative bucket counts by upper bound.
type histogram struct {
	Bounds []float64 // ascending, +Inf last
	Counts []float64 // cumulative
	Sum    float64
	Count  float64
}

// parseHistogram reads the samples of histogram name (without labels) from a Prometheus text exposition.
func parseHistogram(r io.Reader, name string) (histogram, error) {
	var h histogram
	type bucket struct{ le, n float64 }
	var bs []bucket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, name+`_bucket{le="`):
			rest := strings.TrimPrefix(line, name+`_bucket{le="`)
			le, val, ok := strings.Cut(rest, `"} `)
			if !ok {
				return h, fmt.Errorf("bad bucket line %q", line)
			}
			bound, err1 := strconv.ParseFloat(le, 64)
			n, err2 := strconv.ParseFloat(val, 64)
			if err1 != nil || err2 != nil {
				return h, fmt.Errorf("bad bucket line %q", line)
			}
			bs = append(bs, bucket{bound, n})
		case strings.HasPrefix(line, name+"_sum "):
			h.Sum, _ = strconv.ParseFloat(strings.TrimPrefix(line, name+"_sum "), 64)
		case strings.HasPrefix(line, name+"_count "):
			h.Count, _ = strconv.ParseFloat(strings.TrimPrefix(line, name+"_count "), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, b := range bs {
		h.Bounds = append(h.Bounds, b.le)
		h.Counts = append(h.Counts, b.n)
	}
	return h, nil
}

// Quantile estimates the q-quantile as Prometheus' histogram_quantile does: linear interpolation inside the
// bucket that holds the rank, the lowest bucket starting at 0, and the highest finite bound for ranks in +Inf.
// NaN when there are no observations.
func (h histogram) Quantile(q float64) float64 {
	if len(h.Counts) == 0 || h.Counts[len(h.Counts)-1] == 0 {
		return math.NaN()
	}
	total := h.Counts[len(h.Counts)-1]
	rank := q * total
	for i, c := range h.Counts {
		if c < rank {
			continue
		}
		if math.IsInf(h.Bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return h.Bounds[i-1]
		}
		lo, prev := 0.0, 0.0
		if i > 0 {
			lo, prev = h.Bounds[i-1], h.Counts[i-1]
		}
		if c == prev {
			return h.Bounds[i]
		}
		return lo + (h.Bounds[i]-lo)*(rank-prev)/(c-prev)
	}
	return h.Bounds[len(h.Bounds)-1]
}

// parseGauges reads the values of the unlabelled samples names from a Prometheus text exposition.
func parseGauges(r io.Reader, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
				if err != nil {
					return out, fmt.Errorf("metric %s: %w", n, err)
				}
				out[n] = v
			}
		}
	}
	return out, sc.Err()
}

// procStatus reads a "VmHWM:   123456 kB"-style field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			if len(f) > 1 && f[1] == "kB" {
				n *= 1024
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

const clockTicks = 100 // USER_HZ on Linux

// cpuTimes is CPU seconds (user + system) per process.
type cpuTimes map[int]float64

// procCPU returns the CPU seconds pid has used, and its command name.
func procCPU(pid int) (float64, string, error) {
	self, _, comm, err := procCPUs(pid)
	return self, comm, err
}

// procCPUs is procCPU with, second, the CPU seconds of the process's children that have exited and been
// waited for (cutime and cstime).
func procCPUs(pid int) (self, children float64, comm string, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", err
	}
	// pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17): comm may hold spaces, so split
	// after the last ')'.
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return 0, 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	comm = string(raw[open+1 : end])
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 15 {
		return 0, 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var t [4]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	return (t[0] + t[1]) / clockTicks, (t[2] + t[3]) / clockTicks, comm, nil
}

// postgresCPU snapshots the CPU seconds of every postgres process (server, backends, background workers),
// and of those that have exited: a backend's CPU would otherwise vanish from the difference of two snapshots
// when its client disconnects between them (the rpc scenario stops run and backfill before its second), and
// the postmaster, which waits for every backend, holds them in its children's times.
func postgresCPU() cpuTimes {
	out := cpuTimes{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		self, exited, comm, err := procCPUs(pid)
		if err != nil || comm != "postgres" {
			continue
		}
		out[pid] = self + exited
	}
	return out
}

// since is the CPU seconds used between snapshot before and c; processes started in between count whole.
func (c cpuTimes) since(before cpuTimes) float64 {
	total := 0.0
	for pid, s := range c {
		total += s - before[pid]
	}
	return total
}

// machineCPU is the CPU seconds every process of the machine has used since boot (user, nice, system, irq,
// softirq, steal from /proc/stat).
func machineCPU() float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	total := 0.0
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		total += v
	}
	return total / clockTicks
}

// loadAverage is the 1-minute load average.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return math.NaN()
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
