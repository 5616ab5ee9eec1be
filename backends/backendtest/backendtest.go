package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
)

// Run runs the conformance suite against the backends newBackend returns.
//
// Every subtest calls newBackend once and closes what it gets (Close must
// return nil). It writes only keys under a prefix of its own
// ("walgate-conformance/<subtest>-<random>/"), so a backend may share one
// bucket, container or directory between subtests and runs; newBackend
// need not empty anything. The subtests run one after another (the memory
// check needs a quiet heap); do not run other tests in parallel with Run.
//
// With -short the 64 MiB streaming test is skipped.
func Run(t *testing.T, newBackend func(t *testing.T) backends.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Name", testName},
		{"PutGetStat", testPutGetStat},
		{"EmptyObject", testEmptyObject},
		{"LargeStreamed", testLargeStreamed},
		{"UnknownSize", testUnknownSize},
		{"RangeReads", testRangeReads},
		{"OddKeys", testOddKeys},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidMetadata", testInvalidMetadata},
		{"IfNotExists", testIfNotExists},
		{"ConcurrentIfNotExists", testConcurrentIfNotExists},
		{"IfNotExistsLarge", testIfNotExistsLarge},
		{"OverwriteReplacesMetadata", testOverwriteReplacesMetadata},
		{"OverwriteIsAtomic", testOverwriteIsAtomic},
		{"FailingReader", testFailingReader},
		{"CancelledUpload", testCancelledUpload},
		{"SizeMismatch", testSizeMismatch},
		{"InProgressInvisible", testInProgressInvisible},
		{"List", testList},
		{"ListStopsOnError", testListStopsOnError},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"SetClass", testSetClass},
		{"GetCancelled", testGetCancelled},
		{"ConcurrentKeys", testConcurrentKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, &fixture{t: t, b: b, prefix: uniquePrefix(t)})
		})
	}
}

// fixture is one subtest's backend and key prefix, with helpers that fail
// the test on unexpected errors.
type fixture struct {
	t      *testing.T
	b      backends.Backend
	prefix string // unique to the subtest, ends in "/"
}

func uniquePrefix(t *testing.T) string {
	name := []byte(t.Name())
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			name[i] = '-'
		}
	}
	return "walgate-conformance/" + string(name) + "-" + strings.ToLower(rand.Text()[:10]) + "/"
}

func (f *fixture) key(s string) string { return f.prefix + s }

func (f *fixture) put(key string, data []byte, opts backends.PutOptions) backends.ObjectInfo {
	f.t.Helper()
	info, err := f.b.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		f.t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
	return info
}

