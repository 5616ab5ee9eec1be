package basebackup

import (
	"testing"
)

func TestTablespaceMapRoundTrip(t *testing.T) {
	paths := [][2]string{{"16384", "/srv/ts one"}, {"16390", "/srv/odd\nname\\with\rbreaks"}, {"4294967295", "/x"}}
	var m string
	for _, p := range paths {
		m += TablespaceMapLine(p[0], p[1])
	}
	want := "16384 /srv/ts one\n16390 /srv/odd\\\nname\\\\with\\\rbreaks\n4294967295 /x\n"
	if m != want {
		t.Errorf("tablespace_map = %q, want %q", m, want)
	}
	got, err := ParseTablespaceMap([]byte(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(paths) {
		t.Fatalf("parsed %q, want %q", got, paths)
	}
	for i := range paths {
		if got[i] != paths[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], paths[i])
		}
	}
	for _, bad := range []string{"16384\n", "abc /x\n", "0 /x\n", "4294967296 /x\n", "16384 \n"} {
		if _, err := ParseTablespaceMap([]byte(bad)); err == nil {
			t.Errorf("ParseTablespaceMap(%q) accepted", bad)
		}
	}
	for s, want := range map[string]bool{"1": true, "16384": true, "4294967295": true, "0": false, "": false, "-1": false, " 1": false, "4294967296": false, "12345678901": false} {
		if IsOID(s) != want {
			t.Errorf("IsOID(%q) = %v", s, !want)
		}
	}
}
