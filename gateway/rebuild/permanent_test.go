package rebuild_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

const cluster = "db"

func walName(seg uint64) string { return fmt.Sprintf("00000001%016X", seg) }

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A permanent backup stays permanent through a catalog rebuild, and
// retention after the rebuild does not delete it, though it is older
// than the newest full backup it keeps; a non-permanent one as old is
// deleted by the same run.
func TestRebuildKeepsPermanentBackups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Config{Data: dir,
		Backends: []config.BackendConfig{{Name: "a", Type: "fs", Path: filepath.Join(dir, "store")}},
		Groups:   []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"a"}, Lifecycle: lifecycle.Policy{RetainFull: 1}}}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	be, err := all.Open(ctx, cfg.Backends[0])
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte, md map[string]string) {
		t.Helper()
		if _, err := be.Put(ctx, key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	for seg := uint64(1); seg <= 9; seg++ {
		body := []byte("segment " + walName(seg))
		o := layout.WALObject{Cluster: cluster, Name: walName(seg), SHA256: hexSHA(body), ContentID: "sha256:" + hexSHA(body),
			PlainSize: int64(len(body)), Compression: "none", Encryption: "none"}
		put(cluster+"/"+layout.WALDir+"/"+walName(seg), body, o.Metadata())
	}
	t0 := time.Now().Add(-3 * time.Hour).UTC()
	backupsAt := map[string]bool{} // name: permanent
	backup := func(seg uint64, permanent bool, finish time.Time) string {
		name := "base_" + walName(seg)
		prefix := cluster + "/" + layout.BackupDir + "/" + name
		for _, f := range []string{"tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst", "metadata.json"} {
			comp := layout.FileCompression(f)
			put(prefix+"/"+f, []byte(name+" "+f), layout.BackupFileMetadata(cluster, name, f, comp, "none"))
		}
		lsn, finishLSN := seg<<24|0x28, seg<<24|0x1000
		s, err := json.Marshal(layout.Sentinel{LSN: &lsn, FinishLSN: &finishLSN, StartTime: finish.Add(-time.Minute), FinishTime: finish,
			IsPermanent: permanent})
		if err != nil {
			t.Fatal(err)
		}
		put(prefix+layout.SentinelSuffix, s, layout.SentinelMetadata(cluster, name))
		backupsAt[name] = permanent
		return name
	}
	perm := backup(2, true, t0)
	old := backup(4, false, t0.Add(time.Hour))
	newest := backup(7, false, t0.Add(2*time.Hour))
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}

	// The rebuild.
	catalogPath := config.CatalogPath(dir)
	be, err = all.Open(ctx, cfg.Backends[0])
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rebuild.Run(ctx, be, "a", catalogPath, nil)
	be.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.FullBackups != 3 || sum.WAL != 9 {
		t.Fatalf("rebuild summary: %+v", sum)
	}
	set, cat := gatewaytest.OpenStores(t, cfg, catalogPath, nil)
	for name, permanent := range backupsAt {
		b, err := cat.Backup(cluster, name)
		if err != nil {
			t.Fatal(err)
		}
		if b.Info.Permanent != permanent {
			t.Errorf("after the rebuild, backup %s is cataloged with permanent %v, its sentinel says %v", name, b.Info.Permanent, permanent)
		}
	}

	// Retention over the rebuilt catalog.
	lb, err := set.LifecycleBackends()
	if err != nil {
		t.Fatal(err)
	}
	exec := apply.New(apply.Config{Catalog: cat, Stores: set, Backends: lb,
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})
	res, err := exec.Run(ctx, apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Refusals) != 0 || res.Done.Failures != 0 {
		t.Fatalf("retention run: refusals %+v, done %+v", res.Plan.Refusals, res.Done)
	}
	if !slices.Equal(res.Done.BackupsDeleted, []string{old}) {
		t.Errorf("retention deleted %v, want only %s", res.Done.BackupsDeleted, old)
	}
	if _, err := cat.Backup(cluster, old); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("%s (not permanent, not the newest) is still cataloged: %v", old, err)
	}
	for _, name := range []string{perm, newest} {
		b, err := cat.Backup(cluster, name)
		if err != nil {
			t.Errorf("retention after a rebuild deleted %s: %v", name, err)
			continue
		}
		store, _ := set.Backend("a")
		for _, key := range append([]string{b.SentinelKey}, b.Files["tar_partitions/part_001.tar.zst"].Key) {
			if _, err := store.Stat(ctx, key); err != nil {
				t.Errorf("%s: %s is gone from the store: %v", name, key, err)
			}
		}
	}
	// The permanent backup's own WAL stays restorable.
	if _, err := cat.WAL(cluster, walName(2)); err != nil {
		t.Errorf("WAL %s of the permanent backup: %v", walName(2), err)
	}
}