func (f *fixture) getRange(key string, off, length int64) []byte {
	f.t.Helper()
	rc, err := f.b.Get(context.Background(), key, off, length)
	if err != nil {
		f.t.Fatalf("Get(%q, %d, %d): %v", key, off, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatalf("Get(%q, %d, %d): reading: %v", key, off, length, err)
	}
	return data
}

func (f *fixture) get(key string) []byte {
	f.t.Helper()
	return f.getRange(key, 0, -1)
}

func (f *fixture) stat(key string) backends.ObjectInfo {
	f.t.Helper()
	info, err := f.b.Stat(context.Background(), key)
	if err != nil {
		f.t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

// list returns the objects under prefix, checking they come in order.
func (f *fixture) list(prefix string) []backends.ObjectInfo {
	f.t.Helper()
	var infos []backends.ObjectInfo
	err := f.b.List(context.Background(), prefix, func(info backends.ObjectInfo) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		f.t.Fatalf("List(%q): %v", prefix, err)
	}
	for i := 1; i < len(infos); i++ {
		if infos[i-1].Key >= infos[i].Key {
			f.t.Errorf("List(%q): %q before %q, want strictly increasing keys", prefix, infos[i-1].Key, infos[i].Key)
		}
	}
	return infos
}

func (f *fixture) listKeys(prefix string) []string {
	f.t.Helper()
	var keys []string
	for _, info := range f.list(prefix) {
		keys = append(keys, info.Key)
	}
	return keys
}

// wantContent checks the whole object under key is want.
func (f *fixture) wantContent(key string, want []byte) {
	f.t.Helper()
	got := f.get(key)
	if !bytes.Equal(got, want) {
		f.t.Errorf("Get(%q) = %s, want %s", key, describe(got), describe(want))
	}
	if info := f.stat(key); info.Size != int64(len(want)) {
		f.t.Errorf("Stat(%q).Size = %d, want %d", key, info.Size, len(want))
	}
}

// wantAbsent checks that nothing is visible under key: Stat and Get say
// ErrNotFound and List of the subtest's prefix does not show it.
func (f *fixture) wantAbsent(key string) {
	f.t.Helper()
	if info, err := f.b.Stat(context.Background(), key); !errors.Is(err, backends.ErrNotFound) {
		f.t.Errorf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
	}
	rc, err := f.b.Get(context.Background(), key, 0, -1)
	if err == nil {
		data, _ := io.ReadAll(rc)
		rc.Close()
		f.t.Errorf("Get(%q) returned %s, want ErrNotFound", key, describe(data))
	} else if !errors.Is(err, backends.ErrNotFound) {
		f.t.Errorf("Get(%q): %v, want ErrNotFound", key, err)
	}
	if slices.Contains(f.listKeys(f.prefix), key) {
		f.t.Errorf("List(%q) shows %q, want it absent", f.prefix, key)
	}
}

// wantErr checks errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
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

// describe prints data short enough for a test failure.
func describe(data []byte) string {
	if len(data) <= 64 {
		return fmt.Sprintf("%q", data)
	}
	return fmt.Sprintf("%d bytes (sha256 %x, starting %q)", len(data), sha256.Sum256(data), data[:16])
}

// pattern returns n deterministic bytes that differ with seed.
func pattern(seed uint64, n int) []byte {
	data := make([]byte, n)
	rng := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1})
	_, _ = rng.Read(data)
	return data
}

func testName(t *testing.T, f *fixture) {
	if f.b.Name() == "" {
		t.Error("Name() is empty")
	}
}

func testPutGetStat(t *testing.T, f *fixture) {
	key := f.key("cluster/wal_005/000000010000000000000001")
	data := pattern(1, 100_000)
	md := map[string]string{"sha256": fmt.Sprintf("%x", sha256.Sum256(data)), "codec-v": "zstd 1; aes-gcm"}
	before := time.Now()
	info := f.put(key, data, backends.PutOptions{Metadata: md})
	if info.Key != key || info.Size != int64(len(data)) || !sameMetadata(info.Metadata, md) {
		t.Errorf("Put returned %+v, want key %q, size %d, metadata %v", info, key, len(data), md)
	}
	f.wantContent(key, data)

	st := f.stat(key)
	if st.Key != key || st.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want key %q size %d", st, key, len(data))
	}
	if !sameMetadata(st.Metadata, md) {
		t.Errorf("Stat metadata = %v, want %v", st.Metadata, md)
	}
	if st.Modified.IsZero() || st.Modified.Sub(before).Abs() > time.Hour {
		t.Errorf("Stat Modified = %v, want about %v", st.Modified, before)
	}
	infos := f.list(f.prefix)
	if len(infos) != 1 || infos[0].Key != key || infos[0].Size != int64(len(data)) || !sameMetadata(infos[0].Metadata, md) {
		t.Errorf("List = %+v, want the one object with its size and metadata", infos)
	}

	// An object stored without metadata has none.
	plain := f.key("plain")
	f.put(plain, []byte("x"), backends.PutOptions{})
	if st := f.stat(plain); len(st.Metadata) != 0 {
		t.Errorf("Stat(%q).Metadata = %v, want none", plain, st.Metadata)
	}
}

func testEmptyObject(t *testing.T, f *fixture) {
	key := f.key("empty")
	info := f.put(key, nil, backends.PutOptions{})
	if info.Size != 0 {
		t.Errorf("Put returned size %d, want 0", info.Size)
	}
	f.wantContent(key, []byte{})
	if got := f.getRange(key, 0, 10); len(got) != 0 {
		t.Errorf("Get(0, 10) of an empty object = %q", got)
	}
	unknown := f.key("empty-unknown-size")
	if _, err := f.b.Put(context.Background(), unknown, bytes.NewReader(nil), -1, backends.PutOptions{}); err != nil {
		t.Fatalf("Put(size -1, empty): %v", err)
	}
	f.wantContent(unknown, []byte{})
}

