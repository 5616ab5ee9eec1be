package codec

import (
	"bytes"
	"io"
	"testing"
)

var allLevels = []Level{LevelFastest, LevelDefault, LevelBetter, LevelBest}

func TestParseLevel(t *testing.T) {
	for _, l := range allLevels {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", l.String(), got, err, l)
		}
	}
	for _, bad := range []string{"", "Fastest", "3", "fast", "ultra"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) accepted", bad)
		}
	}
	var zero Level
	if zero != LevelDefault {
		t.Error("the zero Level is not LevelDefault")
	}
}

// TestLevelsRoundTrip: a segment written at every level, through each WAL
// and backup writer, and in two halves (EncodeSplit), is read back by the
// one reader, which knows nothing of levels; and the level reaches the
// encoder: fastest stores more than default, best less.
func TestLevelsRoundTrip(t *testing.T) {
	plain := pseudoWALBytes(11, 8<<20)
	sizes := map[Level]int{}
	for _, l := range allLevels {
		for _, key := range []*Key{nil, testKey(3)} {
			objects := map[string][]byte{}
			for name, newW := range map[string]func(*bytes.Buffer) (io.WriteCloser, error){
				"segment": func(b *bytes.Buffer) (io.WriteCloser, error) {
					return NewSegmentWriter(b, Zstd, key, l)
				},
				"bulk": func(b *bytes.Buffer) (io.WriteCloser, error) {
					return NewBulkWriter(b, Zstd, key, l)
				},
			} {
				var out bytes.Buffer
				w, err := newW(&out)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(plain); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				objects[name] = out.Bytes()
			}
			var split bytes.Buffer
			if _, err := EncodeSplit(&split, bytes.NewReader(plain), int64(len(plain)), key, l, nil); err != nil {
				t.Fatalf("%v: EncodeSplit: %v", l, err)
			}
			objects["split"] = split.Bytes()
			for name, obj := range objects {
				got, err := decode(obj, Zstd, key)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("level %v, %s writer, %s: decoded %d bytes, %v", l, name, keyName(key), len(got), err)
				}
			}
			if d := len(objects["split"]) - len(objects["segment"]); d > len(objects["segment"])/100+1024 {
				t.Errorf("level %v: split object %d bytes, one encoder's %d", l, len(objects["split"]), len(objects["segment"]))
			}
			if key == nil {
				sizes[l] = len(objects["segment"])
			}
		}
	}
	t.Logf("stored bytes of %d plain by level: %v", len(plain), sizes)
	if !(sizes[LevelFastest] > sizes[LevelDefault] && sizes[LevelDefault] > sizes[LevelBest]) {
		t.Errorf("the level does not reach the encoder: sizes %v", sizes)
	}
}
