package main

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets the test binary stand in for a measured command: with
// WALGATE_BENCH_TEST_ALLOC=N it touches N MiB and exits.
func TestMain(m *testing.M) {
	if n := os.Getenv("WALGATE_BENCH_TEST_ALLOC"); n != "" {
		mib, _ := strconv.Atoi(n)
		b := make([]byte, mib<<20)
		for i := range b {
			if i%4096 == 0 {
				b[i] = 1
			}
		}
		runtime.KeepAlive(b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A command's peak must be its own: a small command started by a large
// parent reports its own few MiB, not the parent's peak (which is what
// ru_maxrss reports after a vfork-style start), and a command that touches
// 64 MiB reports at least that.
func TestRunTracedPeakIsTheCommandsOwn(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Make this process's peak far larger than the small command's.
	ballast := make([]byte, 200<<20)
	for i := range ballast {
		if i%4096 == 0 {
			ballast[i] = 1
		}
	}
	env := append(os.Environ(), "WALGATE_BENCH_TEST_ALLOC=1")
	small := runTraced(spawnRequest{Path: self, Args: []string{"-test.run=^$"}, Env: env})
	runtime.KeepAlive(ballast)
	if small.Err != "" {
		t.Fatalf("small command: %s: %s", small.Err, small.Output)
	}
	if small.RUMax < 150<<10 {
		t.Logf("ru_maxrss %d KiB: this kernel does not charge the parent's peak to the child", small.RUMax)
	}
	if small.MaxRSS <= 0 || small.MaxRSS > 100<<10 {
		t.Fatalf("small command's peak %d KiB (ru_maxrss %d KiB): not its own", small.MaxRSS, small.RUMax)
	}

	env = append(os.Environ(), "WALGATE_BENCH_TEST_ALLOC=64")
	big := runTraced(spawnRequest{Path: self, Args: []string{"-test.run=^$"}, Env: env})
	if big.Err != "" {
		t.Fatalf("big command: %s: %s", big.Err, big.Output)
	}
	if big.MaxRSS < 64<<10 {
		t.Fatalf("command touching 64 MiB reported a peak of %d KiB", big.MaxRSS)
	}
	if big.WallNS <= 0 || big.CPUNS <= 0 {
		t.Fatalf("no timing: %+v", big)
	}

	fail := runTraced(spawnRequest{Path: "/bin/sh", Args: []string{"-c", "echo broken >&2; exit 3"}})
	if fail.Err != "exit status 3" || fail.Output != "broken\n" {
		t.Fatalf("failing command: err %q output %q", fail.Err, fail.Output)
	}
}