// genReader yields n deterministic bytes, hashing them as they go, without
// holding them.
type genReader struct {
	rng  *mrand.ChaCha8
	left int64
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newGenReader(seed byte, n int64) *genReader {
	return &genReader{rng: mrand.NewChaCha8([32]byte{seed}), left: n, h: sha256.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.h.Write(p[:n])
	g.left -= int64(n)
	return n, nil
}

// maxHeapGrowth is how much the live heap may grow while a 64 MiB object
// is written or read: enough for a few part buffers, far less than the
// object.
const maxHeapGrowth = 8 << 20

func testLargeStreamed(t *testing.T, f *fixture) {
	const size = 64 << 20
	key := f.key("large")
	gen := newGenReader(7, size)
	var putErr error
	growth := heapGrowth(func() {
		_, putErr = f.b.Put(context.Background(), key, gen, size, backends.PutOptions{})
	})
	if putErr != nil {
		t.Fatalf("Put of 64 MiB: %v", putErr)
	}
	if gen.left != 0 {
		t.Fatalf("Put returned with %d bytes of the reader unread", gen.left)
	}
	want := gen.h.Sum(nil)
	t.Logf("Put of 64 MiB: heap grew by %.1f MiB", float64(growth)/(1<<20))
	if growth > maxHeapGrowth {
		t.Errorf("Put of 64 MiB grew the heap by %d bytes, want at most %d: is it buffering the object?", growth, maxHeapGrowth)
	}
	if st := f.stat(key); st.Size != size {
		t.Errorf("Stat size %d, want %d", st.Size, size)
	}

	h := sha256.New()
	var n int64
	var getErr error
	buf := make([]byte, 64<<10)
	growth = heapGrowth(func() {
		rc, err := f.b.Get(context.Background(), key, 0, -1)
		if err != nil {
			getErr = err
			return
		}
		defer rc.Close()
		n, getErr = io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{rc}, buf)
	})
	if getErr != nil {
		t.Fatalf("Get of 64 MiB: %v", getErr)
	}
	t.Logf("Get of 64 MiB: heap grew by %.1f MiB", float64(growth)/(1<<20))
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("Get returned %d bytes with sha256 %x, want %d bytes with %x", n, h.Sum(nil), size, want)
	}
	if growth > maxHeapGrowth {
		t.Errorf("Get of 64 MiB grew the heap by %d bytes, want at most %d", growth, maxHeapGrowth)
	}
}

func testUnknownSize(t *testing.T, f *fixture) {
	for _, n := range []int{1, 100_000, 9<<20 + 1} { // the last crosses common multipart part sizes
		key := f.key(fmt.Sprintf("unknown-%d", n))
		data := pattern(uint64(n), n)
		// No Len method, no Seek: the backend cannot learn the size.
		r := struct{ io.Reader }{bytes.NewReader(data)}
		info, err := f.b.Put(context.Background(), key, r, -1, backends.PutOptions{})
		if err != nil {
			t.Fatalf("Put(%d bytes, size -1): %v", n, err)
		}
		if info.Size != int64(n) {
			t.Errorf("Put(%d bytes, size -1) returned size %d", n, info.Size)
		}
		f.wantContent(key, data)
	}
}

func testRangeReads(t *testing.T, f *fixture) {
	key := f.key("ranged")
	data := pattern(3, 1000)
	f.put(key, data, backends.PutOptions{})
	for _, tc := range []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{0, 1000, data},
		{0, 10, data[:10]},
		{100, 50, data[100:150]},
		{990, -1, data[990:]},
		{999, 1, data[999:]},
		{995, 100, data[995:]}, // length past the end: to the end
		{500, 0, nil},          // zero length
		{1000, -1, nil},        // at the end
		{1000, 10, nil},
		{5000, -1, nil}, // past the end: empty, not an error
	} {
		got := f.getRange(key, tc.off, tc.length)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Get(off %d, length %d) = %s, want %s", tc.off, tc.length, describe(got), describe(tc.want))
		}
	}
	if rc, err := f.b.Get(context.Background(), key, -1, 10); err == nil {
		rc.Close()
		t.Errorf("Get with offset -1 succeeded, want an error")
	}
}

// longKey returns a key of exactly n bytes under prefix, in segments of at
// most 200 bytes (file systems limit a name to 255).
func longKey(prefix string, n int) string {
	var sb strings.Builder
	sb.WriteString(prefix)
	for left := n - len(prefix); left > 0; {
		if left <= 200 {
			sb.WriteString(strings.Repeat("k", left))
			break
		}
		sb.WriteString(strings.Repeat("k", 199))
		sb.WriteByte('/')
		left -= 200
	}
	return sb.String()
}

