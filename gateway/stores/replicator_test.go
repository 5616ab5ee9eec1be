package stores_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

const testCluster = "db"

// openSet opens a catalog and a Set over fs backends named names (one
// group over all of them, the first the primary) with the given ack
// policy. Nothing runs until the caller starts the replicator.
func openSet(t *testing.T, ack string, names ...string) (*stores.Set, *index.Catalog) {
	set, cat, _ := openFaultySet(t, ack, names...)
	return set, cat
}

// openFaultySet is openSet with each backend behind a fault switch.
func openFaultySet(t *testing.T, ack string, names ...string) (*stores.Set, *index.Catalog, map[string]*backendtest.Faulty) {
	t.Helper()
	return openFaultySetWith(t, config.ReplicationConfig{RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}, ack, names...)
}

// openFaultySetWith is openFaultySet with the given replication settings.
func openFaultySetWith(t *testing.T, repl config.ReplicationConfig, ack string, names ...string) (*stores.Set, *index.Catalog, map[string]*backendtest.Faulty) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{Data: dir, Replication: repl}
	for _, n := range names {
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: filepath.Join(dir, "store-"+n)})
	}
	cfg.Groups = []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: names, Ack: ack}}
	faults := map[string]*backendtest.Faulty{}
	set, cat := gatewaytest.OpenStores(t, cfg, config.CatalogPath(dir), func(name string, b backends.Backend) backends.Backend {
		faults[name] = backendtest.NewFaulty(b)
		return faults[name]
	})
	return set, cat, faults
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// walObject is a WAL record for body as a push would catalog it.
func walObject(name string, body []byte) index.WALObject {
	return index.WALObject{Name: name, Key: testCluster + "/wal_005/" + name, Size: int64(len(body)), SHA256: hexSHA(body),
		ContentID: "sha256:" + hexSHA(body), PlainSize: int64(len(body)), Compression: "none", Encryption: "none", StoredAt: time.Now()}
}

