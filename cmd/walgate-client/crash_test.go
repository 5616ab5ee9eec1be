package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/index"
)

// gatewayProc is a walgate serve process.
type gatewayProc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startGatewayBin runs the gateway binary on data and addr and waits until
// it answers /healthz.
func startGatewayBin(t *testing.T, data, addr, log string) *gatewayProc {
	t.Helper()
	return startGatewayCmd(t, exec.Command(gatewayBin, "serve", "--data", data, "--listen", addr), addr, log)
}

// startGatewayCmd runs cmd, a gateway serving on addr, with its output
// appended to log, and waits until it answers /healthz.
func startGatewayCmd(t *testing.T, cmd *exec.Cmd, addr, log string) *gatewayProc {
	t.Helper()
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{cmd: cmd, done: make(chan error, 1), log: log}
	go func() { g.done <- cmd.Wait() }()
	t.Cleanup(func() { g.kill() })
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-g.done:
			g.done <- err
			t.Fatalf("gateway exited at start: %v; log:\n%s", err, readAll(t, log))
		default:
		}
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not up after 15s; log:\n%s", readAll(t, log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (g *gatewayProc) kill() {
	select {
	case err := <-g.done:
		g.done <- err
		return
	default:
	}
	g.cmd.Process.Kill()
	err := <-g.done
	g.done <- err
}

// stop asks the gateway to shut down and waits for it.
func (g *gatewayProc) stop(t *testing.T) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		g.done <- err
		if err != nil {
			t.Fatalf("gateway exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not stop within 20s of SIGTERM")
	}
}

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// tempFiles lists the fs backend's temp files under the store.
func tempFiles(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	for _, f := range storeFiles(t, data) {
		if strings.HasPrefix(filepath.Base(f), ".walgate-tmp-") {
			out = append(out, f)
		}
	}
	return out
}

// crashSeg is one segment a pusher archived or tried to.
type crashSeg struct {
	name  string
	path  string // the source file
	sum   string // SHA-256 of the plaintext
	size  int64
	env   map[string]string
	acked bool
}