func testOddKeys(t *testing.T, f *fixture) {
	keys := []string{
		f.key("with space/file name.txt"),
		f.key("ünïcödé/日本語/ファイル"),
		f.key("emoji-🐘"),
		f.key("dash-under_score.dot~tilde"),
		f.key("url-special !$&'()*+,;=:@#?[]"),
		f.key("percent%2Fescaped%20"),
		f.key("dots.../...trailing."),
		f.key(".leading-dot"),
		f.key("UPPER/lower"),
		f.key(strings.Repeat("deep/", 30) + "leaf"),
		longKey(f.prefix+"long/", backends.MaxKeyLen),
	}
	for i, key := range keys {
		if err := backends.ValidateKey(key); err != nil {
			t.Fatalf("test key is invalid: %v", err)
		}
		data := pattern(uint64(100+i), 10+i)
		info := f.put(key, data, backends.PutOptions{})
		if info.Key != key {
			t.Errorf("Put(%q) returned key %q", key, info.Key)
		}
		f.wantContent(key, data)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := f.listKeys(f.prefix); !slices.Equal(got, want) {
		t.Errorf("List = %q\nwant %q", got, want)
	}
	for _, key := range keys {
		if err := f.b.Delete(context.Background(), key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
		f.wantAbsent(key)
	}
}

func testInvalidKeys(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, key := range []string{
		"",
		"/" + f.key("leading-slash"),
		f.key("trailing-slash/"),
		f.key("double//slash"),
		f.key("dot/../escape"),
		f.key("dot/./segment"),
		f.key(".."),
		f.key("back\\slash"),
		f.key("nul\x00byte"),
		f.key("new\nline"),
		f.key("del\x7f"),
		f.key("bad-utf8-\xff"),
		longKey(f.prefix+"long/", backends.MaxKeyLen+1),
	} {
		_, err := f.b.Put(ctx, key, strings.NewReader("data"), 4, backends.PutOptions{})
		wantErr(t, fmt.Sprintf("Put(%q)", key), err, backends.ErrInvalidKey)
		_, err = f.b.Get(ctx, key, 0, -1)
		wantErr(t, fmt.Sprintf("Get(%q)", key), err, backends.ErrInvalidKey)
		_, err = f.b.Stat(ctx, key)
		wantErr(t, fmt.Sprintf("Stat(%q)", key), err, backends.ErrInvalidKey)
		err = f.b.Delete(ctx, key)
		wantErr(t, fmt.Sprintf("Delete(%q)", key), err, backends.ErrInvalidKey)
		err = f.b.SetClass(ctx, key, "")
		wantErr(t, fmt.Sprintf("SetClass(%q)", key), err, backends.ErrInvalidKey)
	}
	if keys := f.listKeys(f.prefix); len(keys) != 0 {
		t.Errorf("after Puts of invalid keys, List shows %q", keys)
	}
	// Where a lax backend would have cleaned the key up and written it.
	for _, key := range []string{f.key("escape"), f.key("segment"), f.key("leading-slash"), f.key("trailing-slash"), f.key("double/slash")} {
		f.wantAbsent(key)
	}
}

func testInvalidMetadata(t *testing.T, f *fixture) {
	for i, md := range []map[string]string{
		{"Upper": "v"},
		{"under_score": "v"},
		{"": "v"},
		{"dot.ted": "v"},
		{"k": "new\nline"},
		{"k": "non-ascii é"},
	} {
		key := f.key(fmt.Sprintf("md-%d", i))
		if _, err := f.b.Put(context.Background(), key, strings.NewReader("data"), 4, backends.PutOptions{Metadata: md}); err == nil {
			t.Errorf("Put with metadata %q succeeded, want an error", md)
		}
		f.wantAbsent(key)
	}
}

func testIfNotExists(t *testing.T, f *fixture) {
	ctx := context.Background()
	key := f.key("once")
	v1 := []byte("first version")
	md := map[string]string{"version": "1"}
	f.put(key, v1, backends.PutOptions{IfNotExists: true, Metadata: md})
	f.wantContent(key, v1)

	v2 := []byte("second, longer version")
	_, err := f.b.Put(ctx, key, bytes.NewReader(v2), int64(len(v2)),
		backends.PutOptions{IfNotExists: true, Metadata: map[string]string{"version": "2"}})
	wantErr(t, "Put IfNotExists over an existing object", err, backends.ErrExists)
	f.wantContent(key, v1)
	if st := f.stat(key); !sameMetadata(st.Metadata, md) {
		t.Errorf("metadata after a refused Put = %v, want %v", st.Metadata, md)
	}
	if keys := f.listKeys(f.prefix); !slices.Equal(keys, []string{key}) {
		t.Errorf("List = %q, want only %q", keys, key)
	}
}

// testIfNotExistsLarge: the condition holds on the path large and
// unknown-size objects take (multipart uploads, resumable uploads, staged
// blocks), not only on a single request.
func testIfNotExistsLarge(t *testing.T, f *fixture) {
	const n = 7 << 20 // above every driver's single-request threshold in the tests
	for _, size := range []int64{n, -1} {
		key := f.key(fmt.Sprintf("large-%d", size))
		first := pattern(uint64(size+2), n)
		if _, err := f.b.Put(context.Background(), key, bytes.NewReader(first), size, backends.PutOptions{IfNotExists: true}); err != nil {
			t.Fatalf("Put IfNotExists of %d bytes (size %d): %v", n, size, err)
		}
		second := pattern(uint64(size+3), n)
		_, err := f.b.Put(context.Background(), key, bytes.NewReader(second), size, backends.PutOptions{IfNotExists: true})
		wantErr(t, fmt.Sprintf("Put IfNotExists of %d bytes (size %d) over an existing object", n, size), err, backends.ErrExists)
		f.wantContent(key, first)
	}
}

// gatedReader yields data but holds back its last byte until release is
// closed, telling arrived when it gets there: the racing writers of
// testConcurrentIfNotExists all reach their commit point together.
type gatedReader struct {
	data    []byte
	arrived chan<- struct{}
	release <-chan struct{}
	held    bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.data) == 0 {
		return 0, io.EOF
	}
	if len(g.data) == 1 && !g.held {
		g.held = true
		g.arrived <- struct{}{}
		<-g.release
	}
	limit := len(g.data)
	if !g.held {
		limit-- // hold back the last byte
	}
	n := copy(p, g.data[:limit])
	g.data = g.data[n:]
	return n, nil
}

func testConcurrentIfNotExists(t *testing.T, f *fixture) {
	const writers = 8
	for round := range 10 {
		key := f.key(fmt.Sprintf("race-%d", round))
		contents := make([][]byte, writers)
		errs := make([]error, writers)
		arrived := make(chan struct{}, writers)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			contents[i] = pattern(uint64(round*writers+i), 64<<10+i)
			r := &gatedReader{data: contents[i], arrived: arrived, release: release}
			wg.Go(func() {
				_, errs[i] = f.b.Put(context.Background(), key, r, int64(len(contents[i])),
					backends.PutOptions{IfNotExists: true})
			})
		}
		// Let them all go at once when all hold their last byte (or,
		// should a backend refuse some before reading everything, soon).
		timeout := time.After(10 * time.Second)
	wait:
		for range writers {
			select {
			case <-arrived:
			case <-timeout:
				break wait
			}
		}
		close(release)
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
		f.wantContent(key, contents[winner])
	}
}

