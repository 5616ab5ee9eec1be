package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/backends/gcs"
)

// server is the fake-gcs-server every test in the package uses.
var server *emulators.GCSServer

func TestMain(m *testing.M) {
	var err error
	server, err = emulators.StartFakeGCS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gcs tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

var ctx = context.Background()

// newBucket creates a bucket of the test's own.
func newBucket(t *testing.T) string {
	t.Helper()
	name := "walgate-" + strings.ToLower(rand.Text()[:12])
	if err := server.NewBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// emulatorConfig is a Config for bucket on the emulator.
func emulatorConfig(bucket, prefix string) gcs.Config {
	return gcs.Config{Bucket: bucket, Prefix: prefix, Endpoint: server.Endpoint, Anonymous: true}
}

func newBackend(t *testing.T, cfg gcs.Config) *gcs.Backend {
	t.Helper()
	b, err := gcs.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	bucket := newBucket(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		// No prefix: the suite writes keys of the full 1024 bytes the
		// store allows in an object name.
		return newBackend(t, emulatorConfig(bucket, ""))
	})
}

// With 256 KiB chunks most of the suite's objects take several requests
// (a resumable upload) instead of one: the same contracts must hold.
func TestConformanceSmallChunks(t *testing.T) {
	bucket := newBucket(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		cfg := emulatorConfig(bucket, "")
		cfg.ChunkSize = 256 << 10
		return newBackend(t, cfg)
	})
}

func put(t *testing.T, b *gcs.Backend, key string, data []byte, opts backends.PutOptions) backends.ObjectInfo {
	t.Helper()
	info, err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, b *gcs.Backend, key string) []byte {
	t.Helper()
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): reading: %v", key, err)
	}
	return data
}

func stat(t *testing.T, b *gcs.Backend, key string) backends.ObjectInfo {
	t.Helper()
	info, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func listAll(t *testing.T, b *gcs.Backend, prefix string) []backends.ObjectInfo {
	t.Helper()
	var infos []backends.ObjectInfo
	if err := b.List(ctx, prefix, func(info backends.ObjectInfo) error {
		infos = append(infos, info)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func data(n int) []byte {
	d := make([]byte, n)
	rand.Read(d)
	return d
}

func sameMetadata(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestClasses(t *testing.T) {
	b := newBackend(t, emulatorConfig(newBucket(t), "c"))
	defer b.Close()
	md := map[string]string{"sha256": "abc", "codec-v": "zstd 1"}
	payload := data(300 << 10)

	// The class given at write is kept and reported by Put, Stat and List.
	for _, class := range []string{"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"} {
		key := "at-write/" + class
		if info := put(t, b, key, payload, backends.PutOptions{Class: class, Metadata: md}); info.Class != class {
			t.Errorf("Put(class %s) returned class %q", class, info.Class)
		}
		if st := stat(t, b, key); st.Class != class || !sameMetadata(st.Metadata, md) {
			t.Errorf("Stat after Put(class %s) = class %q, metadata %v", class, st.Class, st.Metadata)
		}
	}
	for _, info := range listAll(t, b, "at-write/") {
		if want := strings.TrimPrefix(info.Key, "at-write/"); info.Class != want {
			t.Errorf("List: %q has class %q, want %q", info.Key, info.Class, want)
		}
	}
	// No class: the bucket's default.
	if info := put(t, b, "default", payload, backends.PutOptions{}); info.Class != "STANDARD" {
		t.Errorf("Put without a class returned class %q, want the bucket default STANDARD", info.Class)
	}

	// SetClass keeps data and metadata. fake-gcs-server ignores the class
	// of a rewrite (the object stays, or becomes, STANDARD: see
	// docs/backends.md), so only real GCS can show the class changing;
	// here the call must succeed and leave the object intact.
	key := "changed"
	put(t, b, key, payload, backends.PutOptions{Metadata: md})
	for _, class := range []string{"NEARLINE", "COLDLINE", "ARCHIVE", "STANDARD", ""} {
		if err := b.SetClass(ctx, key, class); err != nil {
			t.Fatalf("SetClass(%q, %q): %v", key, class, err)
		}
		st := stat(t, b, key)
		if !sameMetadata(st.Metadata, md) {
			t.Errorf("metadata after SetClass(%q) = %v, want %v", class, st.Metadata, md)
		}
		if st.Size != int64(len(payload)) || !bytes.Equal(get(t, b, key), payload) {
			t.Errorf("data changed by SetClass(%q)", class)
		}
		t.Logf("after SetClass(%q) the emulator reports class %q", class, st.Class)
	}
	// SetClass to the class the object has is no rewrite at all.
	put(t, b, "same", payload, backends.PutOptions{Class: "NEARLINE", Metadata: md})
	before := stat(t, b, "same")
	if err := b.SetClass(ctx, "same", "NEARLINE"); err != nil {
		t.Fatal(err)
	}
	if after := stat(t, b, "same"); after.Class != "NEARLINE" || !after.Modified.Equal(before.Modified) {
		t.Errorf("SetClass to the same class rewrote the object: %+v, before %+v", after, before)
	}

	// Names the store does not know are ErrUnsupported, and write nothing.
	for _, class := range []string{"nearline", "GLACIER", "REGIONAL", "Standard"} {
		_, err := b.Put(ctx, "unknown-class", bytes.NewReader(payload), int64(len(payload)), backends.PutOptions{Class: class})
		if !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("Put(class %q): %v, want ErrUnsupported", class, err)
		}
		if err := b.SetClass(ctx, key, class); !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("SetClass(%q): %v, want ErrUnsupported", class, err)
		}
	}
	if _, err := b.Stat(ctx, "unknown-class"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat after Puts with unknown classes: %v, want ErrNotFound", err)
	}
}

// SetClass must not bring back the old data when the object is replaced
// while it runs, so its rewrite names the source generation it read and
// makes the destination conditional on it. fake-gcs-server honours the
// source generation but ignores ifGenerationMatch on a rewrite (a race
// test fails there about once in 300 rounds), so this checks the requests
// through a recording proxy; real GCS evaluates both.
func TestSetClassIsConditional(t *testing.T) {
	target, err := url.Parse(server.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var rewrites []url.Values
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/rewriteTo/") {
			mu.Lock()
			rewrites = append(rewrites, r.URL.Query())
			mu.Unlock()
		}
		httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host}).ServeHTTP(w, r)
	}))
	defer proxy.Close()

	cfg := emulatorConfig(newBucket(t), "")
	cfg.Endpoint = proxy.URL + "/storage/v1/"
	b := newBackend(t, cfg)
	defer b.Close()
	put(t, b, "k", []byte("data"), backends.PutOptions{})
	if err := b.SetClass(ctx, "k", "COLDLINE"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rewrites) != 1 {
		t.Fatalf("saw %d rewrite requests, want 1", len(rewrites))
	}
	q := rewrites[0]
	if q.Get("sourceGeneration") == "" || q.Get("ifGenerationMatch") != q.Get("sourceGeneration") {
		t.Errorf("rewrite query %v: want sourceGeneration and an equal ifGenerationMatch", q)
	}
}

