package client_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// lockedBuffer collects the gateway's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// relPage is an 8 KiB heap page with LSN lsn, filled with fill.
func relPage(lsn uint64, fill byte, blkno uint32) []byte {
	p := make([]byte, basebackup.BlockSize)
	le := binary.LittleEndian
	le.PutUint32(p[0:4], uint32(lsn>>32))
	le.PutUint32(p[4:8], uint32(lsn))
	le.PutUint16(p[12:14], 40)
	le.PutUint16(p[14:16], 8000)
	le.PutUint16(p[16:18], basebackup.BlockSize)
	le.PutUint16(p[18:20], basebackup.BlockSize|0x04)
	for i := 8000; i < basebackup.BlockSize; i++ {
		p[i] = fill
	}
	le.PutUint16(p[8:10], basebackup.PageChecksum(p, blkno))
	return p
}

// TestChainFetchSkipsSupersededParts: restoring a delta fetches, of its
// parent, only the partitions holding something the delta does not hold
// whole. The full backup's part_001 holds only files the delta rewrote
// whole, so the gateway never serves it; its part_002 holds the copy of a
// relation the delta stores as an increment, and the restore is the
// delta's state byte for byte.
func TestChainFetchSkipsSupersededParts(t *testing.T) {
	ctx := context.Background()
	var log lockedBuffer
	g := gatewaytest.Start(t, gatewaytest.Options{Log: &log})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), map[string]string{
		"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	src := t.TempDir()
	write := func(member string, data []byte) basebackup.File {
		t.Helper()
		path := filepath.Join(src, member)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		mtime := time.Date(2026, 12, 1, 0, 0, len(data)%60, 0, time.UTC)
		os.Chtimes(path, mtime, mtime)
		return basebackup.File{Path: path, Member: member, Size: int64(len(data)), Mode: 0o600, ModTime: mtime}
	}
	tarOfFiles := func(files []basebackup.File, opts basebackup.TarOptions, fm *basebackup.FilesMetadata, object string) []byte {
		t.Helper()
		var buf bytes.Buffer
		res, err := basebackup.WriteTarWith(&buf, files, opts)
		if err != nil {
			t.Fatal(err)
		}
		fm.AddTar(object, res.Members, files)
		for m := range res.Incremented {
			d := fm.Files[m]
			d.IsIncremented = true
			fm.Files[m] = d
		}
		return buf.Bytes()
	}
	pages := func(lsn uint64, fill byte, n int) []byte {
		var out []byte
		for b := range n {
			out = append(out, relPage(lsn, fill+byte(b), uint32(b))...)
		}
		return out
	}
	const conf, vm, rel = "/postgresql.conf", "/base/1/2608_vm", "/base/1/16384"

	// The full backup: part_001 holds the two files the delta rewrites
	// whole, part_002 the relation.
	fullFM := basebackup.NewFilesMetadata()
	full1 := tarOfFiles([]basebackup.File{write(conf, []byte("shared_buffers = 128MB\n")), write(vm, bytes.Repeat([]byte{1}, 8192))}, basebackup.TarOptions{}, fullFM, "part_001.tar.zst")
	full2 := tarOfFiles([]basebackup.File{write(rel, pages(0x10, 1, 8))}, basebackup.TarOptions{}, fullFM, "part_002.tar.zst")
	fullMeta, _ := json.Marshal(fullFM)
	pushBackup(t, c, "base_000000010000000000000002", testBackup{
		rawParts: [][]byte{full1, full2}, control: []member{{"/global/pg_control", randBytes(t, 8192)}},
		label: "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n", meta: map[string][]byte{"files_metadata.json": fullMeta}})

	// The delta: both files of part_001 changed, pages 2 and 5 of the
	// relation changed.
	relNow := pages(0x10, 1, 8)
	copy(relNow[2*basebackup.BlockSize:], relPage(0x3000000, 77, 2))
	copy(relNow[5*basebackup.BlockSize:], relPage(0x3000000, 88, 5))
	deltaFM := basebackup.NewFilesMetadata()
	files := []basebackup.File{write(conf, []byte("shared_buffers = 1GB\n")), write(vm, bytes.Repeat([]byte{2}, 8192)), write(rel, relNow)}
	delta1 := tarOfFiles(files, basebackup.TarOptions{DeltaLSN: 0x2000028, Incremental: func(m string) bool { return true }}, deltaFM, "part_001.tar.zst")
	if !deltaFM.Files[rel].IsIncremented || deltaFM.Files[conf].IsIncremented {
		t.Fatalf("delta: %+v", deltaFM.Files)
	}
	deltaMeta, _ := json.Marshal(deltaFM)
	const deltaName = "base_000000010000000000000009_D_000000010000000000000002"
	pushBackup(t, c, deltaName, testBackup{
		rawParts: [][]byte{delta1}, control: []member{{"/global/pg_control", randBytes(t, 8192)}}, delta: true,
		label: "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\n", meta: map[string][]byte{"files_metadata.json": deltaMeta}})

	dir := filepath.Join(t.TempDir(), "pgdata")
	res, err := c.FetchBackup(ctx, deltaName, dir, client.RestoreOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chain) != 2 {
		t.Fatalf("chain %v", res.Chain)
	}
	for _, f := range files {
		want, _ := os.ReadFile(f.Path)
		if got, err := os.ReadFile(filepath.Join(dir, f.Member)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s restored as %d bytes (%v), want the delta's %d bytes", f.Member, len(got), err, len(want))
		}
	}
	gets := func(backup, part string) int {
		n := 0
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "msg=request") && strings.Contains(line, "method=GET") &&
				strings.Contains(line, "/"+backup+"/") && strings.Contains(line, "tar_partitions/"+part+" ") {
				n++
			}
		}
		return n
	}
	if n := gets(deltaName, "part_001.tar.zst"); n != 1 {
		t.Fatalf("the delta's part_001 was fetched %d times, want 1:\n%s", n, log.String())
	}
	if n := gets("base_000000010000000000000002", "part_002.tar.zst"); n != 1 {
		t.Fatalf("the full backup's part_002 (the relation's other pages) was fetched %d times, want 1", n)
	}
	if n := gets("base_000000010000000000000002", "part_001.tar.zst"); n != 0 {
		t.Fatalf("the full backup's part_001, all of it superseded by the delta, was fetched %d times", n)
	}
}