func testOverwriteReplacesMetadata(t *testing.T, f *fixture) {
	key := f.key("replaced")
	f.put(key, []byte("one"), backends.PutOptions{Metadata: map[string]string{"a": "1", "b": "2"}})
	v2 := []byte("version two")
	md2 := map[string]string{"a": "3"}
	f.put(key, v2, backends.PutOptions{Metadata: md2})
	f.wantContent(key, v2)
	if st := f.stat(key); !sameMetadata(st.Metadata, md2) {
		t.Errorf("metadata after overwrite = %v, want %v (nothing kept from the old object)", st.Metadata, md2)
	}
	f.put(key, []byte("three"), backends.PutOptions{})
	if st := f.stat(key); len(st.Metadata) != 0 {
		t.Errorf("metadata after overwrite without metadata = %v, want none", st.Metadata)
	}
}

// versionData is version v of an object: size and every byte derive from
// v, so a reader can tell a whole version from a mix of two.
func versionData(v int) []byte {
	return bytes.Repeat([]byte{byte(v%250 + 1)}, 256<<10+v*(1<<10))
}

func testOverwriteIsAtomic(t *testing.T, f *fixture) {
	key := f.key("overwritten")
	f.put(key, versionData(0), backends.PutOptions{})
	const versions = 30
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads sync.Map
	for r := range 2 {
		wg.Go(func() {
			n := 0
			for {
				select {
				case <-done:
					reads.Store(r, n)
					return
				default:
				}
				rc, err := f.b.Get(context.Background(), key, 0, -1)
				if err != nil {
					t.Errorf("reader %d: Get during overwrites: %v", r, err)
					return
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("reader %d: reading during overwrites: %v", r, err)
					return
				}
				if len(data) == 0 {
					t.Errorf("reader %d: read an empty object", r)
					return
				}
				v := int(data[0]) - 1
				if !bytes.Equal(data, versionData(v)) {
					t.Errorf("reader %d: read %d bytes starting with version %d's byte: a mix of versions", r, len(data), v)
					return
				}
				n++
			}
		})
	}
	for v := 1; v <= versions; v++ {
		f.put(key, versionData(v), backends.PutOptions{})
	}
	close(done)
	wg.Wait()
	f.wantContent(key, versionData(versions))
	reads.Range(func(r, n any) bool {
		t.Logf("reader %v checked %v whole reads during %d overwrites", r, n, versions)
		return true
	})
}

