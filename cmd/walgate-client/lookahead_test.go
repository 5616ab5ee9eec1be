package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// aheadProcess returns the process id of the background push-ahead of
// walDir while one runs (holds the lock), and 0 when none does.
func aheadProcess(t *testing.T, walDir string) int {
	t.Helper()
	path := filepath.Join(walDir, client.StateDir, "pushed", ".ahead")
	if !aheadHolds(path) {
		return 0
	}
	for range 1000 {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
		time.Sleep(time.Millisecond) // locked, its id not written yet
	}
	t.Fatal("the push-ahead lock is held but names no process")
	return 0
}

// aheadHolds reports whether some process holds the lock at path.
func aheadHolds(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil
}

// PostgreSQL's archiver, played by hand: wal-push is called for each ready
// segment in turn and the segment marked done after exit 0. Each call
// starts a background push-ahead when none runs (a detached process). That
// process is killed (SIGKILL) in the middle of its work, once after some
// of its pushes were acknowledged and recorded and others were in flight,
// once before any; and a call of the archiver's is killed while its push
// is under way, and retried as the archiver does. After every kill each
// record left proves a segment the gateway holds byte for byte; at the end
// every segment is archived intact, most of them ahead, and no record is
// left over.
func TestLookaheadKilled(t *testing.T) {
	t.Parallel()
	var store *backendtest.Faulty
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		// Slower than the archiver's calls, so that the archiver
		// catches up and the push-ahead always has pushes in flight.
		store = backendtest.NewFaulty(b)
		store.SetLatency(300 * time.Millisecond)
		return store
	}})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch"), "WALGATE_LOOKAHEAD", "4"), keyHex)
	walDir := filepath.Join(t.TempDir(), "pg_wal")
	status := filepath.Join(walDir, "archive_status")
	if err := os.MkdirAll(status, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// No background process outlives the test's directory.
		deadline := time.Now().Add(20 * time.Second)
		for aheadProcess(t, walDir) != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if pid := aheadProcess(t, walDir); pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the background push-ahead %d still ran 20 s after the last call", pid)
		}
	})
	var names []string
	data := map[string][]byte{}
	for i := 1; i <= 28; i++ {
		n := pgname.DefaultSegmentSize.Name(1, uint64(i))
		names = append(names, n)
		data[n] = randBytes(t, 256<<10)
		writeFile(t, walDir, n, data[n])
		writeFile(t, status, n+".ready", nil)
	}
	state := filepath.Join(walDir, client.StateDir, "pushed")
	records := func() []string {
		entries, _ := os.ReadDir(state)
		var out []string
		for _, e := range entries {
			if n := e.Name(); !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, ".lock") {
				out = append(out, n)
			}
		}
		return out
	}
	fetchSame := func(n string) {
		t.Helper()
		dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		expectExit(t, "wal-fetch "+n, walClient(t, env, "wal-fetch", n, dest), 0)
		if !bytes.Equal(readAll(t, dest), data[n]) {
			t.Fatalf("%s: archived bytes differ", n)
		}
	}
	killAhead := func(how string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		pid := aheadProcess(t, walDir)
		for pid == 0 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
			pid = aheadProcess(t, walDir)
		}
		if pid == 0 {
			t.Fatalf("kill %s: no background push-ahead runs", how)
		}
		if how == "record" {
			before := len(records())
			for len(records()) == before && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
		}
		if aheadProcess(t, walDir) != pid {
			t.Fatalf("kill %s: the background push-ahead %d ended before it was killed: the test proves nothing", how, pid)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for aheadProcess(t, walDir) == pid && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	// pushedAhead counts the archiver's calls answered from a record (or
	// about to be: the segment is being pushed ahead).
	pushedAhead := 0
	killed := map[string]bool{}
	for i, n := range names {
		switch i {
		case 0:
			// The archiver's own call, killed while its push is under
			// way (it has started a push-ahead by then).
			cmd := exec.Command(clientBin, "wal-push", filepath.Join(walDir, n))
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			cmd.Process.Kill()
			if err := cmd.Wait(); err == nil {
				t.Fatalf("the call for %s finished before it was killed: the test proves nothing", n)
			}
			killed["call"] = true
		case 6:
			killAhead("record")
			killed["record"] = true
		case 14:
			killAhead("early")
			killed["early"] = true
		}
		if i == 0 || i == 6 || i == 14 {
			for _, r := range records() {
				fetchSame(r)
			}
		}
		// Recorded, or being pushed ahead (its lock held).
		rec := slices.Contains(records(), n) || aheadHolds(filepath.Join(state, n+".lock"))
		expectExit(t, "wal-push "+n, walClient(t, env, "wal-push", filepath.Join(walDir, n)), 0)
		if rec {
			pushedAhead++
		}
		if err := os.Rename(filepath.Join(status, n+".ready"), filepath.Join(status, n+".done")); err != nil {
			t.Fatal(err)
		}
	}
	if len(killed) != 3 {
		t.Fatalf("kills done: %v", killed)
	}
	store.SetLatency(0)
	if pushedAhead < len(names)/2 {
		t.Errorf("only %d of %d calls were answered from a record: the background push-ahead did little", pushedAhead, len(names))
	}
	for _, n := range names {
		fetchSame(n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for aheadProcess(t, walDir) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := records(); len(r) != 0 {
		t.Fatalf("records left over: %q", r)
	}
	t.Logf("%d of %d calls answered from a record", pushedAhead, len(names))
}
