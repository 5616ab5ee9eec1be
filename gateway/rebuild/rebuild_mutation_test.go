package rebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// store is an fs backend for a rebuild test, with the catalog path it
// rebuilds.
type store struct {
	t       *testing.T
	root    string
	be      *fs.Backend
	catalog string
}

func newStore(t *testing.T) *store {
	t.Helper()
	root, data := t.TempDir(), t.TempDir()
	be, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return &store{t: t, root: root, be: be, catalog: config.CatalogPath(data)}
}

// put stores body at key with metadata md, last modified at mod (zero:
// now).
func (s *store) put(key string, body []byte, md map[string]string, mod time.Time) {
	s.t.Helper()
	if _, err := s.be.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{Metadata: md}); err != nil {
		s.t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(filepath.Join(s.root, key), mod, mod); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *store) rebuild(progress io.Writer) rebuild.Summary {
	s.t.Helper()
	sum, err := rebuild.Run(context.Background(), s.be, "a", s.catalog, progress)
	if err != nil {
		s.t.Fatal(err)
	}
	return sum
}

func (s *store) open() *index.Catalog {
	s.t.Helper()
	cat, err := index.Open(s.catalog, time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cat.Close() })
	return cat
}

// catalogWithToken creates the catalog with one push token of cluster,
// and returns it open with the token.
func (s *store) catalogWithToken() (*index.Catalog, string) {
	s.t.Helper()
	tok, err := protocol.NewToken(cluster)
	if err != nil {
		s.t.Fatal(err)
	}
	cat, err := index.Open(s.catalog, time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cat.AddToken(protocol.TokenHash(tok), index.Token{ID: protocol.TokenID(tok), Cluster: cluster,
		Scopes: []index.Scope{index.ScopePush}, Created: time.Now().UTC()}); err != nil {
		s.t.Fatal(err)
	}
	return cat, tok
}

func encode(t *testing.T, plain []byte, comp codec.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarWith(t *testing.T, name string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sentinelJSON(t *testing.T, seg uint64, sf layout.Sentinel) []byte {
	t.Helper()
	lsn, finish := seg<<24|0x28, seg<<24|0x1000
	sf.LSN, sf.FinishLSN = &lsn, &finish
	if sf.FinishTime.IsZero() {
		sf.FinishTime = time.Now().Add(-time.Hour).UTC()
	}
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hasNote(sum rebuild.Summary, parts ...string) bool {
	return slices.ContainsFunc(sum.Notes, func(n string) bool {
		for _, p := range parts {
			if !strings.Contains(n, p) {
				return false
			}
		}
		return true
	})
}

// The printed summary: the totals, the backups split into full and
// delta, the encrypted WAL without metadata only when there is some,
// where the previous catalog went, and every note.
func TestSummaryPrint(t *testing.T) {
	sum := rebuild.Summary{Backend: "a", Objects: 12, Bytes: 3 << 20, Clusters: 2, WAL: 5, FullBackups: 1, DeltaBackups: 2,
		ForeignEncrypted: 4, Incomplete: 6, Foreign: 7, Damaged: 8, Unknown: 9, TokensCarried: 10, DrillsCarried: 11,
		OldCatalog: "/data/catalog.db.old-x", Notes: []string{"first", "second"}}
	var out bytes.Buffer
	sum.Print(&out)
	got := out.String()
	for _, want := range []string{"catalog rebuilt from backend a: 12 objects, 3.0 MiB\n", "clusters  ", "WAL files  ",
		"  5  4 encrypted without walgate metadata", "  3  1 full, 2 delta\n", "  6  no sentinel", "  7  objects written by WAL-G",
		"  8  not cataloged", "  9  not walgate's layout", "  10\n", "  11\n",
		"previous catalog kept as /data/catalog.db.old-x\n", "note: first\nnote: second\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary lacks %q:\n%s", want, got)
		}
	}
	sum.ForeignEncrypted, sum.OldCatalog, sum.Notes = 0, "", nil
	out.Reset()
	sum.Print(&out)
	if got := out.String(); strings.Contains(got, "encrypted") || strings.Contains(got, "previous catalog") || strings.Contains(got, "note:") {
		t.Errorf("with nothing encrypted, no previous catalog and no notes:\n%s", got)
	}
}

// Notes are bounded (the counts stay exact) and sorted; progress goes
// to the writer given: the listing, and the objects read, at most every
// 2 seconds and at the end.
func TestRebuildNotesBoundedAndProgress(t *testing.T) {
	s := newStore(t)
	for i := range 55 {
		s.put(fmt.Sprintf("junk/%02d", i), []byte("x"), nil, time.Time{})
	}
	const reads = 20
	for i := range reads { // read: no metadata
		s.put(cluster+"/"+layout.WALDir+"/"+walName(uint64(i+1)), bytes.Repeat([]byte{byte(i)}, 4096), nil, time.Time{})
	}
	var progress bytes.Buffer
	sum := s.rebuild(&progress)
	if sum.Unknown != 55 || sum.WAL != reads || sum.Objects != 55+reads || sum.Bytes != 55+reads*4096 {
		t.Fatalf("summary %+v", sum)
	}
	if len(sum.Notes) != 51 || sum.Notes[50] != "... and 5 more notes" || !slices.IsSorted(sum.Notes[:50]) {
		t.Fatalf("%d notes: %q", len(sum.Notes), sum.Notes)
	}
	out := progress.String()
	// The first read is reported at once, the last at the end.
	for _, want := range []string{"rebuild: listing backend a\n", "rebuild: reading 20 objects", "rebuild: read 1 of 20 objects\n", "rebuild: read 20 of 20 objects\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "rebuild: listed "); n != 1 || !strings.Contains(out, "rebuild: listed 75 objects (0.1 MiB)") {
		t.Errorf("%d listing lines, want one for the 75 objects:\n%s", n, out)
	}
	if n := strings.Count(out, "rebuild: read "); n >= reads {
		t.Errorf("%d progress lines for %d quick reads:\n%s", n, reads, out)
	}
}

// A catalog locked by a running gateway, or one that cannot be read,
// is not replaced.
func TestRebuildRefusesCatalog(t *testing.T) {
	s := newStore(t)
	s.put(cluster+"/"+layout.WALDir+"/"+walName(1), bytes.Repeat([]byte{1}, 1024), nil, time.Time{})
	held, err := index.Open(s.catalog, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rebuild.Run(context.Background(), s.be, "a", s.catalog, nil)
	held.Close()
	if !errors.Is(err, rebuild.ErrCatalogInUse) {
		t.Errorf("a rebuild with the catalog in use: %v", err)
	}
	junk := []byte("a file the DBA must decide about")
	if err := os.WriteFile(s.catalog, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rebuild.Run(context.Background(), s.be, "a", s.catalog, nil); err == nil || !strings.Contains(err.Error(), "move the file away") {
		t.Errorf("a rebuild over an unreadable catalog: %v", err)
	}
	if got, _ := os.ReadFile(s.catalog); !bytes.Equal(got, junk) {
		t.Error("the unreadable catalog was changed")
	}
	if left, _ := filepath.Glob(s.catalog + ".*"); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

// What lives only in the catalog (tokens, drill reports) is carried over
// from the previous catalog, which is kept beside the new one; a
// leftover of an interrupted rebuild is replaced.
func TestRebuildCarriesOver(t *testing.T) {
	s := newStore(t)
	body := bytes.Repeat([]byte{1}, 1024)
	s.put(cluster+"/"+layout.WALDir+"/"+walName(1), body, nil, time.Time{})
	old, tok := s.catalogWithToken()
	drill := index.DrillRecord{Received: time.Now().UTC().Truncate(time.Second), Passed: true, Report: json.RawMessage(`{"ok":true}`)}
	if err := old.AddDrill(cluster, drill); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.catalog+".rebuild", []byte("left by an interrupted rebuild"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := s.rebuild(nil)
	if sum.TokensCarried != 1 || sum.DrillsCarried != 1 || sum.WAL != 1 || sum.Clusters != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := os.Stat(s.catalog + ".rebuild"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new catalog's temporary name is still there: %v", err)
	}
	if sum.OldCatalog == "" || !strings.HasPrefix(sum.OldCatalog, s.catalog+".old-") {
		t.Fatalf("previous catalog kept as %q", sum.OldCatalog)
	}
	kept, err := index.Open(sum.OldCatalog, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kept.LookupToken(protocol.TokenHash(tok)); err != nil {
		t.Errorf("the kept previous catalog: %v", err)
	}
	kept.Close()
	cat := s.open()
	if got, err := cat.LookupToken(protocol.TokenHash(tok)); err != nil || got.ID != protocol.TokenID(tok) {
		t.Errorf("the token after the rebuild: %+v %v", got, err)
	}
	if ds, err := cat.Drills(cluster, 0); err != nil || len(ds) != 1 || !ds[0].Passed || !ds[0].Received.Equal(drill.Received) {
		t.Errorf("drill reports after the rebuild: %+v %v", ds, err)
	}
	if _, err := cat.WAL(cluster, walName(1)); err != nil {
		t.Error(err)
	}
}

// failingGets fails every read of one key, as a store that lists an
// object and then cannot serve it.
var errInjected = errors.New("injected read failure")

type failingGets struct {
	backends.Backend
	key string
}

func (f failingGets) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if key == f.key {
		return nil, errInjected
	}
	return f.Backend.Get(ctx, key, off, length)
}

// A storage error, or a cancelled context, fails the rebuild and changes
// nothing: the previous catalog stays, and no new one is left.
func TestRebuildStorageErrorChangesNothing(t *testing.T) {
	for _, failing := range []string{"wal", "backup object", "sentinel", "cancelled"} {
		t.Run(failing, func(t *testing.T) {
			s := newStore(t)
			name := "base_" + walName(2)
			prefix := cluster + "/" + layout.BackupDir + "/" + name
			keys := map[string]string{"wal": cluster + "/" + layout.WALDir + "/" + walName(1), "backup object": prefix + "/tar_partitions/part_001.tar",
				"sentinel": prefix + layout.SentinelSuffix}
			s.put(keys["wal"], bytes.Repeat([]byte{1}, 1024), nil, time.Time{})
			s.put(keys["backup object"], tarWith(t, "base/1/1", []byte("page")), nil, time.Time{})
			s.put(keys["sentinel"], sentinelJSON(t, 2, layout.Sentinel{}), nil, time.Time{})
			// The previous catalog: one token, no records.
			old, tok := s.catalogWithToken()
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var be backends.Backend = failingGets{s.be, keys[failing]}
			if failing == "cancelled" {
				cancel()
			}
			sum, err := rebuild.Run(ctx, be, "a", s.catalog, nil)
			if err == nil {
				t.Fatalf("a rebuild with %s failing succeeded: %+v", failing, sum)
			}
			if failing != "cancelled" && !errors.Is(err, errInjected) {
				t.Errorf("error: %v", err)
			}
			cat := s.open()
			if _, err := cat.LookupToken(protocol.TokenHash(tok)); err != nil {
				t.Errorf("the previous catalog's token: %v", err)
			}
			if _, err := cat.WAL(cluster, walName(1)); !errors.Is(err, index.ErrNotFound) {
				t.Errorf("the catalog was replaced: it has WAL %s (%v)", walName(1), err)
			}
			if left, _ := filepath.Glob(s.catalog + ".*"); len(left) != 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

// What each object's walgate metadata and bytes say lands in the record:
// a timeline history's switch point, a key fingerprint; metadata with an
// unknown encryption is not trusted; a second object of one WAL file, a
// sentinel of no valid backup name, and bytes that are not what the name
// says are counted and left alone.
func TestRebuildWALRecords(t *testing.T) {
	s := newStore(t)
	wal := func(name string) string { return cluster + "/" + layout.WALDir + "/" + name }
	mod := time.Now().Add(-2 * time.Hour).Truncate(time.Second)

	history := []byte("1\t0/3000000\tno recovery target specified\n")
	hmd := layout.WALObject{Cluster: cluster, Name: "00000002.history", SHA256: hexSHA(history), ContentID: "sha256:" + hexSHA(history),
		PlainSize: int64(len(history)), Compression: "none", Encryption: "none", TimelineParent: 1, SwitchLSN: "0/3000000"}.Metadata()
	s.put(wal("00000002.history"), history, hmd, mod)

	sealed := bytes.Repeat([]byte{9}, 24+17+100) // a possible libsodium size
	fp := "0123456789abcdef"
	emd := layout.WALObject{Cluster: cluster, Name: walName(3), SHA256: hexSHA(sealed), ContentID: "sha256:" + hexSHA([]byte("plain")),
		PlainSize: 5, Compression: "none", Encryption: "libsodium", KeyFingerprint: fp}.Metadata()
	s.put(wal(walName(3)), sealed, emd, mod)

	seg4 := bytes.Repeat([]byte{4}, 4096)
	bad := layout.WALObject{Cluster: cluster, Name: walName(4), SHA256: hexSHA(seg4), ContentID: "sha256:" + hexSHA(seg4),
		PlainSize: 4096, Compression: "none", Encryption: "rot13"}.Metadata()
	s.put(wal(walName(4)), seg4, bad, mod)

	seg5 := bytes.Repeat([]byte{5}, 4096)
	s.put(wal(walName(5)), seg5, nil, mod)
	s.put(wal(walName(5)+".zst"), encode(t, seg5, codec.Zstd), nil, mod) // a second object of the same file

	// Bytes that are not what the name says.
	damaged := []string{
		wal(walName(6) + ".zst"), // the zstd magic, then garbage
		wal(walName(7) + ".lz4"), // no lz4 magic, and no possible libsodium size
		wal(walName(8) + ".br"),  // does not decode, no possible libsodium size
	}
	s.put(damaged[0], append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff}, 60)...), nil, mod)
	s.put(damaged[1], bytes.Repeat([]byte{1}, 30), nil, mod)
	s.put(damaged[2], bytes.Repeat([]byte{0xff}, 30), nil, mod)
	// An uncompressed WAL file is taken as plain when it looks plain (a
	// power-of-two size) or cannot be a libsodium object (8238 bytes);
	// else as encrypted (141 bytes).
	odd := bytes.Repeat([]byte{1}, 24+8209+5)
	s.put(wal(walName(9)), odd, nil, mod)
	s.put(wal(walName(13)), bytes.Repeat([]byte{1}, 141), nil, mod)
	// lz4 and brotli of a real segment (lzma: the WAL-G vectors).
	seg10 := bytes.Repeat([]byte("ten "), 1024)
	s.put(wal(walName(10)+".lz4"), encode(t, seg10, codec.LZ4), nil, mod)
	s.put(wal(walName(12)+".br"), encode(t, seg10, codec.Brotli), nil, mod)
	s.put("db/"+layout.BackupDir+"/not-a-backup"+layout.SentinelSuffix, []byte("{}"), nil, mod)
	s.put("Bad!/"+layout.WALDir+"/"+walName(1), seg5, nil, mod) // no valid cluster name
	// An uncompressed history is plain when it is text; 141 bytes with a
	// NUL can be a libsodium object.
	s.put(wal("00000003.history"), history, nil, mod)
	s.put(wal("00000004.history"), append(bytes.Repeat([]byte{'a'}, 140), 0), nil, mod)
	// lzma is told from libsodium by its header: properties 0x5D and a
	// power-of-two dictionary from 4 KiB to 1 GiB. These headers are
	// followed by no valid stream: damaged when the header is lzma's, a
	// libsodium object (141 bytes) when not.
	lzma := map[uint64]bool{} // segment: header is lzma's
	for i, h := range []struct {
		props byte
		dict  uint32
		lzma  bool
	}{{0x5d, 4 << 10, true}, {0x5d, 1 << 30, true}, {0x5d, 2 << 10, false}, {0x5d, 2 << 30, false}, {0x5d, 12 << 10, false}, {0x5e, 4 << 10, false}} {
		body := make([]byte, 141)
		body[0] = h.props
		binary.LittleEndian.PutUint32(body[1:5], h.dict)
		n := uint64(0x20 + i)
		lzma[n] = h.lzma
		s.put(wal(walName(n)+".lzma"), body, nil, mod)
	}

	sum := s.rebuild(nil)
	cat := s.open()
	h, err := cat.WAL(cluster, "00000002.history")
	if err != nil || h.TimelineParent != 1 || h.SwitchLSN != 0x3000000 || !h.StoredAt.Equal(mod) {
		t.Errorf("history: %+v %v; want parent 1, switch at 0/3000000, stored at %v", h, err, mod)
	}
	e, err := cat.WAL(cluster, walName(3))
	if err != nil || e.KeyFingerprint != fp || e.Encryption != "libsodium" || e.PlainSize != 5 {
		t.Errorf("encrypted WAL with metadata: %+v %v", e, err)
	}
	w4, err := cat.WAL(cluster, walName(4))
	if err != nil || w4.Encryption != "none" || w4.ContentID != "sha256:"+hexSHA(seg4) {
		t.Errorf("WAL with metadata of an unknown encryption: %+v %v", w4, err)
	}
	if !hasNote(sum, walName(4), "disagrees with the key") {
		t.Errorf("no note on the untrusted metadata: %q", sum.Notes)
	}
	w5, err := cat.WAL(cluster, walName(5))
	if err != nil || w5.Key != wal(walName(5)) || w5.Compression != "none" {
		t.Errorf("WAL 5: %+v %v; want the first object, %s", w5, err, wal(walName(5)))
	}
	if !hasNote(sum, wal(walName(5)+".zst"), "a second object") {
		t.Errorf("no note on the second object of WAL 5: %q", sum.Notes)
	}
	for _, k := range damaged {
		if !hasNote(sum, k) {
			t.Errorf("no note on %s: %q", k, sum.Notes)
		}
	}
	for _, n := range []uint64{6, 7, 8} {
		if _, err := cat.WAL(cluster, walName(n)); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("damaged WAL %s cataloged: %v", walName(n), err)
		}
	}
	for n, comp := range map[uint64]string{10: "lz4", 12: "brotli"} {
		r, err := cat.WAL(cluster, walName(n))
		if err != nil || r.Compression != comp || r.Encryption != "none" || r.ContentID != "sha256:"+hexSHA(seg10) || r.PlainSize != int64(len(seg10)) {
			t.Errorf("%s WAL: %+v %v", comp, r, err)
		}
	}
	if r, err := cat.WAL(cluster, walName(9)); err != nil || r.Encryption != "none" || r.ContentID != "sha256:"+hexSHA(odd) || r.PlainSize != int64(len(odd)) {
		t.Errorf("uncompressed WAL of no possible libsodium size: %+v %v", r, err)
	}
	if r, err := cat.WAL(cluster, walName(13)); err != nil || r.Encryption != "libsodium" || r.ContentID != layout.ContentIDUnknown || r.Size != 141 {
		t.Errorf("uncompressed WAL of a libsodium size: %+v %v", r, err)
	}
	if r, err := cat.WAL(cluster, "00000003.history"); err != nil || r.Encryption != "none" || r.ContentID != "sha256:"+hexSHA(history) {
		t.Errorf("uncompressed history: %+v %v", r, err)
	}
	if r, err := cat.WAL(cluster, "00000004.history"); err != nil || r.Encryption != "libsodium" {
		t.Errorf("uncompressed history with a NUL, of a libsodium size: %+v %v", r, err)
	}
	for n, isLZMA := range lzma {
		r, err := cat.WAL(cluster, walName(n))
		switch {
		case isLZMA && (!errors.Is(err, index.ErrNotFound) || !hasNote(sum, walName(n)+".lzma", "not a valid lzma stream")):
			t.Errorf("%s.lzma with lzma's header and no stream: %+v %v", walName(n), r, err)
		case !isLZMA && (err != nil || r.Encryption != "libsodium"):
			t.Errorf("%s.lzma with another header: %+v %v, want a libsodium object", walName(n), r, err)
		}
	}
	// Unknown: the second object of WAL 5, the sentinel of no backup, the
	// cluster of no valid name.
	if sum.Unknown != 3 || sum.Damaged != len(damaged)+2 || sum.WAL != 14 || sum.Foreign != 16 || sum.ForeignEncrypted != 6 || len(sum.Notes) != 9 {
		t.Errorf("summary %+v", sum)
	}
}

// A backup's record: begun at its oldest object, committed when its
// sentinel was written, permanent and of the system its sentinel says;
// notes for what cannot be restored; a sentinel that is not one, or a
// tar partition that is not a tar, keeps the backup out of the catalog.
func TestRebuildBackupRecords(t *testing.T) {
	s := newStore(t)
	t0 := time.Now().Add(-5 * time.Hour).Truncate(time.Second).UTC()
	seg := bytes.Repeat([]byte{3}, 4096)
	// WAL of system 111, pushed after backup 2 and before backup 8.
	wmd := layout.WALObject{Cluster: cluster, Name: walName(3), SHA256: hexSHA(seg), ContentID: "sha256:" + hexSHA(seg),
		PlainSize: 4096, Compression: "none", Encryption: "none"}.Metadata()
	wmd[layout.MetaSystemIdentifier] = "111"
	s.put(cluster+"/"+layout.WALDir+"/"+walName(3), seg, wmd, t0.Add(2*time.Hour))

	type file struct {
		name string
		body []byte
		mod  time.Time
	}
	backup := func(seg uint64, sentinel []byte, sentinelAt time.Time, files ...file) string {
		name := "base_" + walName(seg)
		prefix := cluster + "/" + layout.BackupDir + "/" + name
		for _, f := range files {
			s.put(prefix+"/"+f.name, f.body, nil, f.mod)
		}
		s.put(prefix+layout.SentinelSuffix, sentinel, nil, sentinelAt)
		return name
	}
	ctl := tarWith(t, "global/pg_control", bytes.Repeat([]byte{1}, 512))
	part := tarWith(t, "base/1/1", bytes.Repeat([]byte{2}, 512))
	full := backup(2, sentinelJSON(t, 2, layout.Sentinel{SystemIdentifier: 111, IsPermanent: true, FinishTime: t0.Add(time.Hour)}), t0.Add(time.Hour),
		file{"tar_partitions/part_001.tar.zst", encode(t, part, codec.Zstd), t0.Add(30 * time.Minute)},
		file{"tar_partitions/pg_control.tar.zst", encode(t, ctl, codec.Zstd), t0.Add(10 * time.Minute)},
		file{"tar_partitions/part_002.tar.br", encode(t, part, codec.Brotli), t0.Add(40 * time.Minute)},
		file{"tar_partitions/part_003.tar", part, t0.Add(40 * time.Minute)},
		file{"metadata.json", []byte("{}"), t0.Add(50 * time.Minute)})
	// A delta of a backup this store lacks, of system 222, with an lzma
	// partition (WAL-G's) and no pg_control: cataloged, with notes.
	lzmaTar, err := os.ReadFile(filepath.Join("..", "..", "testdata", "walg", "lzma-plain", "archive", layout.BackupDir,
		"base_000000010000000000000004", "tar_partitions", "backup_label.tar.lzma"))
	if err != nil {
		t.Fatal(err)
	}
	delta := backup(8, sentinelJSON(t, 8, layout.Sentinel{SystemIdentifier: 222, DeltaFrom: "base_" + walName(6), FinishTime: t0.Add(4 * time.Hour)}),
		t0.Add(4*time.Hour), file{"tar_partitions/backup_label.tar.lzma", lzmaTar, t0.Add(3 * time.Hour)})
	// Objects with walgate metadata: their encryption and key come from it.
	sealedName := "base_" + walName(14)
	fp := "fedcba9876543210"
	for _, f := range []string{"tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst"} {
		md := layout.WithKeyFingerprint(layout.BackupFileMetadata(cluster, sealedName, f, "zstd", "libsodium"), fp)
		s.put(cluster+"/"+layout.BackupDir+"/"+sealedName+"/"+f, bytes.Repeat([]byte{6}, 141), md, t0)
	}
	s.put(cluster+"/"+layout.BackupDir+"/"+sealedName+layout.SentinelSuffix, sentinelJSON(t, 14, layout.Sentinel{FinishTime: t0.Add(5 * time.Minute)}),
		layout.SentinelMetadata(cluster, sealedName), t0.Add(5*time.Minute))
	// No sentinel; a sentinel and no objects.
	noSentinel := "base_" + walName(16)
	s.put(cluster+"/"+layout.BackupDir+"/"+noSentinel+"/metadata.json", []byte("{}"), nil, t0)
	noObjects := "base_" + walName(18)
	s.put(cluster+"/"+layout.BackupDir+"/"+noObjects+layout.SentinelSuffix, sentinelJSON(t, 18, layout.Sentinel{}), nil, t0)
	// Another cluster: its system only from WAL metadata (a zero
	// identifier says nothing).
	for i, id := range []string{"333", "0"} {
		md := layout.WALObject{Cluster: "db2", Name: walName(uint64(i + 1)), SHA256: hexSHA(seg), ContentID: "sha256:" + hexSHA(seg),
			PlainSize: 4096, Compression: "none", Encryption: "none"}.Metadata()
		md[layout.MetaSystemIdentifier] = id
		s.put("db2/"+layout.WALDir+"/"+walName(uint64(i+1)), seg, md, t0.Add(time.Duration(i)*time.Hour))
	}
	notJSON := backup(10, []byte("{not json"), t0.Add(4*time.Hour), file{"metadata.json", []byte("{}"), t0})
	// A brotli partition that decodes, but not to a tar, and is too
	// short to be a libsodium object.
	noTar := encode(t, []byte("no tar"), codec.Brotli)
	if codec.EncryptedSizePossible(int64(len(noTar))) {
		t.Fatalf("%d bytes could be a libsodium object", len(noTar))
	}
	notTar := backup(12, sentinelJSON(t, 12, layout.Sentinel{}), t0.Add(4*time.Hour),
		file{"tar_partitions/part_001.tar.br", noTar, t0}, file{"tar_partitions/pg_control.tar.zst", encode(t, ctl, codec.Zstd), t0})

	sum := s.rebuild(nil)
	cat := s.open()
	b, err := cat.Backup(cluster, full)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Begun.Equal(t0.Add(10*time.Minute)) || !b.Committed.Equal(t0.Add(time.Hour)) || !b.LastActivity.Equal(t0.Add(time.Hour)) ||
		!b.Info.Permanent || b.Info.SystemIdentifier != 111 || b.Backend != "a" || len(b.Files) != 5 {
		t.Errorf("backup %s: begun %v, committed %v, last activity %v, %+v, %d files", full, b.Begun, b.Committed, b.LastActivity, b.Info, len(b.Files))
	}
	for f, rec := range b.Files {
		if rec.Encryption != "none" || rec.Compression != layout.FileCompression(f) || rec.Size == 0 {
			t.Errorf("backup %s, %s: %+v", full, f, rec)
		}
	}
	sealed, err := cat.Backup(cluster, sealedName)
	if err != nil || len(sealed.Files) != 2 {
		t.Fatalf("backup %s: %+v %v", sealedName, sealed, err)
	}
	for f, rec := range sealed.Files {
		if rec.Encryption != "libsodium" || rec.KeyFingerprint != fp || rec.SHA256 != hexSHA(bytes.Repeat([]byte{6}, 141)) {
			t.Errorf("backup %s, %s (walgate metadata): %+v", sealedName, f, rec)
		}
	}
	d, err := cat.Backup(cluster, delta)
	if err != nil || d.Info.Kind != "delta" || d.Files["tar_partitions/backup_label.tar.lzma"].Compression != "lzma" {
		t.Fatalf("delta %s: %+v %v", delta, d, err)
	}
	for _, want := range [][]string{{delta, "base_" + walName(6), "cannot be restored"}, {delta, "no tar_partitions/pg_control.tar"},
		{delta, "lzma-compressed"}, {notJSON, "not JSON"}, {"part_001.tar.br", "neither a brotli stream"}, {notTar, "damaged objects"},
		{"2 PostgreSQL systems", "222"}, {noSentinel, "no sentinel"}, {noObjects, "no objects"}} {
		if !hasNote(sum, want...) {
			t.Errorf("no note with %q: %q", want, sum.Notes)
		}
	}
	if hasNote(sum, full) {
		t.Errorf("notes on the intact backup: %q", sum.Notes)
	}
	for _, name := range []string{notJSON, notTar, noSentinel, noObjects} {
		if _, err := cat.Backup(cluster, name); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("%s cataloged: %v", name, err)
		}
	}
	if hasNote(sum, "db2") {
		t.Errorf("a note on cluster db2, of one system: %q", sum.Notes)
	}
	if sys, err := cat.System("db2"); err != nil || sys.SystemIdentifier != 333 {
		t.Errorf("system of db2: %+v %v", sys, err)
	}
	if sum.FullBackups != 2 || sum.DeltaBackups != 1 || sum.Incomplete != 4 || sum.Damaged != 2 || sum.WAL != 3 || sum.Clusters != 2 {
		t.Errorf("summary %+v", sum)
	}
	// Two systems: the newest sighting (the delta's sentinel) is recorded.
	if sys, err := cat.System(cluster); err != nil || sys.SystemIdentifier != 222 || !strings.Contains(sys.Source, delta) {
		t.Errorf("system: %+v %v", sys, err)
	}
}
