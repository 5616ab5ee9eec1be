package client

import (
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	const mb = 1 << 20
	p := &Progress{what: "backup x", total: 100 * mb}
	// Half done after one second: about a second to go, not "0s".
	p.done.Store(51 * mb)
	if l := p.line(false, time.Second); !strings.Contains(l, "51.0 MiB of 100.0 MiB (51%)") || !strings.Contains(l, "ETA 1s") {
		t.Errorf("half way: %q", l)
	}
	p.done.Store(20 * mb)
	if l := p.line(false, 10*time.Second); !strings.Contains(l, "ETA 40s") {
		t.Errorf("a fifth after 10s: %q", l)
	}
	// Files grew during the backup: more done than the estimate. The
	// line never shows more done than its total, nor 100% before the end.
	p.done.Store(101 * mb)
	l := p.line(false, 10*time.Second)
	if !strings.Contains(l, "101.0 MiB of 101.0 MiB (99%)") || strings.Contains(l, "ETA") {
		t.Errorf("beyond the estimate: %q", l)
	}
	if l := p.line(true, 10*time.Second); !strings.Contains(l, "101.0 MiB of 101.0 MiB (100%)") || !strings.HasSuffix(strings.TrimRight(l, " "), "in 10s\n") {
		t.Errorf("final: %q", l)
	}
	p.done.Store(100*mb - 1000)
	if l := p.line(false, 10*time.Second); !strings.Contains(l, "ETA <1s") {
		t.Errorf("almost done: %q", l)
	}
}
