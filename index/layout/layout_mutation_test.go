package layout

import (
	"testing"
	"time"
)

// TestSentinelCheckNeedsEachField: a sentinel without its start LSN, its
// finish LSN or its finish time cannot place the backup in the WAL, so it
// is never cataloged, whichever of them is missing.
func TestSentinelCheckNeedsEachField(t *testing.T) {
	lsn, finish := uint64(0x3000028), uint64(0x3000100)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := Sentinel{LSN: &lsn, FinishLSN: &finish, FinishTime: at}
	if err := full.Check(); err != nil {
		t.Fatalf("complete sentinel refused: %v", err)
	}
	for name, s := range map[string]Sentinel{
		"no LSN":         {FinishLSN: &finish, FinishTime: at},
		"no FinishLSN":   {LSN: &lsn, FinishTime: at},
		"no FinishTime":  {LSN: &lsn, FinishLSN: &finish},
		"nothing at all": {},
	} {
		if err := s.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBackupTimelineOfShortNames: the timeline is the first 8 hex digits
// after the prefix; a name with fewer says none.
func TestBackupTimelineOfShortNames(t *testing.T) {
	for name, want := range map[string]uint32{
		"base_00000002":                          2,
		"base_0000000A0000000000000004":          10,
		"base_0000000A0000000000000004_D_000000": 10,
		"base_0000002":                           0,
		"base_":                                  0,
		"00000002":                               0,
		"base_zzzzzzzz":                          0,
	} {
		if got := BackupTimeline(name); got != want {
			t.Errorf("BackupTimeline(%q) = %d, want %d", name, got, want)
		}
	}
}