func TestPrefix(t *testing.T) {
	bucket := newBucket(t)
	outer := newBackend(t, emulatorConfig(bucket, ""))
	defer outer.Close()
	b := newBackend(t, emulatorConfig(bucket, "walgate/prod"))
	defer b.Close()
	if got, want := b.Name(), "gcs:"+bucket+"/walgate/prod"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}

	put(t, outer, "walgate/prodx/not-mine", []byte("x"), backends.PutOptions{})
	put(t, outer, "walgate/other", []byte("x"), backends.PutOptions{})
	put(t, b, "wal/1", []byte("one"), backends.PutOptions{})
	put(t, b, "wal/2", []byte("two"), backends.PutOptions{})

	// Stored under the prefix...
	if got := get(t, outer, "walgate/prod/wal/1"); string(got) != "one" {
		t.Errorf("object walgate/prod/wal/1 holds %q", got)
	}
	// ...and listed without it, nothing from outside.
	var keys []string
	for _, info := range listAll(t, b, "") {
		keys = append(keys, info.Key)
	}
	if strings.Join(keys, ",") != "wal/1,wal/2" {
		t.Errorf("List(\"\") = %q, want [wal/1 wal/2]", keys)
	}
	if infos := listAll(t, b, "wal/2"); len(infos) != 1 || infos[0].Key != "wal/2" || infos[0].Size != 3 {
		t.Errorf("List(wal/2) = %+v", infos)
	}
	if _, err := b.Stat(ctx, "x/not-mine"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat of a key outside the prefix: %v, want ErrNotFound", err)
	}

	// With the prefix a key may be too long for the store's object names.
	long := strings.Repeat("k", 200) + "/" + strings.Repeat("k", 200) + "/" + strings.Repeat("k", 200) + "/" +
		strings.Repeat("k", 200) + "/" + strings.Repeat("k", 200) + "/" + strings.Repeat("k", 19)
	if len(long) != backends.MaxKeyLen {
		t.Fatalf("test key is %d bytes", len(long))
	}
	_, err := b.Put(ctx, long, strings.NewReader("x"), 1, backends.PutOptions{})
	if !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("Put of a key that is too long with the prefix: %v, want ErrUnsupported", err)
	}
}

