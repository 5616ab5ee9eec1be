package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each entry is one JSON line in a 0600 file, and Tail gives the newest
// first.
func TestRecordAndTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Record(Entry{Token: "abc", Client: "127.0.0.1", Action: "token.add", Target: fmt.Sprint(i), Result: Result(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit.log mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(Path(dir))
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[0], `{"time":"`) {
		t.Fatalf("audit.log holds %q, want 5 JSON lines", b)
	}
	got, err := Tail(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Target != "4" || got[2].Target != "2" || got[0].Result != "ok" {
		t.Fatalf("Tail(3) = %+v, want targets 4, 3, 2", got)
	}
}

// Past MaxBytes the file is rotated: whole lines only, Keep files kept,
// the oldest dropped, and Tail reads across the files.
func TestRotationBySize(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{MaxBytes: 1000, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		if err := l.Record(Entry{Client: "local", Action: "token.revoke", Target: fmt.Sprintf("t%03d", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"audit.log", "audit.log.1", "audit.log.2"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) > 1000 || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s: %d bytes (want 1..1000, whole lines)", name, len(b))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.log.3")); !os.IsNotExist(err) {
		t.Errorf("audit.log.3 exists (Keep is 2): %v", err)
	}
	got, err := Tail(dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("Tail(20) across rotated files: %d entries", len(got))
	}
	for i, e := range got {
		if want := fmt.Sprintf("t%03d", n-1-i); e.Target != want {
			t.Fatalf("entry %d is %s, want %s", i, e.Target, want)
		}
	}
}

// A huge error message is clipped, so a line stays bounded.
func TestLongResultClipped(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Entry{Client: "local", Action: "backend.check", Result: strings.Repeat("x", 100000)}); err != nil {
		t.Fatal(err)
	}
	got, err := Tail(dir, 1)
	if err != nil || len(got) != 1 || len(got[0].Result) > maxField+3 {
		t.Fatalf("Tail: %v, %d entries", err, len(got))
	}
}