var errBroken = errors.New("reader broke")

func testFailingReader(t *testing.T, f *fixture) {
	ctx := context.Background()
	data := pattern(5, 1<<20)
	for _, tc := range []struct {
		name   string
		failAt int64
		size   int64
	}{
		{"known-size", 300 << 10, 1 << 20},
		{"unknown-size", 300 << 10, -1},
		{"at-first-byte", 0, 1 << 20},
		{"at-last-byte", 1<<20 - 1, 1 << 20},
	} {
		key := f.key("new-" + tc.name)
		_, err := f.b.Put(ctx, key, FailingReader(bytes.NewReader(data), tc.failAt, errBroken), tc.size, backends.PutOptions{})
		if err == nil {
			t.Errorf("%s: Put with a reader that fails succeeded", tc.name)
		} else if !errors.Is(err, errBroken) {
			t.Logf("%s: Put error %v does not wrap the reader's error", tc.name, err)
		}
		f.wantAbsent(key)

		old := f.key("old-" + tc.name)
		v1 := []byte("the old object")
		md := map[string]string{"v": "1"}
		f.put(old, v1, backends.PutOptions{Metadata: md})
		_, err = f.b.Put(ctx, old, FailingReader(bytes.NewReader(data), tc.failAt, errBroken), tc.size, backends.PutOptions{})
		if err == nil {
			t.Errorf("%s: overwriting Put with a reader that fails succeeded", tc.name)
		}
		f.wantContent(old, v1)
		if st := f.stat(old); !sameMetadata(st.Metadata, md) {
			t.Errorf("%s: metadata after a failed overwrite = %v, want %v", tc.name, st.Metadata, md)
		}
	}
}

// cancellingReader yields data and cancels ctx once it has yielded after
// bytes, then keeps yielding: only the backend's own ctx checks stop it.
type cancellingReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func testCancelledUpload(t *testing.T, f *fixture) {
	data := pattern(6, 4<<20)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := f.key("pre-cancelled")
	if _, err := f.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), backends.PutOptions{}); err == nil {
		t.Errorf("Put with a cancelled ctx succeeded")
	}
	f.wantAbsent(key)

	for _, size := range []int64{int64(len(data)), -1} {
		key := f.key(fmt.Sprintf("mid-upload-%d", size))
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancellingReader{r: bytes.NewReader(data), after: 256 << 10, cancel: cancel}
		_, err := f.b.Put(ctx, key, r, size, backends.PutOptions{})
		cancel()
		if err == nil {
			t.Errorf("size %d: Put whose ctx was cancelled mid-upload succeeded", size)
		} else if !errors.Is(err, context.Canceled) {
			t.Logf("size %d: Put error %v does not wrap context.Canceled", size, err)
		}
		f.wantAbsent(key)
	}

	old := f.key("old")
	v1 := []byte("the old object")
	f.put(old, v1, backends.PutOptions{})
	ctx, cancel = context.WithCancel(context.Background())
	r := &cancellingReader{r: bytes.NewReader(data), after: 256 << 10, cancel: cancel}
	if _, err := f.b.Put(ctx, old, r, int64(len(data)), backends.PutOptions{}); err == nil {
		t.Errorf("overwriting Put whose ctx was cancelled mid-upload succeeded")
	}
	cancel()
	f.wantContent(old, v1)
}

func testSizeMismatch(t *testing.T, f *fixture) {
	ctx := context.Background()
	data := pattern(8, 1<<20)
	for _, tc := range []struct {
		name     string
		declared int64
		actual   int
	}{
		{"declared-bigger", 1 << 20, 300 << 10},
		{"declared-smaller", 300 << 10, 1 << 20},
		{"declared-zero", 0, 1},
		{"one-byte-short", 1 << 20, 1<<20 - 1},
		{"one-byte-long", 1<<20 - 1, 1 << 20},
	} {
		key := f.key("new-" + tc.name)
		_, err := f.b.Put(ctx, key, bytes.NewReader(data[:tc.actual]), tc.declared, backends.PutOptions{})
		wantErr(t, tc.name, err, backends.ErrSizeMismatch)
		f.wantAbsent(key)

		old := f.key("old-" + tc.name)
		v1 := []byte("the old object")
		f.put(old, v1, backends.PutOptions{})
		_, err = f.b.Put(ctx, old, bytes.NewReader(data[:tc.actual]), tc.declared, backends.PutOptions{})
		wantErr(t, tc.name+" over an existing object", err, backends.ErrSizeMismatch)
		f.wantContent(old, v1)
	}
}