// Of writers racing with IfNotExists on a multi-chunk (resumable) upload,
// at most one wins: the store checks the precondition when it commits.
func TestConcurrentIfNotExistsResumable(t *testing.T) {
	cfg := emulatorConfig(newBucket(t), "")
	cfg.ChunkSize = 256 << 10
	b := newBackend(t, cfg)
	defer b.Close()
	const writers = 6
	for round := range 3 {
		key := fmt.Sprintf("race-%d", round)
		contents := make([][]byte, writers)
		errs := make([]error, writers)
		pws := make([]*io.PipeWriter, writers)
		var wg sync.WaitGroup
		for i := range writers {
			contents[i] = data(1<<20 + i)
			pr, pw := io.Pipe()
			pws[i] = pw
			wg.Go(func() {
				_, errs[i] = b.Put(ctx, key, pr, int64(len(contents[i])), backends.PutOptions{IfNotExists: true})
				pr.CloseWithError(errors.New("Put returned"))
			})
		}
		// All but the last byte: several chunks went to the store each.
		for i, pw := range pws {
			pw.Write(contents[i][:len(contents[i])-1])
		}
		for i, pw := range pws {
			go func() {
				pw.Write(contents[i][len(contents[i])-1:])
				pw.Close()
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both succeeded", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, backends.ErrExists):
				t.Errorf("round %d: writer %d: %v, want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer succeeded", round)
		}
		if got := get(t, b, key); !bytes.Equal(got, contents[winner]) {
			t.Errorf("round %d: the object is not the winner's", round)
		}
	}
}

// A store that stops answering mid-upload: Put fails within its attempts'
// time with an error naming the key, and once the store is back nothing
// of the upload is visible; an object that was there stays.
func TestServerDiesMidUpload(t *testing.T) {
	cfg := emulatorConfig(newBucket(t), "")
	cfg.ChunkSize = 256 << 10
	cfg.Timeout = time.Second
	cfg.MaxAttempts = 2
	b := newBackend(t, cfg)
	defer b.Close()
	old := []byte("the old object")
	put(t, b, "old", old, backends.PutOptions{Metadata: map[string]string{"v": "1"}})

	for _, key := range []string{"new", "old"} {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := b.Put(ctx, key, pr, -1, backends.PutOptions{})
			pr.CloseWithError(fmt.Errorf("Put returned: %v", err))
			done <- err
		}()
		if _, err := pw.Write(data(1 << 20)); err != nil { // four chunks are in
			t.Fatal(err)
		}
		if err := server.Pause(); err != nil {
			t.Fatal(err)
		}
		paused := true
		resume := func() {
			if paused {
				paused = false
				if err := server.Resume(); err != nil {
					t.Fatal(err)
				}
			}
		}
		defer resume()
		go func() { // the client goes on sending
			chunk := data(64 << 10)
			for {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("Put(%q) still running 30s after the store stopped answering", key)
		}
		t.Logf("Put(%q) failed after %v: %v", key, time.Since(start).Round(time.Millisecond), err)
		if err == nil {
			t.Fatalf("Put(%q) succeeded while the store did not answer", key)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("gcs put %q", key)) {
			t.Errorf("error %q does not name the operation and key", err)
		}
		resume()

		if key == "new" {
			if _, err := b.Stat(ctx, key); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("Stat(%q) after the failed upload: %v, want ErrNotFound", key, err)
			}
			continue
		}
		if got := get(t, b, key); !bytes.Equal(got, old) {
			t.Errorf("after a failed overwrite %q holds %d bytes, want the old object", key, len(got))
		}
		if st := stat(t, b, key); st.Metadata["v"] != "1" {
			t.Errorf("after a failed overwrite the metadata is %v", st.Metadata)
		}
	}
	var keys []string
	for _, info := range listAll(t, b, "") {
		keys = append(keys, info.Key)
	}
	if strings.Join(keys, ",") != "old" {
		t.Errorf("List after the failed uploads = %q, want only old", keys)
	}
}

