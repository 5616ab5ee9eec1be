package basebackup

import (
	"strings"
	"testing"
)

// TestBackupNameDigits: every upper-case hex digit is accepted in both WAL
// file names of a backup name, and the characters next to the digit ranges
// ('/', ':', '@', 'G', and lower-case 'a' and 'f') in none of their places.
func TestBackupNameDigits(t *testing.T) {
	const digits = "0123456789ABCDEF"
	start := "00000001" + digits
	parent := digits + "00000002"
	for _, name := range []string{"base_" + start, "base_" + start + "_D_" + parent} {
		s, _, err := ParseBackupName(name)
		if err != nil || s != start {
			t.Errorf("ParseBackupName(%q) = %q, %v", name, s, err)
		}
	}
	for _, c := range []string{"/", ":", "@", "G", "a", "f", "`"} {
		for i := range walFileLen {
			bad := start[:i] + c + start[i+1:]
			for _, name := range []string{"base_" + bad, "base_" + start + "_D_" + bad} {
				if s, f, err := ParseBackupName(name); err == nil {
					t.Errorf("ParseBackupName(%q) accepted: %q %q", name, s, f)
				}
			}
		}
	}
	if _, err := DeltaBackupName(strings.Replace(start, "A", "a", 1), "base_"+parent); err == nil {
		t.Error("DeltaBackupName accepted a lower-case start")
	}
}
