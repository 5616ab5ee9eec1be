package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

const (
	cluster = "main"
	seg1    = "000000010000000000000001"
	seg2    = "000000010000000000000002"
)

var (
	keyHex  = strings.Repeat("0123456789abcdef", 4)
	keyHex2 = strings.Repeat("fedcba9876543210", 4)
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// walLike is n bytes that compress the way WAL does: runs of zeros, some
// repetitive records, some random payload.
func walLike(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	r := randBytes(t, n/4)
	for off := 0; off < n; off += 8192 {
		page := b[off:min(off+8192, n)]
		switch (off / 8192) % 4 {
		case 0: // random payload
			copy(page, r[(off/4)%len(r):])
		case 1: // repeated records
			for i := range page {
				page[i] = byte(i % 61)
			}
		}
		// case 2, 3: zeros
	}
	return b
}

// newClient builds a client for g's URL with token and extra settings.
func newClient(t *testing.T, url, token string, extra map[string]string) *client.Client {
	t.Helper()
	env := map[string]string{"WALGATE_URL": url, "WALGATE_TOKEN": token, "WALGATE_RETRIES": "0", "WALGATE_TMPDIR": t.TempDir()}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := client.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// storeFiles lists every file under the gateway's store, relative to it.
func storeFiles(t *testing.T, g *gatewaytest.Gateway) []string {
	return gatewaytest.ListFiles(t, filepath.Join(g.Data, "store"))
}

func assertStore(t *testing.T, g *gatewaytest.Gateway, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := storeFiles(t, g)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store holds %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertDirHolds checks that nothing, not even a temp file, is in dir
// besides the names in keep.
func assertDirHolds(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, "\n") != strings.Join(keep, "\n") {
		t.Fatalf("%s holds %q, want %q", dir, names, keep)
	}
}

func wantKind(t *testing.T, what string, err, kind error) *client.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: %v, want kind %v", what, err, kind)
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: %T is not a *client.Error", what, err)
	}
	if ce.Message == "" {
		t.Fatalf("%s: error without a message", what)
	}
	return ce
}

// TestRoundTrip pushes and fetches every kind of WAL file name, for every
// compression, with and without encryption, from empty to 16 MiB.
func TestRoundTrip(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	small := walLike(t, 100<<10)
	big := walLike(t, 16<<20)
	files := []struct {
		name string
		data []byte
	}{
		{"00000002.history", []byte("1\t0/3000000\tno recovery target specified\n")},
		{"000000010000000000000003.00000028.backup", []byte("START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\n")},
		{"000000010000000000000004.partial", small},
		{"000000010000000000000005", nil}, // empty
		{"000000010000000000000006", randBytes(t, 3<<20)},
	}
	i := 0
	for _, comp := range []string{"zstd", "lz4", "brotli", "none"} {
		for _, key := range []string{"", keyHex} {
			i++
			cl := "c" + string(rune('a'+i))
			t.Run(comp+"/key="+map[bool]string{true: "yes", false: "no"}[key != ""], func(t *testing.T) {
				t.Parallel()
				// One cluster per combination: every combination pushes the
				// same names.
				tok := g.Token(cl, "push", "fetch")
				extra := map[string]string{"WALGATE_COMPRESSION": comp}
				if key != "" {
					extra["WALGATE_ENCRYPTION_KEY"] = key
					extra["WALGATE_ENCRYPTION_KEY_TRANSFORM"] = "hex"
				}
				c := newClient(t, g.URL, tok, extra)
				src, dst := t.TempDir(), t.TempDir()
				all := append(files, struct {
					name string
					data []byte
				}{"00000001000000000000000F", big})
				for _, f := range all {
					p := writeFile(t, src, f.name, f.data)
					res, err := c.PushWAL(context.Background(), p)
					if err != nil {
						t.Fatalf("push %s: %v", f.name, err)
					}
					if res.Status != "stored" || res.PlainSize != int64(len(f.data)) || res.Name != f.name {
						t.Fatalf("push %s: %+v", f.name, res)
					}
					dest := filepath.Join(dst, "RECOVERYXLOG")
					if err := c.FetchWAL(context.Background(), f.name, dest); err != nil {
						t.Fatalf("fetch %s: %v", f.name, err)
					}
					got, err := os.ReadFile(dest)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, f.data) {
						t.Fatalf("fetch %s: %d bytes differ from the %d pushed", f.name, len(got), len(f.data))
					}
					// Compression none without a key stores the plaintext
					// as is; with a key, no plaintext is ever stored.
					stored, err := os.ReadFile(filepath.Join(g.Data, "store", cl, "wal_005", f.name+map[string]string{"zstd": ".zst", "lz4": ".lz4", "brotli": ".br", "none": ""}[comp]))
					if err != nil {
						t.Fatalf("stored object of %s: %v", f.name, err)
					}
					if comp == "none" && key == "" {
						if !bytes.Equal(stored, f.data) {
							t.Fatalf("%s stored with compression none differs from its plaintext", f.name)
						}
					} else if key != "" && len(f.data) >= 64 && bytes.Contains(stored, f.data[:64]) {
						t.Fatalf("%s stored in plaintext", f.name)
					}
					if int64(len(stored)) != res.Size {
						t.Fatalf("%s: stored %d bytes, acknowledged %d", f.name, len(stored), res.Size)
					}
					// A second push of the same file is success.
					res, err = c.PushWAL(context.Background(), p)
					if err != nil || res.Status != "exists" {
						t.Fatalf("second push of %s: %+v, %v", f.name, res, err)
					}
					os.Remove(dest)
				}
				assertDirHolds(t, dst)
			})
		}
	}
}

