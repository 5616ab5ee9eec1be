package client

import (
	"strings"
	"testing"
)

// Every supported major passes; one before, one after and a pre-10
// version number are refused, each saying what to do.
func TestCheckPgVersion(t *testing.T) {
	for _, v := range []int{130023, 140023, 150018, 160014, 170010, 180004} {
		if err := checkPgVersion(v); err != nil {
			t.Errorf("%d: %v", v, err)
		}
	}
	for v, want := range map[int]string{
		120022: "PostgreSQL 12 is not supported: walgate backs up PostgreSQL 13 to 18",
		190000: "PostgreSQL 19 is newer than this walgate-client knows (PostgreSQL 13 to 18): upgrade walgate-client",
		90624:  "PostgreSQL version 90624 is not supported",
	} {
		err := checkPgVersion(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d: got %v, want %q", v, err, want)
		}
	}
	if err := checkRestoreMajor(190001, ""); err == nil || !strings.Contains(err.Error(), "upgrade walgate-client to restore it") {
		t.Errorf("restore of a PostgreSQL 19 backup: %v", err)
	}
	if err := checkRestoreMajor(0, ""); err != nil {
		t.Errorf("restore of a backup whose sentinel has no PgVersion: %v", err)
	}
}

// Each major gets the backup functions it has: 13 and 14 the
// non-exclusive pg_start_backup/pg_stop_backup, 15 and later
// pg_backup_start/pg_backup_stop.
func TestBackupFunctionsPerMajor(t *testing.T) {
	for major, want := range map[int][2]string{
		13: {"pg_start_backup($1, true, false)", "pg_stop_backup(false, false)"},
		14: {"pg_start_backup($1, true, false)", "pg_stop_backup(false, false)"},
		15: {"pg_backup_start($1, true)", "pg_backup_stop(false)"},
		18: {"pg_backup_start($1, true)", "pg_backup_stop(false)"},
	} {
		if s := backupStartSQL(major); !strings.Contains(s, want[0]) {
			t.Errorf("%d: start %s", major, s)
		}
		if s := backupStopSQL(major); !strings.Contains(s, want[1]) {
			t.Errorf("%d: stop %s", major, s)
		}
	}
}