// A delta's metadata objects are read and checked as a full backup's are
// (TestBackupFetchChecksMetadata): one byte flipped in the delta's
// metadata.json, or in the files_metadata.json its chain is read from, is
// an integrity failure naming the object, and nothing is left.
func TestChainFetchChecksMetadata(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	const full, delta = "base_000000010000000000000002", "base_000000010000000000000004_D_000000010000000000000002"
	backup := func(conf, label string) testBackup {
		return testBackup{
			parts:   [][]member{{{"/PG_VERSION", []byte("15\n")}, {"/postgresql.conf", []byte(conf)}}},
			control: []member{{"/global/pg_control", randBytes(t, 8192)}},
			label:   label,
			meta: map[string][]byte{"files_metadata.json": []byte(`{"Files":{"/PG_VERSION":{},"/postgresql.conf":{}},` +
				`"TarFileSets":{"part_001.tar.zst":["/PG_VERSION","/postgresql.conf"]}}`)},
		}
	}
	pushBackup(t, c, full, backup("shared_buffers = 128MB\n", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"))
	d := backup("shared_buffers = 1GB\n", "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\n")
	d.delta = true
	d.meta["metadata.json"] = metadataJSON
	pushBackup(t, c, delta, d)
	root := t.TempDir()
	res, err := c.FetchBackup(context.Background(), delta, filepath.Join(root, "good"), client.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chain) != 2 {
		t.Fatalf("chain %v, want the delta and %s", res.Chain, full)
	}
	checkRestored(t, filepath.Join(root, "good"), d.files(), "")
	for _, object := range []string{"metadata.json", "files_metadata.json"} {
		wantDamageFound(t, c, delta, filepath.Join(g.Data, "store", "db", "basebackups_005", delta, object), filepath.Join(root, object))
	}
}
