package codec

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces what doc.go promises: the package imports nothing of
// walgate's and nothing that logs or reaches the file system, the
// network or the environment.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"bufio": true, "crypto/cipher": true, "crypto/hmac": true, "crypto/rand": true, "crypto/sha256": true,
		"crypto/subtle": true, "encoding/base64": true, "encoding/binary": true,
		"encoding/hex": true, "errors": true, "fmt": true, "hash": true, "io": true, "math/bits": true,
		"sync":                                 true,
		"github.com/cespare/xxhash/v2":         true,
		"github.com/andybalholm/brotli":        true,
		"github.com/klauspost/compress/zstd":   true,
		"github.com/pierrec/lz4/v4":            true,
		"github.com/ulikunitz/xz/lzma":         true,
		"golang.org/x/crypto/chacha20":         true,
		"golang.org/x/crypto/chacha20poly1305": true,
		"golang.org/x/crypto/poly1305":         true,
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
				t.Errorf("%s imports %s, which the codec must not use (see doc.go)", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
