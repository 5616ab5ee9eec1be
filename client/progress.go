package client

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress prints bytes done, rate and ETA of a long transfer to a
// terminal, at most once a second, on one line. A nil *Progress is quiet.
type Progress struct {
	w     io.Writer
	what  string
	total int64
	done  atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewProgress starts reporting on w (nil: quiet) about total bytes (0:
// unknown).
func NewProgress(w io.Writer, what string, total int64) *Progress {
	if w == nil {
		return nil
	}
	p := &Progress{w: w, what: what, total: total, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print(false)
			}
		}
	}()
	return p
}

// Add records n more bytes done.
func (p *Progress) Add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

func (p *Progress) print(final bool) {
	done := p.done.Load()
	el := time.Since(p.start).Seconds()
	rate := float64(done) / max(el, 0.001)
	line := fmt.Sprintf("\r%s: %s", p.what, mib(done))
	if p.total > 0 {
		line += fmt.Sprintf(" of %s (%.0f%%)", mib(p.total), 100*float64(done)/float64(p.total))
	}
	line += fmt.Sprintf(", %s/s", mib(int64(rate)))
	if p.total > 0 && rate > 0 && !final && done < p.total {
		line += fmt.Sprintf(", ETA %s", (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second))
	}
	if final {
		line += fmt.Sprintf(" in %s\n", time.Since(p.start).Round(100*time.Millisecond))
	}
	fmt.Fprint(p.w, line+"   ")
}

// Done stops reporting and prints the final line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.print(true)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
