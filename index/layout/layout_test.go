package layout

import (
	"maps"
	"testing"
)

// The layout is what lies in the stores: these names must never change.
func TestKeys(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{WALKey("db", "000000010000000000000003", CompressionZstd), "db/wal_005/000000010000000000000003.zst"},
		{WALKey("db", "00000002.history", CompressionBrotli), "db/wal_005/00000002.history.br"},
		{WALKey("db", "000000010000000000000003", CompressionNone), "db/wal_005/000000010000000000000003"},
		{BackupKey("db", "base_000000010000000000000004", "tar_partitions/part_001.tar.lz4"), "db/basebackups_005/base_000000010000000000000004/tar_partitions/part_001.tar.lz4"},
		{SentinelKey("db", "base_000000010000000000000004"), "db/basebackups_005/base_000000010000000000000004_backup_stop_sentinel.json"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}

func TestCompressions(t *testing.T) {
	for comp, ext := range map[string]string{CompressionZstd: ".zst", CompressionLZ4: ".lz4", CompressionBrotli: ".br", CompressionLZMA: ".lzma", CompressionNone: "", "gzip": ""} {
		if got := Ext(comp); got != ext {
			t.Errorf("Ext(%s) = %q, want %q", comp, got, ext)
		}
		if ext == "" {
			continue
		}
		if got, ok := CompressionOfExt(ext[1:]); !ok || got != comp {
			t.Errorf("CompressionOfExt(%s) = %s, %v", ext[1:], got, ok)
		}
	}
	if _, ok := CompressionOfExt("gz"); ok {
		t.Error("gz taken as a compression")
	}
	for comp, ok := range map[string]bool{CompressionZstd: true, CompressionLZ4: true, CompressionBrotli: true, CompressionNone: true, CompressionLZMA: false, "": false, "gzip": false} {
		if PushCompression(comp) != ok {
			t.Errorf("PushCompression(%q) = %v", comp, !ok)
		}
	}
	for file, comp := range map[string]string{"tar_partitions/part_001.tar.zst": CompressionZstd, "tar_partitions/pg_control.tar.lzma": CompressionLZMA,
		"tar_partitions/part_002.tar": CompressionNone, "metadata.json": CompressionNone, "tar_partitions/backup_label.tar.br": CompressionBrotli} {
		if got := FileCompression(file); got != comp {
			t.Errorf("FileCompression(%s) = %s, want %s", file, got, comp)
		}
	}
}

func TestBackupNames(t *testing.T) {
	if !IsBackupName("base_000000010000000000000004") || IsBackupName("000000010000000000000004") {
		t.Error("IsBackupName")
	}
	for name, tli := range map[string]uint32{"base_0000000A0000000000000004": 10, "base_000000020000000000000004_D_000000020000000000000002": 2, "base_": 0, "x": 0, "base_zzzzzzzz0000000000000004": 0} {
		if got := BackupTimeline(name); got != tli {
			t.Errorf("BackupTimeline(%s) = %d, want %d", name, got, tli)
		}
	}
}

// The metadata stored with each object is what a rebuild reads back.
func TestMetadata(t *testing.T) {
	got := WALObject{Cluster: "db", Name: "00000002.history", SHA256: "ab", ContentID: "sha256:cd", PlainSize: 41,
		Compression: CompressionZstd, Encryption: "none", TimelineParent: 1, SwitchLSN: "0/3000000"}.Metadata()
	want := map[string]string{"cluster": "db", "kind": "wal", "name": "00000002.history", "sha256": "ab", "content-id": "sha256:cd",
		"plain-size": "41", "compression": "zstd", "encryption": "none", "timeline-parent": "1", "switch-lsn": "0/3000000"}
	if !maps.Equal(got, want) {
		t.Errorf("WAL metadata %v, want %v", got, want)
	}
	if md := (WALObject{Cluster: "db", Name: "000000010000000000000001"}).Metadata(); md[MetaTimelineParent] != "" || md[MetaSwitchLSN] != "" {
		t.Errorf("a segment's metadata names a timeline parent: %v", md)
	}
	if got := BackupFileMetadata("db", "base_1", "metadata.json", "none", "none"); !maps.Equal(got, map[string]string{"cluster": "db", "kind": "backup",
		"name": "base_1", "file": "metadata.json", "compression": "none", "encryption": "none"}) {
		t.Errorf("backup object metadata %v", got)
	}
	if got := SentinelMetadata("db", "base_1"); !maps.Equal(got, map[string]string{"cluster": "db", "kind": "backup-sentinel", "name": "base_1"}) {
		t.Errorf("sentinel metadata %v", got)
	}
}

func TestSentinel(t *testing.T) {
	var s Sentinel
	if s.Check() == nil {
		t.Error("an empty sentinel passes")
	}
	if s.Kind() != "full" {
		t.Error("no DeltaFrom: not full")
	}
	s.DeltaFrom = "base_x"
	if s.Kind() != "delta" {
		t.Error("DeltaFrom: not a delta")
	}
	if f, ok := FindFile(map[string]int{"tar_partitions/pg_control.tar.zst": 1, "metadata.json": 2}, ControlFile); !ok || f != "tar_partitions/pg_control.tar.zst" {
		t.Errorf("FindFile = %s, %v", f, ok)
	}
}
