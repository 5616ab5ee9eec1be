package rebuild_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
)

// A long listing reports its progress every 10000 objects, and a
// rebuild with nothing to read says nothing about reading.
func TestRebuildListingProgress(t *testing.T) {
	s := newStore(t)
	// Objects put there by hand (no walgate metadata), outside the
	// layout: listed, counted as unknown, never read.
	dir := filepath.Join(s.root, "junk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const objects = 10001
	for i := range objects {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var progress bytes.Buffer
	sum := s.rebuild(&progress)
	if sum.Objects != objects || sum.Unknown != objects || sum.WAL != 0 {
		t.Fatalf("summary: %d objects, %d unknown, %d WAL", sum.Objects, sum.Unknown, sum.WAL)
	}
	out := progress.String()
	if n := strings.Count(out, "rebuild: listed "); n != 2 || !strings.Contains(out, "rebuild: listed 10000 objects\n") ||
		!strings.Contains(out, "rebuild: listed 10001 objects (0.0 MiB)\n") {
		t.Errorf("%d listing lines, want one at 10000 objects and one at the end:\n%s", n, out)
	}
	if strings.Contains(out, "rebuild: read") {
		t.Errorf("progress of reads with nothing to read:\n%s", out)
	}
}

// The previous catalog is kept under the name the summary gives even
// when the plain name is taken (a rebuild earlier in the same second):
// under a numbered name, and what was there before stays as it was.
func TestRebuildKeepsOldCatalogUnderATakenName(t *testing.T) {
	s := newStore(t)
	old, tok := s.catalogWithToken()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// Every name the rebuild can choose in the next five minutes.
	start := time.Now().UTC()
	for i := range 300 {
		taken := s.catalog + ".old-" + start.Add(time.Duration(i)*time.Second).Format("20060102T150405Z")
		if err := os.WriteFile(taken, []byte("not a catalog"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := rebuild.Run(context.Background(), s.be, "a", s.catalog, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sum.OldCatalog, s.catalog+".old-") || !strings.HasSuffix(sum.OldCatalog, "Z-2") || time.Since(start) >= 300*time.Second {
		t.Fatalf("previous catalog kept as %q after %v", sum.OldCatalog, time.Since(start))
	}
	for i := range 300 {
		taken := s.catalog + ".old-" + start.Add(time.Duration(i)*time.Second).Format("20060102T150405Z")
		if b, err := os.ReadFile(taken); err != nil || string(b) != "not a catalog" {
			t.Fatalf("%s, there before the rebuild, replaced: %q, %v", taken, b, err)
		}
	}
	kept, err := index.Open(sum.OldCatalog, time.Second)
	if err != nil {
		t.Fatalf("the previous catalog, kept as %s: %v", sum.OldCatalog, err)
	}
	defer kept.Close()
	if _, err := kept.LookupToken(protocol.TokenHash(tok)); err != nil {
		t.Errorf("the kept previous catalog: %v", err)
	}
	if _, err := s.open().LookupToken(protocol.TokenHash(tok)); err != nil || sum.TokensCarried != 1 {
		t.Errorf("the token after the rebuild (%d carried): %v", sum.TokensCarried, err)
	}
}