// testInProgressInvisible holds a Put open mid-stream and checks that
// nothing of it shows until it returns.
func testInProgressInvisible(t *testing.T, f *fixture) {
	ctx := context.Background()
	key := f.key("in-progress")
	old := f.key("in-progress-over-old")
	v1 := []byte("the old object")
	f.put(old, v1, backends.PutOptions{})

	chunk := pattern(9, 256<<10)
	type result struct {
		key string
		err error
	}
	results := make(chan result, 2)
	var writers []*io.PipeWriter
	for _, k := range []string{key, old} {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		t.Cleanup(func() { pw.CloseWithError(errBroken) }) // unblocks Put if the test stops early
		go func() {
			_, err := f.b.Put(ctx, k, pr, -1, backends.PutOptions{})
			pr.CloseWithError(err)
			results <- result{k, err}
		}()
		// A pipe write returns once Put has read it all: the upload is
		// under way.
		if _, err := pw.Write(chunk); err != nil {
			t.Fatalf("writing to Put(%q): %v", k, err)
		}
	}
	f.wantAbsent(key)
	f.wantContent(old, v1)
	if keys := f.listKeys(f.prefix); !slices.Equal(keys, []string{old}) {
		t.Errorf("List during uploads = %q, want only %q", keys, old)
	}

	for _, pw := range writers {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatalf("writing to Put: %v", err)
		}
		pw.Close()
	}
	for range writers {
		if r := <-results; r.err != nil {
			t.Errorf("Put(%q): %v", r.key, r.err)
		}
	}
	want := slices.Concat(chunk, chunk)
	f.wantContent(key, want)
	f.wantContent(old, want)
}

func testList(t *testing.T, f *fixture) {
	names := []string{
		"x-1", "x/1", "x/2/deep", "x0", "y", "Z", "é",
		"wal_005/000000010000000000000001",
		"wal_005/000000010000000000000001.partial",
		"wal_005/000000010000000000000002",
		"wal_005/000000020000000000000001",
		"wal_005/000000020000000000000001.history",
	}
	md := map[string]string{"listed": "yes"}
	shuffled := slices.Clone(names)
	mrand.New(mrand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, n := range shuffled {
		opts := backends.PutOptions{}
		if n == "x/1" {
			opts.Metadata = md
		}
		f.put(f.key(n), []byte(n), opts)
	}
	keysOf := func(ns ...string) []string {
		var keys []string
		for _, n := range ns {
			keys = append(keys, f.key(n))
		}
		slices.Sort(keys)
		return keys
	}

	infos := f.list(f.prefix)
	if got, want := len(infos), len(names); got != want {
		t.Fatalf("List(%q) returned %d objects, want %d", f.prefix, got, want)
	}
	for i, info := range infos {
		if want := keysOf(names...)[i]; info.Key != want {
			t.Errorf("List(%q)[%d] = %q, want %q", f.prefix, i, info.Key, want)
		}
		n := strings.TrimPrefix(info.Key, f.prefix)
		if info.Size != int64(len(n)) {
			t.Errorf("List: %q has size %d, want %d", info.Key, info.Size, len(n))
		}
		if n == "x/1" && !sameMetadata(info.Metadata, md) {
			t.Errorf("List: %q has metadata %v, want %v", info.Key, info.Metadata, md)
		}
		if info.Modified.IsZero() {
			t.Errorf("List: %q has no modification time", info.Key)
		}
	}

	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"x", keysOf("x-1", "x/1", "x/2/deep", "x0")},
		{"x/", keysOf("x/1", "x/2/deep")},
		{"x/2", keysOf("x/2/deep")},
		{"x/2/deep", keysOf("x/2/deep")},
		{"x/2/deeper", nil},
		{"y", keysOf("y")},
		{"wal_005/00000001", keysOf("wal_005/000000010000000000000001", "wal_005/000000010000000000000001.partial", "wal_005/000000010000000000000002")},
		{"wal_005/000000010000000000000001", keysOf("wal_005/000000010000000000000001", "wal_005/000000010000000000000001.partial")},
		{"wal_005/000000020000000000000001.", keysOf("wal_005/000000020000000000000001.history")},
		{"wal_00", keysOf("wal_005/000000010000000000000001", "wal_005/000000010000000000000001.partial",
			"wal_005/000000010000000000000002", "wal_005/000000020000000000000001", "wal_005/000000020000000000000001.history")},
		{"nothing", nil},
		{"nothing/", nil},
		{"x//", nil},
	} {
		if got := f.listKeys(f.key(tc.prefix)); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q\nwant %q", f.key(tc.prefix), got, tc.want)
		}
	}
}