// TestInvalidNames: the library refuses bad names before any request,
// and nothing reaches the store or the destination.
func TestInvalidNames(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	src, dst := t.TempDir(), t.TempDir()
	bad := []string{
		"..", "...", seg1[:23], seg1 + "0", "00000001000000000000000G", "00000001000000000000000a",
		"000000000000000000000001", "0000000a.history", seg1 + ".zst", seg1 + ".PARTIAL",
		"RECOVERYXLOG", "..%2F" + seg1, "%2E%2E",
	}
	for _, name := range bad {
		p := filepath.Join(src, name)
		if name != ".." {
			writeFile(t, src, name, []byte("data"))
		}
		_, err := c.PushWAL(context.Background(), p)
		wantKind(t, "push "+name, err, client.ErrRejected)
		err = c.FetchWAL(context.Background(), name, filepath.Join(dst, "out"))
		wantKind(t, "fetch "+name, err, client.ErrRejected)
	}
	// Traversing and empty names given to fetch, which takes a name, not a path.
	for _, name := range []string{"", "../" + seg1, seg1 + "/..", "/" + seg1, "wal_005/" + seg1, "../../catalog.db"} {
		err := c.FetchWAL(context.Background(), name, filepath.Join(dst, "out"))
		wantKind(t, "fetch "+name, err, client.ErrRejected)
	}
	// A path whose directory part traverses is fine; its base name counts.
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, seg1, []byte("ok"))
	if _, err := c.PushWAL(context.Background(), filepath.Join(sub, "..", seg1)); err != nil {
		t.Fatalf("push through sub/..: %v", err)
	}
	assertStore(t, g, "main/wal_005/"+seg1+".zst")
	assertDirHolds(t, dst)
}

// TestConflict: the same name with other content is refused and the stored
// object stays as it was.
func TestConflict(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	src := t.TempDir()
	first := walLike(t, 1<<20)
	c := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	p := writeFile(t, src, seg1, first)
	if _, err := c.PushWAL(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(g.Data, "store", cluster, "wal_005", seg1+".zst")
	before, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	// Same plaintext, new random encryption header: still the same content.
	if res, err := c.PushWAL(context.Background(), p); err != nil || res.Status != "exists" {
		t.Fatalf("re-push: %+v %v", res, err)
	}
	second := append([]byte{}, first...)
	second[len(second)/2] ^= 1
	writeFile(t, src, seg1, second)
	_, err = c.PushWAL(context.Background(), p)
	ce := wantKind(t, "push of different content", err, client.ErrConflict)
	if ce.Status != 409 || !strings.Contains(ce.Error(), seg1) {
		t.Fatalf("conflict error: %v (HTTP %d)", ce, ce.Status)
	}
	// Other settings (no key, other compression) change the content ID
	// scheme: also refused.
	c2 := newClient(t, g.URL, tok, map[string]string{"WALGATE_COMPRESSION": "lz4"})
	writeFile(t, src, seg1, first)
	_, err = c2.PushWAL(context.Background(), p)
	wantKind(t, "push without the key", err, client.ErrConflict)

	after, err := os.ReadFile(obj)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the stored object changed (%v)", err)
	}
	assertStore(t, g, "main/wal_005/"+seg1+".zst")
	dest := filepath.Join(t.TempDir(), "x")
	if err := c.FetchWAL(context.Background(), seg1, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, first) {
		t.Fatal("fetch after the conflict returned other bytes than the first push")
	}
}

