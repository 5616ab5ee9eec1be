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
	fmt.Fprint(p.w, p.line(final, time.Since(p.start)))
}

// line is the progress line after elapsed. The total is an estimate
// taken before the transfer (files grow while a backup reads them): the
// line never shows more done than the total, nor more than 99% before
// the end, and the ETA rounds rather than truncates.
func (p *Progress) line(final bool, elapsed time.Duration) string {
	done := p.done.Load()
	total := p.total
	if total > 0 && done > total {
		total = done
	}
	el := elapsed.Seconds()
	rate := float64(done) / max(el, 0.001)
	line := fmt.Sprintf("\r%s: %s", p.what, mib(done))
	if total > 0 {
		pct := 100 * float64(done) / float64(total)
		if !final {
			pct = min(pct, 99)
		}
		line += fmt.Sprintf(" of %s (%.0f%%)", mib(total), pct)
	}
	line += fmt.Sprintf(", %s/s", mib(int64(rate)))
	if total > 0 && rate > 0 && !final && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		if eta < time.Second {
			line += ", ETA <1s"
		} else {
			line += fmt.Sprintf(", ETA %s", eta)
		}
	}
	if final {
		line += fmt.Sprintf(" in %s\n", elapsed.Round(100*time.Millisecond))
	}
	return line + "   "
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