func testListStopsOnError(t *testing.T, f *fixture) {
	for i := range 5 {
		f.put(f.key(fmt.Sprintf("k%d", i)), []byte("x"), backends.PutOptions{})
	}
	stop := errors.New("stop here")
	calls := 0
	err := f.b.List(context.Background(), f.prefix, func(backends.ObjectInfo) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Errorf("callback called %d times, want 2 (List must stop at the first error)", calls)
	}
}

func testDelete(t *testing.T, f *fixture) {
	ctx := context.Background()
	a, b := f.key("d/a"), f.key("d/b")
	f.put(a, []byte("a"), backends.PutOptions{})
	f.put(b, []byte("b"), backends.PutOptions{})
	if err := f.b.Delete(ctx, a); err != nil {
		t.Fatalf("Delete(%q): %v", a, err)
	}
	f.wantAbsent(a)
	f.wantContent(b, []byte("b"))
	// Deleting what is absent succeeds and changes nothing: a deleted
	// object, and a key that only prefixes other keys.
	if err := f.b.Delete(ctx, a); err != nil {
		t.Errorf("Delete of a deleted object: %v, want nil", err)
	}
	if err := f.b.Delete(ctx, f.key("d")); err != nil {
		t.Errorf("Delete of a key prefix: %v, want nil", err)
	}
	f.wantAbsent(a)
	f.wantContent(b, []byte("b"))
	if err := f.b.Delete(ctx, b); err != nil {
		t.Fatalf("Delete(%q): %v", b, err)
	}
	if keys := f.listKeys(f.prefix); len(keys) != 0 {
		t.Errorf("List after deleting everything = %q", keys)
	}
	// The key can be written again.
	f.put(a, []byte("again"), backends.PutOptions{IfNotExists: true})
	f.wantContent(a, []byte("again"))
}

func testNotFound(t *testing.T, f *fixture) {
	ctx := context.Background()
	f.put(f.key("dir/object"), []byte("x"), backends.PutOptions{})
	for _, key := range []string{f.key("never-written"), f.key("dir"), f.key("dir/never-written"), f.key("never/written/deep")} {
		f.wantAbsent(key)
		if err := f.b.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of an absent key: %v, want nil", key, err)
		}
		wantErr(t, fmt.Sprintf("SetClass(%q)", key), f.b.SetClass(ctx, key, ""), backends.ErrNotFound)
	}
	f.wantContent(f.key("dir/object"), []byte("x"))
}

func testSetClass(t *testing.T, f *fixture) {
	key := f.key("classy")
	data := pattern(10, 1000)
	md := map[string]string{"kept": "yes"}
	f.put(key, data, backends.PutOptions{Metadata: md})
	if err := f.b.SetClass(context.Background(), key, ""); err != nil {
		t.Fatalf("SetClass(%q, default): %v", key, err)
	}
	f.wantContent(key, data)
	if st := f.stat(key); !sameMetadata(st.Metadata, md) {
		t.Errorf("metadata after SetClass = %v, want %v", st.Metadata, md)
	}
}

func testGetCancelled(t *testing.T, f *fixture) {
	key := f.key("read-cancelled")
	f.put(key, pattern(11, 1<<20), backends.PutOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	rc, err := f.b.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1)); err != nil {
		t.Fatalf("first read: %v", err)
	}
	cancel()
	if _, err := io.ReadAll(rc); err == nil {
		t.Errorf("reading on after ctx was cancelled returned the whole object, want an error")
	}

	rc, err = f.b.Get(ctx, key, 0, -1) // ctx is cancelled already
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if err == nil {
		t.Errorf("Get with a cancelled ctx returned the whole object, want an error")
	}
}

func testConcurrentKeys(t *testing.T, f *fixture) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 10 {
				key := f.key(fmt.Sprintf("w%02d/shared-dir/k%d", w%4, w*100+i))
				data := pattern(uint64(w*100+i), 1000+i)
				if _, err := f.b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), backends.PutOptions{}); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				rc, err := f.b.Get(ctx, key, 0, -1)
				if err != nil {
					t.Errorf("Get(%q): %v", key, err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("Get(%q) = %s, %v; want %s", key, describe(got), err, describe(data))
					return
				}
				if err := f.b.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%q): %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if keys := f.listKeys(f.prefix); len(keys) != 0 {
		t.Errorf("List after all deletes = %q", keys)
	}
}