// TestConcurrentSamePush: concurrent pushes of one file all succeed and
// leave one object.
func TestConcurrentSamePush(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	data := walLike(t, 4<<20)
	p := writeFile(t, t.TempDir(), seg1, data)
	const n = 8
	errs := make([]error, n)
	status := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each its own client, with a key: every upload's bytes differ.
			c := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
			res, err := c.PushWAL(context.Background(), p)
			errs[i], status[i] = err, res.Status
		}()
	}
	wg.Wait()
	stored := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("push %d: %v", i, errs[i])
		}
		if status[i] == "stored" {
			stored++
		}
	}
	if stored != 1 {
		t.Errorf("statuses %q: want exactly one stored", status)
	}
	assertStore(t, g, "main/wal_005/"+seg1+".zst")
	c := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	dest := filepath.Join(t.TempDir(), "x")
	if err := c.FetchWAL(context.Background(), seg1, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestFetchIntegrity: tampered objects, wrong keys and missing keys fail
// with an integrity error and leave nothing at the destination.
func TestFetchIntegrity(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	withKey := map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"}
	c := newClient(t, g.URL, tok, withKey)
	plainClient := newClient(t, g.URL, tok, map[string]string{"WALGATE_COMPRESSION": "lz4"})
	src := t.TempDir()
	data := walLike(t, 2<<20)
	for _, name := range []string{seg1, seg2} {
		if _, err := c.PushWAL(context.Background(), writeFile(t, src, name, data)); err != nil {
			t.Fatal(err)
		}
	}
	const plainSeg = "000000010000000000000009"
	if _, err := plainClient.PushWAL(context.Background(), writeFile(t, src, plainSeg, data)); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	dest := filepath.Join(dst, "RECOVERYXLOG")

	// An unencrypted object fetched by a client with a key: refused (it
	// may be forged), unless the host says its archive held plaintext
	// before encryption was turned on.
	wantKind(t, "fetch of an unencrypted object with a key", c.FetchWAL(context.Background(), plainSeg, dest), client.ErrIntegrity)
	assertDirHolds(t, dst)
	allowPlain := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex", "WALGATE_ALLOW_PLAINTEXT_READ": "true"})
	if err := allowPlain.FetchWAL(context.Background(), plainSeg, dest); err != nil {
		t.Fatalf("fetch of an unencrypted object with a key configured: %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
	os.Remove(dest)

	// Wrong key.
	wrong := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex2, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	wantKind(t, "fetch with the wrong key", wrong.FetchWAL(context.Background(), seg1, dest), client.ErrIntegrity)
	assertDirHolds(t, dst)

	// No key.
	nokey := newClient(t, g.URL, tok, nil)
	err := nokey.FetchWAL(context.Background(), seg1, dest)
	wantKind(t, "fetch without a key", err, client.ErrIntegrity)
	if !strings.Contains(err.Error(), "WALGATE_ENCRYPTION_KEY") {
		t.Fatalf("no-key error does not say to set WALGATE_ENCRYPTION_KEY: %v", err)
	}
	assertDirHolds(t, dst)

	// Tampered: flip one byte at several places of the stored objects.
	flip := func(path string, at func(n int) int) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[at(len(b))] ^= 0x40
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	obj := func(name, ext string) string { return filepath.Join(g.Data, "store", cluster, "wal_005", name+ext) }
	for i, at := range []func(int) int{
		func(n int) int { return 10 },        // encryption header
		func(n int) int { return n / 2 },     // a middle chunk
		func(n int) int { return n - 1 },     // the final chunk's tag
		func(n int) int { return n / 3 * 2 }, // again, to be sure
	} {
		flip(obj(seg1, ".zst"), at)
		err := c.FetchWAL(context.Background(), seg1, dest)
		wantKind(t, "fetch of tampered ciphertext", err, client.ErrIntegrity)
		assertDirHolds(t, dst)
		flip(obj(seg1, ".zst"), at) // undo
		if i == 0 {
			if err := c.FetchWAL(context.Background(), seg1, dest); err != nil {
				t.Fatalf("fetch after undoing the damage: %v", err)
			}
			os.Remove(dest)
		}
	}
	// Tampered plain object: caught by the hash recorded at archive time.
	flip(obj(plainSeg, ".lz4"), func(n int) int { return n / 2 })
	wantKind(t, "fetch of a tampered unencrypted object", plainClient.FetchWAL(context.Background(), plainSeg, dest), client.ErrIntegrity)
	assertDirHolds(t, dst)

	// Truncated object (same length check and hash as tampering).
	b, _ := os.ReadFile(obj(seg2, ".zst"))
	if err := os.WriteFile(obj(seg2, ".zst"), b[:len(b)-100], 0o640); err != nil {
		t.Fatal(err)
	}
	err = c.FetchWAL(context.Background(), seg2, dest)
	if err == nil {
		t.Fatal("fetch of a truncated object succeeded")
	}
	if !errors.Is(err, client.ErrIntegrity) && !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("fetch of a truncated object: %v", err)
	}
	assertDirHolds(t, dst)
}

// TestFetchNotFound: a name never pushed is ErrNotFound, nothing at dest.
func TestFetchNotFound(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	dst := t.TempDir()
	err := c.FetchWAL(context.Background(), seg1, filepath.Join(dst, "x"))
	wantKind(t, "fetch of an unarchived name", err, client.ErrNotFound)
	assertDirHolds(t, dst)
}

// TestAuthErrors: every token problem is ErrAuth, and nothing is stored.
func TestAuthErrors(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	pf := g.Token(cluster, "push", "fetch")
	src, dst := t.TempDir(), t.TempDir()
	p := writeFile(t, src, seg1, walLike(t, 100<<10))
	if _, err := newClient(t, g.URL, pf, nil).PushWAL(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// Incompressible and over SpoolMemory: the refusal comes while the
	// body is still being sent.
	p2 := writeFile(t, src, seg2, randBytes(t, client.SpoolMemory+1<<20))
	pushed := false
	unknown := "wgt1.main." + strings.Repeat("A", 43)
	for _, c := range []struct {
		what  string
		token string
		push  bool // expect pushing to work
		fetch bool
	}{
		{"push-only token", g.Token(cluster, "push"), true, false},
		{"fetch-only token", g.Token(cluster, "fetch"), false, true},
		{"unknown token", unknown, false, false},
		{"admin-only token", g.Token(cluster, "admin"), false, false},
	} {
		cl := newClient(t, g.URL, c.token, nil)
		dest := filepath.Join(dst, "x")
		err := cl.FetchWAL(context.Background(), seg1, dest)
		if c.fetch {
			if err != nil {
				t.Fatalf("%s fetching: %v", c.what, err)
			}
			os.Remove(dest)
		} else {
			ce := wantKind(t, c.what+" fetching", err, client.ErrAuth)
			if ce.Status != 401 && ce.Status != 403 {
				t.Fatalf("%s fetching: HTTP %d", c.what, ce.Status)
			}
		}
		assertDirHolds(t, dst)
		// Refused pushes, repeatedly on one client: each is reported as
		// a refusal, never as a broken connection.
		for range 5 {
			_, err = cl.PushWAL(context.Background(), p2)
			if c.push {
				if err != nil {
					t.Fatalf("%s pushing: %v", c.what, err)
				}
				pushed = true
			} else {
				wantKind(t, c.what+" pushing", err, client.ErrAuth)
			}
		}
		if pushed {
			assertStore(t, g, "main/wal_005/"+seg1+".zst", "main/wal_005/"+seg2+".zst")
		} else {
			assertStore(t, g, "main/wal_005/"+seg1+".zst")
		}
	}
	// A token of another cluster, with WALGATE_CLUSTER naming ours, is a
	// configuration error before any request.
	other := g.Token("other", "push", "fetch")
	env := map[string]string{"WALGATE_URL": g.URL, "WALGATE_TOKEN": other, "WALGATE_CLUSTER": cluster}
	_, err := client.LoadConfig(func(k string) string { return env[k] })
	if !client.IsConfigError(err) || !strings.Contains(err.Error(), "other") {
		t.Fatalf("token of another cluster: %v", err)
	}
}

// TestGatewayDown: nothing listening is ErrUnavailable, quickly, and
// nothing appears at the destination.
func TestGatewayDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, "wgt1.main."+strings.Repeat("A", 43), map[string]string{"WALGATE_RETRIES": "1", "WALGATE_TIMEOUT": "2s"})
	dst := t.TempDir()
	began := time.Now()
	err = c.FetchWAL(context.Background(), seg1, filepath.Join(dst, "x"))
	ce := wantKind(t, "fetch from a gateway that is down", err, client.ErrUnavailable)
	if !strings.Contains(ce.Message, "cannot reach the gateway") {
		t.Fatalf("message: %v", err)
	}
	p := writeFile(t, t.TempDir(), seg1, []byte("x"))
	_, err = c.PushWAL(context.Background(), p)
	wantKind(t, "push to a gateway that is down", err, client.ErrUnavailable)
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("two operations against a closed port took %v", d)
	}
	assertDirHolds(t, dst)

	// A context cancelled during the retry wait ends the wait.
	c = newClient(t, "http://"+addr, "wgt1.main."+strings.Repeat("A", 43), map[string]string{"WALGATE_RETRIES": "20"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began = time.Now()
	err = c.FetchWAL(ctx, seg1, filepath.Join(dst, "x"))
	if err == nil || time.Since(began) > 3*time.Second {
		t.Fatalf("cancelled fetch: %v after %v", err, time.Since(began))
	}
	assertDirHolds(t, dst)
}

// TestConfigErrors: every configuration problem is a ConfigError that
// names what to set.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tok := "wgt1.main." + strings.Repeat("A", 43)
	base := map[string]string{"WALGATE_URL": "http://127.0.0.1:7480", "WALGATE_TOKEN": tok}
	cases := []struct {
		set  map[string]string
		want string // in the message
	}{
		{map[string]string{"WALGATE_URL": ""}, "WALGATE_URL"},
		{map[string]string{"WALGATE_URL": "ftp://127.0.0.1"}, "WALGATE_URL"},
		{map[string]string{"WALGATE_URL": "127.0.0.1:7480"}, "WALGATE_URL"},
		{map[string]string{"WALGATE_URL": "http://u:p@127.0.0.1:7480"}, "WALGATE_URL"},
		{map[string]string{"WALGATE_URL": "http://192.0.2.1:7480"}, "refusing plain http://"},
		{map[string]string{"WALGATE_URL": "http://walgate.example:7480"}, "refusing plain http://"},
		{map[string]string{"WALGATE_TOKEN": ""}, "WALGATE_TOKEN"},
		{map[string]string{"WALGATE_TOKEN": "secret"}, "malformed walgate token"},
		{map[string]string{"WALGATE_TOKEN": "wgt1.main.short"}, "malformed walgate token"},
		{map[string]string{"WALGATE_TOKEN": "wgt1.Main." + strings.Repeat("A", 43)}, "WALGATE_TOKEN"},
		{map[string]string{"WALGATE_TOKEN": "wgt1.main." + strings.Repeat("!", 43)}, "base64url"},
		{map[string]string{"WALGATE_CLUSTER": "other"}, "WALGATE_CLUSTER"},
		{map[string]string{"WALGATE_CLUSTER": "../main"}, "WALGATE_CLUSTER"},
		{map[string]string{"WALGATE_COMPRESSION": "gzip"}, "WALGATE_COMPRESSION"},
		{map[string]string{"WALG_COMPRESSION_METHOD": "lzma"}, "WALG_COMPRESSION_METHOD"},
		{map[string]string{"WALGATE_COMPRESSION_LEVEL": "ultra"}, "WALGATE_COMPRESSION_LEVEL"},
		{map[string]string{"WALGATE_COMPRESSION_LEVEL": "3"}, "fastest, default, better or best"},
		{map[string]string{"WALGATE_ENCRYPTION_KEY": "too short"}, "WALGATE_ENCRYPTION_KEY"},
		{map[string]string{"WALG_LIBSODIUM_KEY": strings.Repeat("x", 24)}, "WALG_LIBSODIUM_KEY"},
		{map[string]string{"WALGATE_ENCRYPTION_KEY": "abcd", "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"}, "WALGATE_ENCRYPTION_KEY"},
		{map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "rot13"}, "WALGATE_ENCRYPTION_KEY"},
		{map[string]string{"WALGATE_ENCRYPTION_KEY_FILE": "/nonexistent/key"}, "WALGATE_ENCRYPTION_KEY_FILE"},
		{map[string]string{"WALGATE_TOKEN": "", "WALGATE_TOKEN_FILE": "/nonexistent/token"}, "WALGATE_TOKEN_FILE"},
		{map[string]string{"WALGATE_CLIENT_CERT": "/x.crt"}, "WALGATE_CLIENT_KEY"},
		{map[string]string{"WALGATE_TIMEOUT": "soon"}, "WALGATE_TIMEOUT"},
		{map[string]string{"WALGATE_RETRIES": "-1"}, "WALGATE_RETRIES"},
	}
	for _, c := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range c.set {
			env[k] = v
		}
		_, err := client.LoadConfig(func(k string) string { return env[k] })
		if !client.IsConfigError(err) {
			t.Errorf("%v: LoadConfig = %v, want a configuration error", c.set, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %q does not mention %q", c.set, err, c.want)
		}
		// Key material never appears in the message.
		for _, k := range []string{"WALGATE_ENCRYPTION_KEY", "WALG_LIBSODIUM_KEY"} {
			if v := c.set[k]; len(v) > 3 && strings.Contains(err.Error(), v) {
				t.Errorf("%v: the message shows the key: %q", c.set, err)
			}
		}
	}
	// And the accepted forms.
	for _, set := range []map[string]string{
		{},
		{"WALGATE_URL": "https://walgate.example:7480"},
		{"WALGATE_URL": "http://192.0.2.1:7480", "WALGATE_ALLOW_INSECURE_HTTP": "true"},
		{"WALGATE_URL": "http://localhost:7480/"},
		{"WALGATE_URL": "http://[::1]:7480"},
		{"WALGATE_CLUSTER": "main"},
		{"WALGATE_ENCRYPTION_KEY": strings.Repeat("x", 25)},
		{"WALG_LIBSODIUM_KEY": hex.EncodeToString(make([]byte, 32)), "WALG_LIBSODIUM_KEY_TRANSFORM": "hex"},
		{"WALG_COMPRESSION_METHOD": "brotli"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range set {
			env[k] = v
		}
		if _, err := client.LoadConfig(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%v: %v", set, err)
		}
	}
}

// TestTooLarge: an object over the gateway's limit is refused as such
// (not as a network error), and nothing is stored.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{MaxWALBytes: 1 << 20}}})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), map[string]string{"WALGATE_COMPRESSION": "none"})
	src := t.TempDir()
	for range 3 {
		_, err := c.PushWAL(context.Background(), writeFile(t, src, seg1, randBytes(t, 3<<20)))
		ce := wantKind(t, "push over the limit", err, client.ErrRejected)
		if ce.Status != 413 || !strings.Contains(ce.Message, "max_wal_bytes") {
			t.Fatalf("push over the limit: %v (HTTP %d)", err, ce.Status)
		}
	}
	assertStore(t, g)
	// At the limit: stored.
	if _, err := c.PushWAL(context.Background(), writeFile(t, src, seg2, randBytes(t, 1<<20))); err != nil {
		t.Fatal(err)
	}
	assertStore(t, g, "main/wal_005/"+seg2)
}
