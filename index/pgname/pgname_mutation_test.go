package pgname

import (
	"strings"
	"testing"
)

// TestParseWALFileEveryHexDigit: every upper-case hex digit, the ends of
// both ranges included, is part of a WAL name.
func TestParseWALFileEveryHexDigit(t *testing.T) {
	for _, name := range []string{"000000090000000900000099", "0000000F00000000000000F0", "00000019.history", "0123456789ABCDEF01234567"} {
		if _, err := ParseWALFile(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestParseHistoryEdges: a line without a reason is what PostgreSQL reads
// too; two timelines may switch at the same LSN (a promotion straight
// after another) but not share a parent; an error names its line.
func TestParseHistoryEdges(t *testing.T) {
	got, err := ParseHistory("1\t0/3000158\n2\t0/3000158\n", 3)
	if err != nil || len(got) != 2 || got[1] != (HistoryEntry{2, 0x3000158}) {
		t.Fatalf("history without reasons, one switch point twice: %+v %v", got, err)
	}
	for text, line := range map[string]string{
		"1\t0/1\tr\n\n1\t0/2\tr":         "line 3", // the same parent twice
		"# c\n1\t0/1\tr\nx\t0/2\tr":      "line 3", // not a timeline
		"# c\n1\t0/1\tr\n2\tnope\tr":     "line 3", // not an LSN
		"\n1\t0/1\tr\n2":                 "line 3", // one field
		"# c\n# d\n1\t0/1\tr\n3\t0/2\tr": "line 4", // parent not below the timeline
	} {
		if _, err := ParseHistory(text, 3); err == nil || !strings.Contains(err.Error(), line) {
			t.Errorf("ParseHistory(%q): %v, want an error naming %s", text, err, line)
		}
	}
}
