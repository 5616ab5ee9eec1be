package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// walAnswer is what a stub gateway answers to a WAL fetch.
type walAnswer struct {
	body      []byte
	sha       string
	contentID string
	plainSize string
}

// goodAnswer encodes plain as the gateway would serve it.
func goodAnswer(t *testing.T, plain []byte) walAnswer {
	t.Helper()
	cid := codec.NewContentID(nil)
	cid.Write(plain)
	body := encode(t, plain, nil)
	sum := sha256.Sum256(body)
	return walAnswer{body: body, sha: hex.EncodeToString(sum[:]), contentID: cid.String(), plainSize: strconv.Itoa(len(plain))}
}

// stubGateway serves answers[i] to the i-th WAL fetch (the last one from
// then on) and counts the fetches.
func stubGateway(t *testing.T, answers ...walAnswer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[min(int(n.Add(1))-1, len(answers)-1)]
		h := w.Header()
		h.Set(protocol.HeaderContentSHA256, a.sha)
		h.Set(protocol.HeaderCompression, string(codec.Zstd))
		h.Set(protocol.HeaderEncryption, protocol.EncryptionNone)
		h.Set(protocol.HeaderContentID, a.contentID)
		h.Set(protocol.HeaderPlainSize, a.plainSize)
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.Write(a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// watchAbsent fails the test if path exists at any moment until the
// returned stop is called.
func watchAbsent(t *testing.T, path string) (stop func()) {
	t.Helper()
	var seen atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, err := os.Lstat(path); err == nil {
				seen.Store(true)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Microsecond):
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if _, err := os.Lstat(path); err == nil || seen.Load() {
			t.Fatalf("%s appeared, although the fetched file failed its checks", path)
		}
	}
}

// Bodies that decode cleanly but do not match what was archived (wrong
// SHA-256, content identity or plain size, bytes after the encoded stream)
// are refused, and %p never appears, not even for a moment.
func TestFetchWALChecksBeforeRename(t *testing.T) {
	t.Parallel()
	plain := walLike(t, 1<<20)
	good := goodAnswer(t, plain)
	other := goodAnswer(t, walLike(t, 1<<20))
	trailing := good
	trailing.body = append(slices.Clone(good.body), "trailing"...)
	sum := sha256.Sum256(trailing.body)
	trailing.sha = hex.EncodeToString(sum[:])
	for name, bad := range map[string]walAnswer{
		"wrong SHA-256":     {body: good.body, sha: other.sha, contentID: good.contentID, plainSize: good.plainSize},
		"wrong content ID":  {body: good.body, sha: good.sha, contentID: other.contentID, plainSize: good.plainSize},
		"wrong plain size":  {body: good.body, sha: good.sha, contentID: good.contentID, plainSize: strconv.Itoa(len(plain) + 1)},
		"trailing bytes":    trailing,
		"another's content": {body: other.body, sha: other.sha, contentID: good.contentID, plainSize: good.plainSize},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, fetches := stubGateway(t, bad)
			c := newClient(t, srv.URL, "wgt1.main."+string(bytes.Repeat([]byte("A"), 43)), nil)
			dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
			stop := watchAbsent(t, dest)
			err := c.FetchWAL(context.Background(), "000000010000000000000001", dest)
			stop()
			wantKind(t, name, err, client.ErrIntegrity)
			if n := fetches.Load(); n != 3 {
				t.Fatalf("%d fetches of a damaged object, want 3 (the gateway may fail over twice)", n)
			}
			assertDirHolds(t, filepath.Dir(dest))
		})
	}
}

// A copy that fails its check is fetched again, even with WALGATE_RETRIES
// 0: the gateway serves another store's copy on the next request.
func TestFetchWALFailsOver(t *testing.T) {
	t.Parallel()
	plain := walLike(t, 1<<20)
	good := goodAnswer(t, plain)
	damaged := good
	damaged.body = slices.Clone(good.body)
	damaged.body[len(damaged.body)/2] ^= 1
	srv, fetches := stubGateway(t, damaged, good)
	c := newClient(t, srv.URL, "wgt1.main."+string(bytes.Repeat([]byte("A"), 43)), nil)
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	if err := c.FetchWAL(context.Background(), "000000010000000000000001", dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, plain) || fetches.Load() != 2 {
		t.Fatalf("restored %d bytes after %d fetches", len(got), fetches.Load())
	}
}

// A 404 from the catalog is "not archived" at once, without retries; a
// gateway error is not.
func TestFetchWALNotFoundIsFinal(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"code":"not_found","message":"not archived"}}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "wgt1.main."+string(bytes.Repeat([]byte("A"), 43)), map[string]string{"WALGATE_RETRIES": "3"})
	err := c.FetchWAL(context.Background(), "000000010000000000000001", filepath.Join(t.TempDir(), "x"))
	if !errors.Is(err, client.ErrNotFound) || n.Load() != 1 {
		t.Fatalf("err %v after %d requests, want not archived after one", err, n.Load())
	}
}