// TestCrashDurability kills the gateway binary with SIGKILL while eight
// pushers stream segments through it, three times. After each restart
// every acknowledged segment restores byte for byte, every other one is
// either absent or intact, no temp file survives, and an interrupted push
// can be repeated. At the end every catalog record names an object in the
// store with the recorded size and hash, and every object has a record.
func TestCrashDurability(t *testing.T) {
	began := time.Now()
	data, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	log := filepath.Join(t.TempDir(), "gateway.log")
	r := runBin(t, nil, gatewayBin, "token", "add", "--data", data, "--cluster", "main", "--scope", "push,fetch")
	if r.code != 0 {
		t.Fatalf("walgate token add: exit %d: %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	gw := startGatewayBin(t, data, addr, log)

	settings := []map[string]string{
		{"WALGATE_COMPRESSION": "none"},
		{"WALGATE_COMPRESSION": "lz4"},
		{"WALGATE_COMPRESSION": "zstd", "WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"},
		{"WALGATE_COMPRESSION": "none", "WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"},
	}
	newLibClient := func(env map[string]string) *client.Client {
		cfg, err := client.LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var all []*crashSeg
	const pushers, perPusher = 8, 6

	// fetchCheck fetches s and reports whether it is archived; anything
	// but an identical copy or "not archived" fails the test.
	fetchCheck := func(s *crashSeg) bool {
		t.Helper()
		c := newLibClient(s.env)
		defer c.Close()
		dest := filepath.Join(dst, "RECOVERYXLOG")
		err := c.FetchWAL(context.Background(), s.name, dest)
		if errors.Is(err, client.ErrNotFound) {
			dirHolds(t, dst)
			return false
		}
		if err != nil {
			t.Fatalf("fetch %s (acknowledged %v): %v", s.name, s.acked, err)
		}
		sum, n := fileSHA(t, dest)
		if sum != s.sum || n != s.size {
			t.Fatalf("fetch %s (acknowledged %v): %d bytes with SHA-256 %s, pushed %d bytes with %s", s.name, s.acked, n, sum, s.size, s.sum)
		}
		os.Remove(dest)
		return true
	}

	for cycle := range 3 {
		var (
			mu    sync.Mutex
			acks  int
			segs  []*crashSeg
			wg    sync.WaitGroup
			errMu sync.Mutex
			errs  []error
		)
		stop := make(chan struct{})
		for w := range pushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := clientEnv(url, tok, "WALGATE_TMPDIR", t.TempDir())
				for k, v := range settings[w%len(settings)] {
					env[k] = v
				}
				c := newLibClient(env)
				defer c.Close()
				rnd := mrand.New(mrand.NewPCG(uint64(cycle), uint64(w)))
				for k := range perPusher {
					select {
					case <-stop:
						return
					default:
					}
					// Distinct valid names: log number per cycle and pusher.
					name := fmt.Sprintf("%08X%08X%08X", 1, cycle*pushers+w, k)
					buf := make([]byte, 1<<20+rnd.IntN(3<<20))
					for i := 0; i < len(buf); i += 8 {
						v := rnd.Uint64()
						for j := 0; j < 8 && i+j < len(buf); j++ {
							buf[i+j] = byte(v >> (8 * j))
						}
					}
					sum := sha256.Sum256(buf)
					s := &crashSeg{name: name, path: filepath.Join(src, name), sum: hex.EncodeToString(sum[:]), size: int64(len(buf)), env: env}
					if err := os.WriteFile(s.path, buf, 0o600); err != nil {
						errMu.Lock()
						errs = append(errs, err)
						errMu.Unlock()
						return
					}
					mu.Lock()
					segs = append(segs, s)
					mu.Unlock()
					_, err := c.PushWAL(context.Background(), s.path)
					mu.Lock()
					if err == nil {
						s.acked = true
						acks++
					}
					mu.Unlock()
					if err != nil {
						// Only the gateway going away may fail a push.
						if !errors.Is(err, client.ErrUnavailable) {
							errMu.Lock()
							errs = append(errs, fmt.Errorf("push %s: %w", name, err))
							errMu.Unlock()
						}
						return
					}
				}
			}()
		}
		// Kill at a random moment once some pushes were acknowledged.
		threshold := 2 + mrand.IntN(12)
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := acks
			mu.Unlock()
			if n >= threshold {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: only %d acknowledgements in 30s; gateway log:\n%s", cycle, n, readAll(t, log))
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(mrand.IntN(150)) * time.Millisecond)
		gw.kill()
		close(stop)
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
		leftovers := tempFiles(t, data)
		mu.Lock()
		t.Logf("cycle %d: killed after %d acknowledged of %d pushes; %d temp files left", cycle, acks, len(segs), len(leftovers))
		mu.Unlock()
		all = append(all, segs...)

		gw = startGatewayBin(t, data, addr, log)
		if tf := tempFiles(t, data); len(tf) > 0 {
			t.Fatalf("cycle %d: temp files survived the restart: %q", cycle, tf)
		}
		present := 0
		for _, s := range all {
			ok := fetchCheck(s)
			if s.acked && !ok {
				t.Fatalf("cycle %d: %s was acknowledged but is not archived after the crash", cycle, s.name)
			}
			if ok {
				present++
			}
		}
		// What the crash interrupted can be pushed again, as PostgreSQL
		// will, and then restores.
		repushed := 0
		for _, s := range all {
			if s.acked {
				continue
			}
			c := newLibClient(s.env)
			res, err := c.PushWAL(context.Background(), s.path)
			c.Close()
			if err != nil {
				t.Fatalf("cycle %d: re-push of interrupted %s: %v", cycle, s.name, err)
			}
			s.acked = true
			repushed++
			if !fetchCheck(s) {
				t.Fatalf("cycle %d: %s re-pushed (%s) but not archived", cycle, s.name, res.Status)
			}
		}
		t.Logf("cycle %d: %d segments in the archive after the restart, %d re-pushed", cycle, present, repushed)
	}
	gw.stop(t)

	// The catalog and the store agree.
	cat, err := index.Open(filepath.Join(data, "catalog.db"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	keys := map[string]bool{}
	records := 0
	err = cat.ListWAL("main", "", func(o index.WALObject) error {
		records++
		keys[o.Key] = true
		p := filepath.Join(data, "store", filepath.FromSlash(o.Key))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("catalog record %s: %w", o.Name, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("catalog record %s: %s is not a regular file", o.Name, p)
		}
		sum, n := fileSHA(t, p)
		if n != o.Size || sum != o.SHA256 {
			return fmt.Errorf("catalog record %s: %d bytes with SHA-256 %s in the store, recorded %d bytes with %s", o.Name, n, sum, o.Size, o.SHA256)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records != len(all) {
		t.Fatalf("catalog holds %d records, %d segments were archived", records, len(all))
	}
	err = filepath.WalkDir(filepath.Join(data, "store"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(data, "store"), p)
		if !keys[filepath.ToSlash(rel)] {
			return fmt.Errorf("%s is in the store but not in the catalog", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d segments, %d catalog records, %v", len(all), records, time.Since(began))
}
