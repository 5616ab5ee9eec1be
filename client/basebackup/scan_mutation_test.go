package basebackup

import "testing"

// TestRelationNameDigits: relfilenodes of 10 digits (up to 2^32-1) and with
// the digits 0 and 9 are relation files; a temporary relation's backend
// number and relfilenode take every digit too.
func TestRelationNameDigits(t *testing.T) {
	for _, c := range []struct {
		name, rel, fork string
	}{
		{"4294967295", "4294967295", "main"},
		{"4294967295_vm.90", "4294967295", "vm"},
		{"9", "9", "main"},
		{"90_fsm", "90", "fsm"},
		{"1.0", "1", "main"},
	} {
		rel, fork, ok := parseRelationFile(c.name)
		if !ok || rel != c.rel || fork != c.fork {
			t.Errorf("parseRelationFile(%q) = %q, %q, %v", c.name, rel, fork, ok)
		}
	}
	for _, name := range []string{"t90_4294967295", "t9_90_init.9", "t0_0"} {
		if !looksLikeTempRelation(name) {
			t.Errorf("looksLikeTempRelation(%q) = false", name)
		}
	}
	for _, name := range []string{"t9", "t99", "t9x_1", "x9_1"} {
		if looksLikeTempRelation(name) {
			t.Errorf("looksLikeTempRelation(%q) = true", name)
		}
	}
	for rel, want := range map[string]bool{
		"base/90":                         true,
		"base/0":                          true,
		"base/9a":                         false,
		"base/":                           false,
		"pg_tblspc/16500/PG_15_1/90":      true,
		"pg_tblspc/16500/15_1/90":         false,
		"pg_tblspc/16500/PG_15_1/90/x":    false,
		"base":                            false,
		"global":                          false,
		"pg_tblspc/16500/PG_15_1/:":       false,
		"pg_tblspc/16500/PG_15_1/1234567": true,
	} {
		if got := isDatabaseDir(rel); got != want {
			t.Errorf("isDatabaseDir(%q) = %v, want %v", rel, got, want)
		}
	}
}
