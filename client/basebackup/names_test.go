package basebackup

import (
	"testing"

	"github.com/walgate/walgate/client/codec"
)

func TestParseBackupName(t *testing.T) {
	good := map[string][2]string{
		"base_000000010000000A00000030":                            {"000000010000000A00000030", ""},
		"base_000000010000000A00000050_D_000000010000000A00000030": {"000000010000000A00000050", "000000010000000A00000030"},
	}
	for name, want := range good {
		start, from, err := ParseBackupName(name)
		if err != nil || start != want[0] || from != want[1] {
			t.Errorf("ParseBackupName(%q) = %q, %q, %v", name, start, from, err)
		}
	}
	for _, bad := range []string{
		"", "base_", "base_000000010000000A0000003", "base_000000010000000a00000030",
		"base_000000010000000A000000300", "base_000000010000000A00000030_D_",
		"base_000000010000000A00000030_00000028", // WAL-E tail
		"base_000000010000000A00000030_D_000000010000000A00000030/x",
		"base_000000010000000A00000030/../x", "../base_000000010000000A00000030",
		"xbase_000000010000000A00000030", "base_000000010000000A00000030 ",
		"base_000000010000000A00000030_backup_stop_sentinel.json", "base_G00000010000000A00000030",
	} {
		if s, f, err := ParseBackupName(bad); err == nil {
			t.Errorf("ParseBackupName(%q) accepted: %q %q", bad, s, f)
		}
	}
	if got := BackupName("000000010000000A00000030"); got != "base_000000010000000A00000030" {
		t.Errorf("BackupName = %s", got)
	}
	if _, err := DeltaBackupName("000000010000000A00000050", "not-a-backup"); err == nil {
		t.Error("DeltaBackupName accepted a bad parent")
	}
	if _, err := DeltaBackupName("../x", "base_000000010000000A00000030"); err == nil {
		t.Error("DeltaBackupName accepted a bad start")
	}
	// The parent of a delta of a delta is named by its own start WAL file.
	got, err := DeltaBackupName("000000010000000A00000070", "base_000000010000000A00000050_D_000000010000000A00000030")
	if err != nil || got != "base_000000010000000A00000070_D_000000010000000A00000050" {
		t.Errorf("DeltaBackupName = %s, %v", got, err)
	}
}

func TestObjectNames(t *testing.T) {
	for _, c := range []struct {
		comp                 codec.Compression
		part, control, label string
	}{
		{codec.LZ4, "part_001.tar.lz4", "pg_control.tar.lz4", "backup_label.tar.lz4"},
		{codec.Zstd, "part_001.tar.zst", "pg_control.tar.zst", "backup_label.tar.zst"},
		{codec.None, "part_001.tar", "pg_control.tar", "backup_label.tar"},
	} {
		if p, ctl, l := PartObjectName(1, c.comp), PgControlObjectName(c.comp), LabelObjectName(c.comp); p != c.part || ctl != c.control || l != c.label {
			t.Errorf("%s: %s %s %s", c.comp, p, ctl, l)
		}
	}
	if got := PartObjectName(1234, codec.Brotli); got != "part_1234.tar.br" {
		t.Errorf("PartObjectName(1234) = %s", got)
	}
}
