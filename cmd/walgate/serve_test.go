package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cpu-profile writes a gzipped pprof profile once stopped, and a path
// that cannot be created stops the start with the flag's name.
func TestServeCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.prof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile is not a gzipped pprof file: % x", b[:min(len(b), 8)])
	}
	_, errOut, code := runWalgate("serve", "--data", t.TempDir(), "--cpu-profile", filepath.Join(t.TempDir(), "missing", "x.prof"))
	if code != 1 || !strings.Contains(errOut, "--cpu-profile") {
		t.Fatalf("unwritable --cpu-profile: exit %d: %s", code, errOut)
	}
}
