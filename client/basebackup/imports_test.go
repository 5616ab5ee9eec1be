package basebackup

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces doc.go: no network, no logging, nothing of walgate's
// but client/codec and index/layout.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"archive/tar": true, "bytes": true, "encoding/binary": true, "encoding/json": true, "errors": true, "fmt": true,
		"io": true, "io/fs": true, "os": true, "path": true, "path/filepath": true, "sort": true, "strconv": true, "strings": true, "sync": true,
		"time": true, "github.com/walgate/walgate/client/codec": true,
		// The page scan of a delta: workers, and its cancellation.
		"context": true, "sync/atomic": true, "math/bits": true,
		"github.com/walgate/walgate/index/layout": true,
		// sync_file_range, to start a restored file's disk write early
		// (writeback_linux.go).
		"golang.org/x/sys/unix": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %s, which basebackup must not use (see doc.go)", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