// pushWAL writes body through the Set as a push does (the group's ack
// set) and catalogs it with copies queued to the group's other backends.
func pushWAL(t *testing.T, set *stores.Set, cat *index.Catalog, name string, body []byte) index.WALObject {
	t.Helper()
	g, err := set.GroupFor(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	obj := walObject(name, body)
	w, err := set.PutObject(context.Background(), g, obj.Key, bytes.NewReader(body), obj.Size,
		backends.PutOptions{Metadata: stores.WALMetadata(testCluster, obj)})
	if err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	obj.Backend, obj.Backends = w.Held[0], w.Held
	var copies []index.Copy
	for _, b := range w.Missing {
		cp := stores.WALCopy(testCluster, obj)
		cp.Backend = b
		copies = append(copies, cp)
	}
	if _, _, err := cat.AddWALCopies(testCluster, obj, copies); err != nil {
		t.Fatal(err)
	}
	return obj
}

// readAll reads key from the named backend.
func readAll(t *testing.T, set *stores.Set, backend, key string) []byte {
	t.Helper()
	be, ok := set.Backend(backend)
	if !ok {
		t.Fatalf("no backend %s", backend)
	}
	rc, err := be.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("%s: reading %s: %v", backend, key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putRaw(t *testing.T, set *stores.Set, backend, key string, body []byte, md map[string]string) {
	t.Helper()
	be, _ := set.Backend(backend)
	if _, err := be.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

// An object already at a replica's key counts as the copy only when its
// size and SHA-256 are the catalog's: a stale object of other content
// (left by a crash, an earlier push that was never acknowledged, a hand
// copy) is replaced, never recorded as the replica's copy.
func TestReplicatorReplacesStaleObject(t *testing.T) {
	set, cat := openSet(t, "primary", "a", "b")
	body := bytes.Repeat([]byte("the acknowledged segment "), 4000)
	other := bytes.Repeat([]byte("a stale segment, other bytes "), 4000)[:len(body)] // same size
	cases := []struct {
		name  string
		stale []byte
		md    func(obj index.WALObject) map[string]string
	}{
		{"other size, no metadata", other[:len(other)/2], func(index.WALObject) map[string]string { return nil }},
		{"same size, no metadata", other, func(index.WALObject) map[string]string { return nil }},
		{"same size, metadata of its own bytes", other, func(obj index.WALObject) map[string]string {
			o := obj
			o.SHA256 = hexSHA(other)
			return stores.WALMetadata(testCluster, o)
		}},
		{"other size, metadata claiming the cataloged hash", other[:len(other)-1], func(obj index.WALObject) map[string]string {
			return stores.WALMetadata(testCluster, obj)
		}},
	}
	var objs []index.WALObject
	for i, c := range cases {
		name := fmt.Sprintf("00000001%016X", i+1)
		obj := walObject(name, body)
		putRaw(t, set, "b", obj.Key, c.stale, c.md(obj))
		objs = append(objs, pushWAL(t, set, cat, name, body))
	}
	set.Start()
	gatewaytest.WaitReplicated(t, set, 30*time.Second)
	for i, c := range cases {
		obj := objs[i]
		if got := readAll(t, set, "b", obj.Key); !bytes.Equal(got, body) {
			t.Errorf("%s: the replica holds %d bytes (SHA-256 %s), not the acknowledged object (%d bytes, %s)",
				c.name, len(got), hexSHA(got), len(body), obj.SHA256)
		}
		be, _ := set.Backend("b")
		info, err := be.Stat(context.Background(), obj.Key)
		if err != nil || info.Metadata["sha256"] != obj.SHA256 {
			t.Errorf("%s: the replica's metadata: %v %v", c.name, info.Metadata, err)
		}
		rec, err := cat.WAL(testCluster, obj.Name)
		if err != nil || !slices.Contains(rec.Holders(), "b") {
			t.Errorf("%s: the catalog does not list the replica after the copy: %+v %v", c.name, rec.Holders(), err)
		}
	}
}

// A damaged source is never copied: the replica gets no object made of
// the damaged bytes, the catalog does not list it as a holder, and with no
// good copy anywhere the object is reported lost.
func TestReplicatorNeverCopiesDamagedSource(t *testing.T) {
	set, cat := openSet(t, "primary", "a", "b")
	body := bytes.Repeat([]byte("the acknowledged segment "), 4000)
	obj := pushWAL(t, set, cat, "000000010000000000000001", body)
	damaged := bytes.Clone(body)
	damaged[len(damaged)/2] ^= 0xff
	putRaw(t, set, "a", obj.Key, damaged, stores.WALMetadata(testCluster, obj))
	set.Start()
	lostOn := func(backend string) bool {
		for _, cp := range set.LostObjects() {
			if cp.Backend == backend && cp.Key == obj.Key {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for !lostOn("b") {
		st, err := set.BackendsStatus()
		if err != nil {
			t.Fatal(err)
		}
		if st[1].PendingObjects == 0 {
			break // copied: checked below
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy was neither made nor reported lost: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	be, _ := set.Backend("b")
	if _, err := be.Stat(context.Background(), obj.Key); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("the replica holds an object made from a damaged source: %v", err)
	}
	rec, err := cat.WAL(testCluster, obj.Name)
	if err != nil || slices.Contains(rec.Holders(), "b") {
		t.Errorf("the catalog lists the replica as a holder: %+v %v", rec.Holders(), err)
	}
	if !lostOn("b") {
		t.Errorf("the copy to b is not reported lost: %+v", set.LostObjects())
	}
}

// A replica shows a backup only when all its parts are there: while one
// part's copy keeps failing, the sentinel is not copied.
func TestReplicatorSentinelWaitsForEveryPart(t *testing.T) {
	set, cat, faults := openFaultySet(t, "primary", "a", "b")
	ctx := context.Background()
	name := "base_000000010000000000000002"
	prefix := testCluster + "/basebackups_005/" + name
	b := index.Backup{Name: name, State: index.BackupCommitted, Backend: "a", Files: map[string]index.BackupFile{}}
	for _, f := range []string{"metadata.json", "tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst"} {
		body := bytes.Repeat([]byte(f), 1000)
		key := prefix + "/" + f
		putRaw(t, set, "a", key, body, nil)
		b.Files[f] = index.BackupFile{Key: key, Size: int64(len(body)), SHA256: hexSHA(body), Compression: "zstd", Encryption: "none"}
	}
	sentinel := []byte(`{"LSN":33554472,"FinishLSN":33558528,"FinishTime":"2026-01-01T00:00:00Z"}`)
	b.SentinelKey, b.SentinelSize = prefix+"_backup_stop_sentinel.json", int64(len(sentinel))
	putRaw(t, set, "a", b.SentinelKey, sentinel, nil)
	if err := cat.BeginBackup(testCluster, b); err != nil {
		t.Fatal(err)
	}
	g, err := set.GroupFor(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Enqueue(stores.BackupCopies(g, b, stores.SentinelCopy(testCluster, b))); err != nil {
		t.Fatal(err)
	}
	part := b.Files["tar_partitions/part_001.tar.zst"].Key
	faults["b"].FailKey(part, 6)
	be, _ := set.Backend("b")
	exists := func(key string) bool {
		_, err := be.Stat(ctx, key)
		return err == nil
	}
	set.Start()
	deadline := time.Now().Add(20 * time.Second)
	for !exists(part) || !exists(b.SentinelKey) {
		if exists(b.SentinelKey) && !exists(part) {
			t.Fatal("the replica shows the backup's sentinel while one of its parts is missing")
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup was not replicated")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The replicator claims what it copies, and a stopping gateway releases
// the claims of the copies it did not finish, without counting them as
// failed attempts: another gateway of a fleet takes them at once instead
// of after the claim lease.
func TestReplicatorReleasesClaimsWhenStopped(t *testing.T) {
	set, cat, faults := openFaultySet(t, "primary", "a", "b")
	faults["b"].SetLatency(time.Hour) // every copy to b hangs until the stop
	for i := range 3 {
		pushWAL(t, set, cat, fmt.Sprintf("00000001000000000000000%d", i+1), []byte(fmt.Sprintf("segment %d", i)))
	}
	set.Owner = "gateway-1"
	set.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := cat.Pending("b", 0)
		if err != nil {
			t.Fatal(err)
		}
		claimed := 0
		for _, cp := range q {
			if cp.ClaimedBy == "gateway-1" {
				claimed++
			}
		}
		if claimed == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicator claimed %d of 3 copies: %+v", claimed, q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := cat.Pending("b", 0)
	if err != nil || len(q) != 3 {
		t.Fatalf("queue after the stop: %+v %v", q, err)
	}
	for _, cp := range q {
		if cp.ClaimedBy != "" || cp.Attempts != 0 {
			t.Errorf("%s after the stop: claimed by %q, %d attempts; want released, no attempt counted", cp.Name, cp.ClaimedBy, cp.Attempts)
		}
	}
	if got, _, err := cat.ClaimCopies("b", "gateway-2", 10, time.Minute); err != nil || len(got) != 3 {
		t.Fatalf("another gateway claims %d of the released copies (%v)", len(got), err)
	}
}
