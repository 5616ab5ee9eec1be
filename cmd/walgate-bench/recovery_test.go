package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The recovery section says that both recoveries ran with fsync on, and
// gives restore_command's CPU time per segment for both commands, or why
// it was not measured.
func TestRecoveryMarkdown(t *testing.T) {
	rf := &recoveryFigures{segs: 200, scale: 10, runs: 1,
		walgate: samples{40 * time.Second}, cp: samples{38 * time.Second},
		walgateCPU: samples{20 * time.Second}, cpCPU: samples{4 * time.Second}}
	md := rf.markdown()
	// 40 s / 38 s = 1.0526: "1.05x" beside FAIL would read as meeting the target.
	for _, want := range []string{"`fsync = on`", "restore_command CPU per segment", "| 100.0 ms |", "| 20.0 ms |", "cgroup (cpuacct)", "1.053x (+10.0 ms per segment) | FAIL"} {
		if !strings.Contains(md, want) {
			t.Errorf("the section lacks %q:\n%s", want, md)
		}
	}
	rf.walgateCPU, rf.cpCPU, rf.cpuNote = nil, nil, "no cgroup v1 cpuacct hierarchy at /sys/fs/cgroup/cpuacct"
	md = rf.markdown()
	if strings.Count(md, "| not measured |") != 2 || !strings.Contains(md, "not measured: no cgroup v1 cpuacct hierarchy") {
		t.Errorf("without a cgroup the section must say the CPU time was not measured and why:\n%s", md)
	}
}

func TestEnvPrefixed(t *testing.T) {
	for in, want := range map[string]string{
		"cp /a/%f %p":                      "cp /a/%f %p",
		"A=1 B=2 /bin/client wal-fetch %f": "env A=1 B=2 /bin/client wal-fetch %f",
	} {
		if got := envPrefixed(in); got != want {
			t.Errorf("envPrefixed(%q) = %q, want %q", in, got, want)
		}
	}
}

// A cpuGroup counts the command restore_command runs and what it leaves
// running in the background, and finish waits for the latter.
func TestCPUGroupCountsDetachedChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, the postgres user and a cgroup v1 cpuacct hierarchy")
	}
	g, err := newCPUGroup("walgate-bench-test-" + strings.ReplaceAll(t.Name(), "/", "-"))
	if errors.Is(err, errNoCPUAcct) {
		// A cgroup v2 only machine: the section says "not measured" and
		// why; there is nothing else to test here.
		if _, serr := os.Stat(filepath.Join(cpuacctRoot, "cpuacct.usage")); serr == nil {
			t.Fatalf("%v, yet %s/cpuacct.usage exists", err, cpuacctRoot)
		}
		t.Logf("%v: restore_command CPU is reported as not measured on this machine", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// The shell joins, then starts a detached child that outlives it:
	// a shell loop, timed by /usr/bin/time (its user + system time).
	dir, err := os.MkdirTemp("", "walgate-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	timing, script := filepath.Join(dir, "time"), filepath.Join(dir, "spin.sh")
	if err := os.WriteFile(script, []byte("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spin := `sh -c "setsid /usr/bin/time -f '%U %S' -o ` + timing + ` sh ` + script + ` >/dev/null 2>&1 &"`
	cmd := exec.Command("runuser", "-u", "postgres", "--", "sh", "-c", g.join(spin))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cpu, err := g.finish(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(timing)
	if err != nil {
		t.Fatalf("the detached child had not ended when finish returned: %v", err)
	}
	var user, sys float64
	if _, err := fmt.Sscan(string(b), &user, &sys); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	child := time.Duration((user + sys) * float64(time.Second))
	if child < 50*time.Millisecond || cpu < child {
		t.Errorf("the group counted %v of CPU; the detached child alone used %v", cpu, child)
	}
}