// A store that stops answering mid-download, or before a request: the
// reader and the calls fail after about Config.Timeout (per attempt), they
// do not hang.
func TestServerStopsAnswering(t *testing.T) {
	bucket := newBucket(t)
	// Written and checked with the default timeouts: the 1s ones are for
	// the outage, and too tight for 32 MiB on a loaded machine.
	patient := newBackend(t, emulatorConfig(bucket, ""))
	defer patient.Close()
	cfg := emulatorConfig(bucket, "")
	cfg.Timeout = time.Second
	cfg.MaxAttempts = 2
	b := newBackend(t, cfg)
	defer b.Close()
	payload := data(32 << 20)
	put(t, patient, "big", payload, backends.PutOptions{})

	rc, err := b.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := server.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			server.Resume()
		}
	}()
	start := time.Now()
	n, err := io.Copy(io.Discard, rc)
	t.Logf("reading on: %d more bytes, then after %v: %v", n, time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Errorf("reading the rest of the object succeeded while the store did not answer")
	}
	start = time.Now()
	_, err = b.Stat(ctx, "big")
	t.Logf("Stat failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Errorf("Stat succeeded while the store did not answer")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Stat took %v to fail, want about 2 attempts of 1s", d)
	}
	paused = false
	if err := server.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, patient, "big"); !bytes.Equal(got, payload) {
		t.Errorf("after the store is back the object reads as %d bytes", len(got))
	}
}

// A connection cut mid-upload is retried (the resumable session resumes)
// and the object arrives whole; when the store stays unreachable, Put fails
// and nothing of the upload shows once it is back.
func TestConnectionCutMidUpload(t *testing.T) {
	proxy := startCuttingProxy(t, server.Host)
	bucket := newBucket(t)
	cfg := emulatorConfig(bucket, "")
	cfg.Endpoint = "http://" + proxy.addr() + "/storage/v1/"
	cfg.ChunkSize = 256 << 10
	cfg.Timeout = 2 * time.Second
	cfg.MaxAttempts = 3
	b := newBackend(t, cfg)
	defer b.Close()
	direct := newBackend(t, emulatorConfig(bucket, ""))
	defer direct.Close()

	payload := data(2 << 20)
	proxy.budget.Store(700 << 10) // within the third chunk
	start := time.Now()
	info, err := b.Put(ctx, "cut-once", bytes.NewReader(payload), int64(len(payload)), backends.PutOptions{})
	t.Logf("Put with one cut connection (%d cuts): %v after %v", proxy.cuts.Load(), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Put with one cut connection: %v", err)
	}
	if proxy.cuts.Load() != 1 {
		t.Errorf("the proxy cut %d connections, want 1", proxy.cuts.Load())
	}
	if info.Size != int64(len(payload)) || !bytes.Equal(get(t, direct, "cut-once"), payload) {
		t.Errorf("after a retried upload the object is not what was written")
	}

	// Cut, and stay down.
	proxy.budget.Store(700 << 10)
	proxy.refuse.Store(false)
	r := &refuseAfter{r: bytes.NewReader(payload), after: 600 << 10, proxy: proxy}
	start = time.Now()
	_, err = b.Put(ctx, "cut-for-good", r, -1, backends.PutOptions{})
	t.Logf("Put while the store stays down: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatal("Put succeeded while the store was unreachable")
	}
	if !strings.Contains(err.Error(), `gcs put "cut-for-good"`) {
		t.Errorf("error %q does not name the operation and key", err)
	}
	if strings.Contains(err.Error(), "upload_id=") && !strings.Contains(err.Error(), "upload_id=REDACTED") {
		t.Errorf("error %q shows the upload session, which is a write capability", err)
	}
	proxy.refuse.Store(false)
	proxy.budget.Store(-1)
	if _, err := b.Stat(ctx, "cut-for-good"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat after the failed upload: %v, want ErrNotFound", err)
	}
	if infos := listAll(t, direct, ""); len(infos) != 1 || infos[0].Key != "cut-once" {
		t.Errorf("List after the failed upload = %+v, want only cut-once", infos)
	}
}

// refuseAfter makes the proxy refuse connections once after bytes were
// read, so that the cut the proxy makes is never healed.
type refuseAfter struct {
	r     io.Reader
	after int64
	n     int64
	proxy *cuttingProxy
}

func (r *refuseAfter) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n >= r.after {
		r.proxy.refuse.Store(true)
	}
	return n, err
}