// backup-fetch flushes the restored data (syncfs of the data directory and
// of every tablespace location) before it writes backup_label, and
// pg_control after backup_label: a crash in between never leaves a
// cluster PostgreSQL would start from with data still in the page cache.
func TestBackupFetchFlushOrder(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	root := t.TempDir()
	ts := filepath.Join(root, "ts")
	pushBackup(t, c, fetchName, standardBackup(t, ts))
	dir := filepath.Join(root, "pgdata")
	var (
		mu  sync.Mutex
		ops []string
	)
	opts := client.RestoreOptions{Fsync: true, Concurrency: 2}
	client.RecordFileOps(&opts, func(op, path string) {
		mu.Lock()
		ops = append(ops, op+" "+path)
		mu.Unlock()
	})
	if _, err := c.FetchBackup(context.Background(), fetchName, dir, opts); err != nil {
		t.Fatal(err)
	}
	at := func(op string) int {
		i := slices.Index(ops, op)
		if i < 0 {
			t.Fatalf("no %q among the restore's steps: %q", op, ops)
		}
		return i
	}
	label, control := at("write "+filepath.Join(dir, "backup_label")), at("write "+filepath.Join(dir, "global", "pg_control"))
	for _, d := range []string{dir, ts} {
		if at("syncfs "+d) > label {
			t.Fatalf("backup_label written before the syncfs of %s: %q", d, ops)
		}
	}
	if at("write "+filepath.Join(dir, "tablespace_map")) > label || label > control {
		t.Fatalf("want tablespace_map, backup_label, then pg_control: %q", ops)
	}
	// Last, the data directory's own entry and its parent's, so that the
	// new directory and its pg_control survive a crash.
	if d, p := at("fsync "+dir), at("fsync "+root); d < control || p < d {
		t.Fatalf("want pg_control, then an fsync of %s, then of %s: %q", dir, root, ops)
	}
}

// metadataJSON is a backup's metadata.json as the tests store it.
var metadataJSON = []byte(`{"start_lsn":67108904,"finish_lsn":67108960}`)

// pushedWithMetadata starts a gateway and stores as fetchName, through a
// client with push and fetch, standardBackup with a metadata.json and a
// files_metadata.json beside its tars.
func pushedWithMetadata(t *testing.T) (*gatewaytest.Gateway, *client.Client, testBackup) {
	t.Helper()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	b := standardBackup(t, "")
	b.meta = map[string][]byte{
		"metadata.json":       metadataJSON,
		"files_metadata.json": []byte(`{"Files":{"base/1/1259":{"IsIncremented":false,"IsSkipped":false}}}`),
	}
	pushBackup(t, c, fetchName, b)
	return g, c, b
}

// A restore interrupted after the backup's label and metadata objects are
// read and checked, before any data partition starts, fails as
// interrupted: no partition is fetched, backup_label and pg_control are
// never written (not even to be removed), and nothing is left.
func TestBackupFetchInterruptedBeforeParts(t *testing.T) {
	t.Parallel()
	_, c, b := pushedWithMetadata(t)
	dir := filepath.Join(t.TempDir(), "pgdata")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		ops  []string
		meta int
	)
	opts := client.RestoreOptions{Fsync: true, Concurrency: 1}
	client.RecordFileOps(&opts, func(op, path string) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op+" "+path)
		if op == "fetched" && !strings.Contains(path, "/tar_partitions/") {
			if meta++; meta == len(b.meta) {
				cancel() // the last metadata object is in: the partitions are next
			}
		}
	})
	_, err := c.FetchBackup(ctx, fetchName, dir, opts)
	e := wantKind(t, "interrupted before the partitions", err, client.ErrUnavailable)
	if !errors.Is(err, context.Canceled) || e.Op != "backup-fetch "+fetchName || e.Message != "interrupted" {
		t.Fatalf("want %q interrupted by the cancellation: %v (%+v)", "backup-fetch "+fetchName, err, e)
	}
	mu.Lock()
	defer mu.Unlock()
	if meta != len(b.meta) {
		t.Fatalf("%d metadata objects fetched, want %d: %q", meta, len(b.meta), ops)
	}
	for _, op := range ops {
		if !strings.HasPrefix(op, "fetched ") || strings.Contains(op, "/part_") || strings.Contains(op, "pg_control") {
			t.Fatalf("%q after the interruption; the restore's steps: %q", op, ops)
		}
	}
	absent(t, dir)
}

// A restore reads and checks the backup's metadata objects too: one byte
// flipped in files_metadata.json is an integrity failure, and nothing is
// left in the directory.
func TestBackupFetchChecksMetadata(t *testing.T) {
	t.Parallel()
	g, c, _ := pushedWithMetadata(t)
	root := t.TempDir()
	res, err := c.FetchBackup(context.Background(), fetchName, filepath.Join(root, "good"), client.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 6 {
		t.Fatalf("%d objects fetched, want 6 (4 tars and 2 metadata objects)", res.Objects)
	}
	for _, object := range []string{"files_metadata.json", "metadata.json"} {
		wantDamageFound(t, c, fetchName, filepath.Join(g.Data, "store", "db", "basebackups_005", fetchName, object), filepath.Join(root, object))
	}
}

// wantDamageFound flips a byte of the stored object at path, checks that
// restoring the backup name into dir fails with an integrity error naming
// the object and leaves no dir, and undoes the damage.
func wantDamageFound(t *testing.T, c *client.Client, name, path, dir string) {
	t.Helper()
	object := filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.FetchBackup(context.Background(), name, dir, client.RestoreOptions{})
	if e := wantKind(t, object+" damaged", err, client.ErrIntegrity); !strings.Contains(e.Error(), object) {
		t.Fatalf("the failure does not name %s: %v", object, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the failed restore left %s (%v)", dir, err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Damage in the small objects a restore reads first and last (the
// backup_label and pg_control tars) is an integrity failure like damage in
// a data partition, not a broken transfer; nothing is left behind.
func TestBackupFetchDamagedLabelAndControl(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	pushBackup(t, c, fetchName, standardBackup(t, ""))
	root := t.TempDir()
	for _, object := range []string{"backup_label.tar.zst", "pg_control.tar.zst"} {
		wantDamageFound(t, c, fetchName, filepath.Join(g.Data, "store", "db", "basebackups_005", fetchName, "tar_partitions", object), filepath.Join(root, object))
	}
}
