package client_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
)

// The walg vector key (testdata/walg/README.md).
const walgVectorKey = "ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d"

// benchSegments are the 16 MiB segments the fetch benchmark decodes:
// "pg15" is a real segment from the WAL-G vectors (PostgreSQL 15, mostly
// empty pages), "rows" is compressibleSegment (about 4:1, as WAL of row
// updates), and BENCH_WAL_SEGMENT may name any other segment file (one
// copied out of a busy cluster's pg_wal).
func benchSegments(b *testing.B) map[string][]byte {
	segs := map[string][]byte{"rows": compressibleSegment()}
	f, err := os.Open(filepath.Join("..", "testdata", "walg", "zstd-libsodium", "plain", "000000010000000000000007.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	if segs["pg15"], err = io.ReadAll(zr); err != nil {
		b.Fatal(err)
	}
	if p := os.Getenv("BENCH_WAL_SEGMENT"); p != "" {
		if segs["given"], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	return segs
}

// BenchmarkFetchDecode is what a wal-fetch does with the body of a 16 MiB
// segment stored with zstd and encryption: hash the received bytes,
// decrypt, decompress, compute the keyed content ID, write the plaintext
// to a new file, check the length, hash, content ID and plain size.
// cpu-ms/op is the process's user + system time per segment; walg-* cases
// decode the object stock WAL-G wrote (8 MiB zstd window).
func BenchmarkFetchDecode(b *testing.B) {
	key, err := codec.ParseKey(walgVectorKey, "hex")
	if err != nil {
		b.Fatal(err)
	}
	objects := map[string]fetchObject{}
	for name, seg := range benchSegments(b) {
		var stored bytes.Buffer
		w, err := codec.NewSegmentWriter(&stored, codec.Zstd, key, codec.LevelDefault)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(seg); err != nil || w.Close() != nil {
			b.Fatal(err)
		}
		objects[name] = expectObject(stored.Bytes(), seg, key)
	}
	walg, err := os.ReadFile(filepath.Join("..", "testdata", "walg", "zstd-libsodium", "archive", "wal_005", "000000010000000000000007.zst"))
	if err != nil {
		b.Fatal(err)
	}
	objects["walg-pg15"] = expectObject(walg, benchSegments(b)["pg15"], key)

	dir := b.TempDir()
	for name, o := range objects {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(16 << 20)
			b.ReportAllocs()
			before := cpuTime()
			for b.Loop() {
				f, err := os.CreateTemp(dir, "seg")
				if err != nil {
					b.Fatal(err)
				}
				err = client.DecodeWAL(bytes.NewReader(o.stored), int64(len(o.stored)), o.sha256, o.contentID, o.plainSize, codec.Zstd, []*codec.Key{key}, f)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
				os.Remove(f.Name())
			}
			b.ReportMetric(float64(cpuTime()-before)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(o.stored))/float64(16<<20), "stored/plain")
		})
	}
}

// fetchObject is a stored object and what the gateway says of it.
type fetchObject struct {
	stored            []byte
	sha256, contentID string
	plainSize         string
}

// expectObject is stored, the object of plain under key, with what the
// gateway would say of it.
func expectObject(stored, plain []byte, key *codec.Key) fetchObject {
	sum := sha256.Sum256(stored)
	cid := codec.NewContentID(key)
	cid.Write(plain)
	return fetchObject{stored: stored, sha256: hex.EncodeToString(sum[:]), contentID: cid.String(), plainSize: strconv.Itoa(len(plain))}
}

// cpuTime is the user + system time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
