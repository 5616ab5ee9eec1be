package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// TestLevelsReadAlike: a segment pushed at each WALGATE_COMPRESSION_LEVEL,
// alone (both cores) and beside pushes ahead (one core), is restored by a
// client that leaves the level unset, and the other way round: the level
// changes the bytes stored, never who can read them.
func TestLevelsReadAlike(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	seg := compressibleSegment()
	tok := g.Token("levels", "push", "fetch")
	key := map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"}
	reader := newClient(t, g.URL, tok, key)
	if reader.Level() != client.DefaultLevel {
		t.Fatalf("level %v without WALGATE_COMPRESSION_LEVEL, want %v", reader.Level(), client.DefaultLevel)
	}
	src, dst := t.TempDir(), t.TempDir()
	seq := 0
	sizes := map[string]int64{}
	for _, level := range []string{"fastest", "default", "better", "best"} {
		env := map[string]string{"WALGATE_COMPRESSION_LEVEL": level}
		for k, v := range key {
			env[k] = v
		}
		writer := newClient(t, g.URL, tok, env)
		if want, _ := codec.ParseLevel(level); writer.Level() != want {
			t.Fatalf("WALGATE_COMPRESSION_LEVEL=%s read as %v", level, writer.Level())
		}
		for _, split := range []bool{true, false} {
			seq++
			name := "0000000100000000000000" + string("0123456789ABCDEF"[seq/16]) + string("0123456789ABCDEF"[seq%16])
			p := writeFile(t, src, name, seg)
			res, err := writer.PushWALAlone(context.Background(), p, split)
			if err != nil || res.Status != "stored" {
				t.Fatalf("level %s: push %s: %+v, %v", level, name, res, err)
			}
			sizes[level] = res.Size
			for _, fetcher := range []*client.Client{reader, writer} {
				dest := filepath.Join(dst, "RECOVERYXLOG")
				if err := fetcher.FetchWAL(context.Background(), name, dest); err != nil {
					t.Fatalf("level %s: fetch %s: %v", level, name, err)
				}
				if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, seg) {
					t.Fatalf("level %s: %s restored differs (%v)", level, name, err)
				}
			}
		}
	}
	t.Logf("stored bytes of one 16 MiB segment by level: %v", sizes)
	if sizes["fastest"] == sizes["default"] || sizes["best"] >= sizes["default"] {
		t.Errorf("the level does not reach the encoder: %v", sizes)
	}
}

// compressibleSegment is 16 MiB that compresses as WAL of row updates does,
// about 4:1: row-like lines with a counter and a hash each.
func compressibleSegment() []byte {
	seg := make([]byte, 0, 16<<20)
	for i := 0; len(seg) < 16<<20; i++ {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		seg = fmt.Appendf(seg, "aid=%08d bid=%d abalance=%d filler=%x\n", i, i/100000, i%997, sum[:6])
	}
	return seg[:16<<20]
}
