package main

import (
	"strings"
	"testing"
	"time"
)

// TestBackupTargetsStrict: the base-backup targets table checks
// backup-push against 900 MB/s and backup-fetch against 0.9x the same
// run's cp -a + sync, from the reported (median) runs.
func TestBackupTargetsStrict(t *testing.T) {
	run := func(mb int64, wall time.Duration) backupRun {
		return backupRun{bytes: mb * 1e6, res: execResult{wall: wall}}
	}
	for _, tc := range []struct {
		name                string
		push, fetch, copy   []backupRun
		wantPush, wantFetch string
	}{
		{"both met", []backupRun{run(1000, time.Second)}, []backupRun{run(1000, time.Second)}, []backupRun{run(1000, 1050*time.Millisecond)},
			"PASS", "PASS"},
		{"push short, fetch short of the copy", []backupRun{run(1000, 1200*time.Millisecond)}, []backupRun{run(1000, 1300*time.Millisecond)}, []backupRun{run(1000, time.Second)},
			"FAIL", "FAIL"},
		{"medians decide", []backupRun{run(1000, 900*time.Millisecond), run(1000, 2*time.Second), run(1000, 1200*time.Millisecond)},
			[]backupRun{run(1000, time.Second), run(1000, 5*time.Second), run(1000, time.Second)}, []backupRun{run(1000, 900*time.Millisecond)},
			"FAIL", "PASS"},
	} {
		b := &bench{backup: &backupFigures{runs: len(tc.push), copy: tc.copy, basebackup: tc.copy,
			configs: []*backupConfig{{Name: "zstd + encryption", push: tc.push, fetch: tc.fetch}}}}
		r := b.backupReport()
		verdict := func(prefix string) string {
			for _, row := range r.targets {
				if strings.HasPrefix(row[0], prefix) {
					return row[2]
				}
			}
			t.Fatalf("%s: no target row starting %q in %v", tc.name, prefix, r.targets)
			return ""
		}
		if got := verdict("backup-push at 900 MB/s"); got != tc.wantPush {
			t.Errorf("%s: backup-push 900 MB/s: %s, want %s", tc.name, got, tc.wantPush)
		}
		if got := verdict("backup-fetch at 0.9x"); got != tc.wantFetch {
			t.Errorf("%s: backup-fetch 0.9x cp: %s, want %s", tc.name, got, tc.wantFetch)
		}
	}
}

// TestWritebackOverlap: the sentence about work and writeback states what
// the three figures show, overlap or none, and how much.
func TestWritebackOverlap(t *testing.T) {
	got := writebackOverlap(1100*time.Millisecond, 1510*time.Millisecond, 1950*time.Millisecond)
	if !strings.Contains(got, "Work and writeback overlap") || !strings.Contains(got, "2.61 s") || !strings.Contains(got, "0.66 s of writing") {
		t.Errorf("1.10 + 1.51 s against a 1.95 s fetch: %q", got)
	}
	got = writebackOverlap(1100*time.Millisecond, 1510*time.Millisecond, 2700*time.Millisecond)
	if !strings.Contains(got, "did not overlap") || strings.Contains(got, "of writing to disk ran") {
		t.Errorf("1.10 + 1.51 s against a 2.70 s fetch: %q", got)
	}
}
