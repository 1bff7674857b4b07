package backfill

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is told how many blocks this run has to deliver and each delivery. Add is called from the
// producer's delivery goroutine.
type Progress interface {
	Start(total int64)
	Add(n int)
	Finish()
}

type noProgress struct{}

func (noProgress) Start(int64) {}
func (noProgress) Add(int)     {}
func (noProgress) Finish()     {}

// LogProgress logs blocks done, blocks/s and the ETA every Interval (default 5s): for logs and non-terminals.
type LogProgress struct {
	Logger   *slog.Logger
	Interval time.Duration

	total, done atomic.Int64
	start       time.Time
	stop        chan struct{}
	wg          sync.WaitGroup
}

// Start implements Progress.
func (p *LogProgress) Start(total int64) {
	p.total.Store(total)
	p.start = time.Now()
	p.stop = make(chan struct{})
	interval := p.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.log("backfill progress")
			}
		}
	}()
}

func (p *LogProgress) log(msg string) {
	done, total := p.done.Load(), p.total.Load()
	elapsed := time.Since(p.start)
	rate := float64(done) / elapsed.Seconds()
	attrs := []any{"blocks_done", done, "blocks_total", total, "blocks_per_second", float64(int(rate*10)) / 10}
	if rate > 0 && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		attrs = append(attrs, "eta", eta.String())
	}
	p.Logger.Info(msg, attrs...)
}

// Add implements Progress.
func (p *LogProgress) Add(n int) { p.done.Add(int64(n)) }

// Finish implements Progress.
func (p *LogProgress) Finish() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
}

// BarProgress draws a progress bar with blocks/s and ETA on a terminal. `chainsink redecode` draws its bar
// with it too.
type BarProgress struct {
	W io.Writer
	// Description is the bar's label; default "backfill".
	Description string
	bar         *progressbar.ProgressBar
}

// Start implements Progress.
func (p *BarProgress) Start(total int64) {
	desc := p.Description
	if desc == "" {
		desc = "backfill"
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.W),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetItsString("blocks"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(p.W, "\n") }),
	)
}

// Add implements Progress.
func (p *BarProgress) Add(n int) { _ = p.bar.Add(n) }

// Finish implements Progress.
func (p *BarProgress) Finish() {
	if p.bar != nil && !p.bar.IsFinished() {
		_, _ = io.WriteString(p.W, "\n")
	}
}
