package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseDiff(t *testing.T) {
	diff := `diff --git a/a.go b/a.go
index 1..2 100644
--- a/a.go
+++ b/a.go
@@ -3 +3 @@ func A() {
-	return 1
+	return 2
@@ -10,2 +10,0 @@
-x
-y
@@ -20,0 +19,3 @@
+a
+b
+c
diff --git a/gone.go b/gone.go
--- a/gone.go
+++ /dev/null
@@ -1,2 +0,0 @@
-package m
-
`
	got, err := parseDiff([]byte(diff))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int]bool{"a.go": {3: true, 19: true, 20: true, 21: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseDiff([]byte("+++ b/a.go\n@@ -1 +x @@\n")); err == nil {
		t.Error("a bad hunk header accepted")
	}
}

// changedLines names files relative to the package directory, as the
// dry run names mutants' files, and sees uncommitted changes.
func TestChangedLines(t *testing.T) {
	root := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	pkg := filepath.Join(root, "p")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p/m.go", "package p\n\nfunc A() int { return 1 }\n\nfunc B() int { return 2 }\n")
	write("other.go", "package other\n")
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "base")
	write("p/m.go", "package p\n\nfunc A() int { return 1 }\n\nfunc B() int { return 3 }\n\nfunc C() int { return 4 }\n")
	write("other.go", "package other\n\nvar X = 1\n")
	got, err := changedLines(pkg, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int]bool{"m.go": {5: true, 6: true, 7: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := changedLines(pkg, "no-such-commit"); err == nil {
		t.Error("an unknown commit accepted")
	}
}
