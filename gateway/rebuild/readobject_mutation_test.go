package rebuild_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// zeros is a zstd frame of n bytes of zeros made of RLE blocks (RFC 8878,
// 3.1.1.2): a segment of 1 GiB in 32 KiB, decoded without compressing it
// first.
func zeros(n int64) []byte {
	const maxBlock = 128 << 10
	// Magic; frame header: no content size, no checksum; a 128 KiB window.
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38}
	for n > 0 {
		size := min(n, maxBlock)
		n -= size
		hdr := uint32(size)<<3 | 1<<1 // block type 1: RLE
		if n == 0 {
			hdr |= 1 // the last block
		}
		out = append(out, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return out
}

// PostgreSQL's largest WAL segment is 1 GiB (wal_segment_size=1GB): a
// WAL-G object that decodes to exactly that is cataloged with its whole
// plaintext's size and content ID; one that decodes to a byte more is
// not a WAL segment, and is counted as damaged.
func TestRebuildLargestSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 2 GiB")
	}
	// SHA-256 of 1 GiB of zeros (head -c 1073741824 /dev/zero | sha256sum).
	const gibZeros = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"
	s := newStore(t)
	wal := func(seg uint64) string { return cluster + "/" + layout.WALDir + "/" + walName(seg) + ".zst" }
	mod := time.Now().Add(-time.Hour).Truncate(time.Second)
	whole := zeros(1 << 30)
	s.put(wal(1), whole, nil, mod)
	s.put(wal(2), zeros(1<<30+1), nil, mod)

	sum := s.rebuild(nil)
	cat := s.open()
	r, err := cat.WAL(cluster, walName(1))
	if err != nil || r.PlainSize != 1<<30 || r.ContentID != "sha256:"+gibZeros || r.Size != int64(len(whole)) || r.SHA256 != hexSHA(whole) {
		t.Errorf("a segment of 1 GiB: %+v %v", r, err)
	}
	if _, err := cat.WAL(cluster, walName(2)); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("an object decoding to 1 GiB and a byte was cataloged: %v", err)
	}
	if !hasNote(sum, wal(2), "decodes to more than 1 GiB") || sum.WAL != 1 || sum.Damaged != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// A brotli tar partition is the one compressed object rebuild decodes
// (brotli has no magic number): one that decodes to a full 512-byte block
// that is not a tar header keeps its backup out of the catalog; one that
// decodes to a tar is cataloged.
func TestRebuildBrotliPartitionMustBeATar(t *testing.T) {
	s := newStore(t)
	notTar := encode(t, bytes.Repeat([]byte("not a tar "), 100), codec.Brotli)
	if codec.EncryptedSizePossible(int64(len(notTar))) {
		t.Fatalf("%d bytes could be a libsodium object", len(notTar))
	}
	ctl := encode(t, tarWith(t, "global/pg_control", bytes.Repeat([]byte{1}, 512)), codec.Zstd)
	backup := func(seg uint64, part []byte) string {
		name := "base_" + walName(seg)
		prefix := cluster + "/" + layout.BackupDir + "/" + name
		s.put(prefix+"/tar_partitions/part_001.tar.br", part, nil, time.Time{})
		s.put(prefix+"/tar_partitions/pg_control.tar.zst", ctl, nil, time.Time{})
		s.put(prefix+layout.SentinelSuffix, sentinelJSON(t, seg, layout.Sentinel{}), nil, time.Time{})
		return name
	}
	bad := backup(2, notTar)
	good := backup(4, encode(t, tarWith(t, "base/1/1", bytes.Repeat([]byte{2}, 1024)), codec.Brotli))

	sum := s.rebuild(nil)
	cat := s.open()
	if _, err := cat.Backup(cluster, bad); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("a backup whose brotli partition is no tar was cataloged: %v", err)
	}
	if b, err := cat.Backup(cluster, good); err != nil || b.Files["tar_partitions/part_001.tar.br"].Encryption != "none" {
		t.Errorf("backup %s: %+v %v", good, b, err)
	}
	if !hasNote(sum, bad+"/tar_partitions/part_001.tar.br", "neither a brotli stream") || sum.Damaged != 1 || sum.FullBackups != 1 || sum.Incomplete != 1 {
		t.Errorf("summary %+v", sum)
	}
}
