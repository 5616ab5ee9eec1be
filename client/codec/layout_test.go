package codec

import (
	"testing"

	"github.com/walgate/walgate/index/layout"
)

// TestSameVocabularyAsLayout: the codec names compression methods and
// their object extensions itself, so that it stays a leaf the client and
// the rebuild share without importing anything of walgate's; index/layout
// names them for the gateway and the catalog, which must not link the
// compression libraries. The two lists are one vocabulary: this test keeps
// them equal, method by method, both ways.
func TestSameVocabularyAsLayout(t *testing.T) {
	methods := map[Compression]string{
		Zstd: layout.CompressionZstd, LZ4: layout.CompressionLZ4, Brotli: layout.CompressionBrotli,
		LZMA: layout.CompressionLZMA, None: layout.CompressionNone,
	}
	for c, name := range methods {
		if string(c) != name {
			t.Errorf("codec calls %q what layout calls %q", c, name)
		}
		want := ""
		if c.Ext() != "" {
			want = "." + c.Ext()
		}
		if got := layout.Ext(name); got != want {
			t.Errorf("%s: layout's extension %q, codec's %q", c, got, want)
		}
		if c.Ext() == "" {
			continue
		}
		back, ok := layout.CompressionOfExt(c.Ext())
		if !ok || back != name {
			t.Errorf("extension %q: layout reads %q (%v), codec writes %s", c.Ext(), back, ok, c)
		}
		if got, err := CompressionFromExt(c.Ext()); err != nil || got != c {
			t.Errorf("extension %q: codec reads %q (%v)", c.Ext(), got, err)
		}
		_, perr := ParseCompression(name)
		if (perr == nil) != layout.PushCompression(name) {
			t.Errorf("%s: codec writes it: %v; layout accepts a push of it: %v", c, perr == nil, layout.PushCompression(name))
		}
	}
	for _, ext := range []string{"zst", "lz4", "br", "lzma", "gz", "tar", "ZST"} {
		_, lok := layout.CompressionOfExt(ext)
		_, cerr := CompressionFromExt(ext)
		if lok != (cerr == nil) {
			t.Errorf("extension %q: layout knows it: %v; codec knows it: %v", ext, lok, cerr == nil)
		}
	}
}
