package rebuild_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// What a rebuild catalogs is what the store holds: a backup with a
// damaged object is not cataloged as restorable, and a WAL object whose
// walgate metadata names another file is described from its own bytes,
// not from that metadata.
func TestRebuildRecordsWhatTheStoreHolds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bc := config.BackendConfig{Name: "a", Type: "fs", Path: filepath.Join(dir, "store")}
	be, err := all.Open(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	put := func(key string, body []byte, md map[string]string) {
		t.Helper()
		if _, err := be.Put(ctx, key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	// Two backups; one tar partition of the second, written without
	// walgate metadata, is neither a zstd stream nor an encrypted object.
	finish := time.Now().Add(-time.Hour).UTC()
	backup := func(seg uint64, damaged bool) string {
		name := "base_" + walName(seg)
		prefix := cluster + "/" + layout.BackupDir + "/" + name
		for _, f := range []string{"tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst", "metadata.json"} {
			if damaged && f == "tar_partitions/part_001.tar.zst" {
				put(prefix+"/"+f, []byte("not a zst"), nil)
				continue
			}
			put(prefix+"/"+f, []byte(name+" "+f), layout.BackupFileMetadata(cluster, name, f, layout.FileCompression(f), "none"))
		}
		lsn, finishLSN := seg<<24|0x28, seg<<24|0x1000
		s, _ := json.Marshal(layout.Sentinel{LSN: &lsn, FinishLSN: &finishLSN, FinishTime: finish})
		put(prefix+layout.SentinelSuffix, s, layout.SentinelMetadata(cluster, name))
		return name
	}
	good, bad := backup(2, false), backup(4, true)

	// WAL 1 with its metadata; WAL 2's bytes carry WAL 1's metadata.
	seg1 := bytes.Repeat([]byte{1}, 1024)
	seg2 := bytes.Repeat([]byte{2}, 1024)
	md1 := layout.WALObject{Cluster: cluster, Name: walName(1), SHA256: hexSHA(seg1), ContentID: "sha256:" + hexSHA(seg1),
		PlainSize: int64(len(seg1)), Compression: "none", Encryption: "none"}.Metadata()
	put(cluster+"/"+layout.WALDir+"/"+walName(1), seg1, md1)
	put(cluster+"/"+layout.WALDir+"/"+walName(2), seg2, md1)

	catalogPath := config.CatalogPath(dir)
	sum, err := rebuild.Run(ctx, be, "a", catalogPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := index.Open(catalogPath, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()

	if _, err := cat.Backup(cluster, good); err != nil {
		t.Errorf("the intact backup: %v", err)
	}
	if b, err := cat.Backup(cluster, bad); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("a backup with a damaged object is cataloged (files %v): %v", b.Files, err)
	}
	// Only the damaged partition lacks walgate metadata.
	if sum.FullBackups != 1 || sum.Incomplete != 1 || sum.Damaged != 1 || sum.Foreign != 1 {
		t.Errorf("summary: %d full, %d incomplete, %d damaged, %d without metadata; want 1, 1, 1, 1", sum.FullBackups, sum.Incomplete, sum.Damaged, sum.Foreign)
	}

	for name, body := range map[string][]byte{walName(1): seg1, walName(2): seg2} {
		rec, err := cat.WAL(cluster, name)
		if err != nil {
			t.Errorf("WAL %s: %v", name, err)
			continue
		}
		if rec.SHA256 != hexSHA(body) || rec.ContentID != "sha256:"+hexSHA(body) || rec.Size != int64(len(body)) {
			t.Errorf("WAL %s is cataloged as %s %s (%d bytes); its bytes are %s", name, rec.SHA256, rec.ContentID, rec.Size, hexSHA(body))
		}
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
}
