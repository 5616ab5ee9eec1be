package pgtest

import (
	"strings"
	"testing"
)

// An unknown major and a missing server build are errors that say what
// to do; 15 is Debian's.
func TestServerFor(t *testing.T) {
	if _, err := ServerFor(12); err == nil || !strings.Contains(err.Error(), "not a supported major") {
		t.Fatalf("ServerFor(12): %v", err)
	}
	t.Setenv("WALGATE_TOOLS", t.TempDir())
	if _, err := ServerFor(17); err == nil || !strings.Contains(err.Error(), "STEPS=pgmajors .ci/install-deps.sh") {
		t.Fatalf("ServerFor(17) without the build: %v", err)
	}
	s, err := ServerFor(0)
	if err != nil || s.Major != 15 || s.BinDir != BinDir || s.LibDir != "" {
		t.Fatalf("ServerFor(0) = %+v, %v; want Debian's PostgreSQL 15", s, err)
	}
}
