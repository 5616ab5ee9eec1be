package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// slowPuts delays every store write, so that a push is caught in flight.
type slowPuts struct {
	backends.Backend
	delay time.Duration
}

func (s slowPuts) Put(ctx context.Context, key string, r io.Reader, size int64, o backends.PutOptions) (backends.ObjectInfo, error) {
	time.Sleep(s.delay)
	return s.Backend.Put(ctx, key, r, size, o)
}

// PostgreSQL's archiver, played by hand: wal-push is called for each ready
// segment in turn and the segment marked done after exit 0. Some calls are
// killed (SIGKILL) in the middle of their lookahead, and retried as the
// archiver does. After every kill each record left proves a segment the
// gateway holds byte for byte; at the end every segment is archived
// intact and no record is left over.
func TestLookaheadKilled(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		return slowPuts{Backend: b, delay: 100 * time.Millisecond}
	}})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch"), "WALGATE_LOOKAHEAD", "4"), keyHex)
	walDir := filepath.Join(t.TempDir(), "pg_wal")
	status := filepath.Join(walDir, "archive_status")
	if err := os.MkdirAll(status, 0o700); err != nil {
		t.Fatal(err)
	}
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
			if !strings.HasPrefix(e.Name(), ".tmp-") {
				out = append(out, e.Name())
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
	// Kill the calls that push (a call whose segment has a record returns
	// at once): after its first new record appears (mid-lookahead, some
	// pushes acknowledged, others in flight), or after a fixed delay.
	kills := []string{"record", "early", "record", "record"}
	killed := 0
	for i, n := range names {
		if killed < len(kills) && !slices.Contains(records(), n) && i < len(names)-4 {
			how := kills[killed]
			cmd := exec.Command(clientBin, "wal-push", filepath.Join(walDir, n))
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			switch how {
			case "record":
				before := len(records())
				for len(records()) == before && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
			case "early":
				time.Sleep(50 * time.Millisecond)
			}
			cmd.Process.Kill()
			if err := cmd.Wait(); err == nil {
				t.Fatalf("call %d (%s) finished before it was killed: the test proves nothing", i, how)
			}
			killed++
			for _, r := range records() {
				fetchSame(r)
			}
		}
		expectExit(t, "wal-push "+n, walClient(t, env, "wal-push", filepath.Join(walDir, n)), 0)
		if i == 0 {
			// The killed call's records stand; the retry pushed the
			// next four after them.
			if got := strings.Join(records(), ","); !strings.HasPrefix(got, strings.Join(names[1:5], ",")) {
				t.Fatalf("after the first push, records %s, want the next segments", got)
			}
		}
		if err := os.Rename(filepath.Join(status, n+".ready"), filepath.Join(status, n+".done")); err != nil {
			t.Fatal(err)
		}
	}
	if killed != len(kills) {
		t.Fatalf("%d calls killed", killed)
	}
	for _, n := range names {
		fetchSame(n)
	}
	if r := records(); len(r) != 0 {
		t.Fatalf("records left over: %q", r)
	}
}
