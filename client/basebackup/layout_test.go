package basebackup

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/index/layout"
)

// TestSentinelAsTheCatalogReadsIt: the gateway catalogs a backup from
// the sentinel the client writes, through index/layout's Sentinel (the
// fields it keeps, by WAL-G's names). Every one of them must arrive.
func TestSentinelAsTheCatalogReadsIt(t *testing.T) {
	tli, sysID := uint32(2), uint64(7390000000000000001)
	delta := LSN(0x3000028)
	start := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	s := Sentinel{
		LSN: 0x5000028, FinishLSN: 0x5000100, Timeline: &tli, DeltaLSN: &delta,
		DeltaFrom: "base_000000020000000000000003", DeltaFullName: "base_000000010000000000000002", DeltaCount: 2,
		StartTime: start, FinishTime: start.Add(time.Minute), UncompressedSize: 123456789,
		PgVersion: 150018, SystemIdentifier: &sysID, Hostname: "db1", IsPermanent: true,
		Version: SentinelVersion, DateFmt: DateFmt,
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got layout.Sentinel
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("layout.Sentinel does not read %s: %v", b, err)
	}
	if err := got.Check(); err != nil {
		t.Fatal(err)
	}
	if *got.LSN != uint64(s.LSN) || *got.FinishLSN != uint64(s.FinishLSN) || got.DeltaFrom != s.DeltaFrom ||
		got.DeltaFullName != s.DeltaFullName || got.DeltaCount != s.DeltaCount || !got.StartTime.Equal(s.StartTime) ||
		!got.FinishTime.Equal(s.FinishTime) || got.UncompressedSize != s.UncompressedSize || got.PgVersion != s.PgVersion ||
		got.SystemIdentifier != sysID || got.Hostname != s.Hostname || !got.IsPermanent || got.Kind() != "delta" {
		t.Errorf("the catalog reads %+v from %s", got, b)
	}
}

// TestObjectNamesAsTheGatewayNamesThem: the names the client gives a
// backup's objects are those index/layout gives the gateway.
func TestObjectNamesAsTheGatewayNamesThem(t *testing.T) {
	name := BackupName("000000010000000000000004")
	if !layout.IsBackupName(name) || layout.BackupTimeline(name) != 1 {
		t.Errorf("%s is not a backup name on timeline 1 to the gateway", name)
	}
	if got, want := layout.SentinelKey("db", name), "db/"+layout.BackupDir+"/"+SentinelObjectName(name); got != want {
		t.Errorf("sentinel key %s, the client's %s", got, want)
	}
	for _, c := range []codec.Compression{codec.None, codec.Zstd, codec.LZ4, codec.Brotli} {
		file := TarFolder + "/" + PgControlObjectName(c)
		if f, ok := layout.FindFile(map[string]bool{file: true}, layout.ControlFile); !ok || f != file {
			t.Errorf("the gateway does not find pg_control in %s", file)
		}
		if got := layout.FileCompression(file); got != string(c) {
			t.Errorf("%s: the gateway reads compression %q", file, got)
		}
	}
}
