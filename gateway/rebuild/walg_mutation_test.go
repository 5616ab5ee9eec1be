package rebuild_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// walgVector is the part of a WAL-G vector's expected.json a rebuild is
// checked against (testdata/walg/README.md).
type walgVector struct {
	Encryption       *struct{} `json:"encryption"`
	Compression      string    `json:"compression_method"`
	SystemIdentifier string    `json:"system_identifier"`
	Backups          []struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		StartLSN uint64 `json:"start_lsn_int"`
		Finish   uint64 `json:"finish_lsn_int"`
		Objects  []struct {
			Object string `json:"object"`
			Size   int64  `json:"size"`
		} `json:"objects"`
	} `json:"backups"`
	WALObjects []struct {
		Object        string `json:"object"`
		Name          string `json:"name"`
		ObjectSize    int64  `json:"object_size"`
		ObjectSHA256  string `json:"object_sha256"`
		DecodedSize   int64  `json:"decoded_size"`
		DecodedSHA256 string `json:"decoded_sha256"`
	} `json:"wal_objects"`
}

// copyArchive copies a vector's archive/ folder to root/<cluster>/.
func copyArchive(t *testing.T, archive, root string) {
	t.Helper()
	err := filepath.WalkDir(archive, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(archive, p)
		dst := filepath.Join(root, cluster, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A rebuild over stock WAL-G archives (no walgate metadata) catalogs
// every WAL object and backup with what its bytes say: the stored size
// and SHA-256, the compression of its extension, libsodium encryption
// detected from the bytes, and for plain WAL the decoded content's
// SHA-256 and size; backups with their kind, LSNs, parent and objects,
// and the cluster's PostgreSQL system from the sentinels.
func TestRebuildWALGVectorRecords(t *testing.T) {
	for _, variant := range []string{"lz4-plain", "zstd-libsodium", "brotli-libsodium", "lzma-plain", "lz4-libsodium-rawkey"} {
		t.Run(variant, func(t *testing.T) {
			vdir := filepath.Join("..", "..", "testdata", "walg", variant)
			raw, err := os.ReadFile(filepath.Join(vdir, "expected.json"))
			if err != nil {
				t.Fatalf("WAL-G vector %s: %v", variant, err)
			}
			var exp walgVector
			if err := json.Unmarshal(raw, &exp); err != nil {
				t.Fatal(err)
			}
			root, data := t.TempDir(), t.TempDir()
			copyArchive(t, filepath.Join(vdir, "archive"), root)
			be, err := fs.New(root, fs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			catalogPath := config.CatalogPath(data)
			sum, err := rebuild.Run(context.Background(), be, "walg", catalogPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			encrypted := exp.Encryption != nil
			wantEncrypted := 0
			if encrypted {
				wantEncrypted = len(exp.WALObjects)
			}
			deltas := 0
			for _, b := range exp.Backups {
				if b.Kind == "delta" {
					deltas++
				}
			}
			// Every object but the sentinels is without walgate metadata
			// (the sentinels are read, not counted).
			if sum.WAL != len(exp.WALObjects) || sum.FullBackups != len(exp.Backups)-deltas || sum.DeltaBackups != deltas || deltas == 0 ||
				sum.ForeignEncrypted != wantEncrypted || sum.Foreign != sum.Objects-len(exp.Backups) ||
				sum.Clusters != 1 || sum.Damaged+sum.Unknown+sum.Incomplete != 0 {
				t.Fatalf("summary %+v", sum)
			}
			cat, err := index.Open(catalogPath, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cat.Close()
			comp := exp.Compression // WAL-G's names are walgate's
			for _, w := range exp.WALObjects {
				rec, err := cat.WAL(cluster, w.Name)
				if err != nil {
					t.Fatalf("WAL %s: %v", w.Name, err)
				}
				want := index.WALObject{Name: w.Name, Key: cluster + "/" + strings.TrimPrefix(w.Object, "archive/"), Backend: "walg",
					Size: w.ObjectSize, SHA256: w.ObjectSHA256, Compression: comp, Encryption: protocol.EncryptionNone,
					ContentID: "sha256:" + w.DecodedSHA256, PlainSize: w.DecodedSize}
				if encrypted {
					want.Encryption, want.ContentID, want.PlainSize = protocol.EncryptionLibsodium, layout.ContentIDUnknown, 0
				}
				got := index.WALObject{Name: rec.Name, Key: rec.Key, Backend: rec.Backend, Size: rec.Size, SHA256: rec.SHA256,
					Compression: rec.Compression, Encryption: rec.Encryption, ContentID: rec.ContentID, PlainSize: rec.PlainSize}
				if got.Name != want.Name || got.Key != want.Key || got.Backend != want.Backend || got.Size != want.Size || got.SHA256 != want.SHA256 ||
					got.Compression != want.Compression || got.Encryption != want.Encryption || got.ContentID != want.ContentID || got.PlainSize != want.PlainSize {
					t.Errorf("WAL %s cataloged as\n%+v\nwant\n%+v", w.Name, got, want)
				}
			}
			full := ""
			for _, b := range exp.Backups {
				rec, err := cat.Backup(cluster, b.Name)
				if err != nil {
					t.Fatalf("backup %s: %v", b.Name, err)
				}
				wantParent := ""
				if b.Kind == "delta" {
					wantParent = full
				} else {
					full = b.Name
				}
				if rec.State != index.BackupCommitted || rec.Info.Kind != b.Kind || rec.Info.StartLSN != b.StartLSN || rec.Info.FinishLSN != b.Finish ||
					rec.Info.DeltaFrom != wantParent || rec.Info.Timeline != 1 {
					t.Errorf("backup %s cataloged as %s %+v, want %s from %d to %d, parent %q", b.Name, rec.State, rec.Info, b.Kind, b.StartLSN, b.Finish, wantParent)
				}
				prefix := "archive/" + layout.BackupDir + "/" + b.Name + "/"
				files := 0
				for _, o := range b.Objects {
					f, ok := strings.CutPrefix(o.Object, prefix)
					if !ok {
						continue // the sentinel
					}
					files++
					body, err := os.ReadFile(filepath.Join(vdir, o.Object))
					if err != nil {
						t.Fatal(err)
					}
					fr, ok := rec.Files[f]
					wantEnc := protocol.EncryptionNone
					if encrypted && !strings.HasSuffix(f, ".json") {
						wantEnc = protocol.EncryptionLibsodium
					}
					if !ok || fr.Size != o.Size || fr.SHA256 != hexSHA(body) || fr.Encryption != wantEnc || fr.Compression != layout.FileCompression(f) {
						t.Errorf("backup %s, %s: cataloged %+v (found %v), want %d bytes, SHA-256 %s, encryption %s", b.Name, f, fr, ok, o.Size, hexSHA(body), wantEnc)
					}
				}
				if len(rec.Files) != files {
					t.Errorf("backup %s: %d objects cataloged, want %d", b.Name, len(rec.Files), files)
				}
			}
			sys, err := cat.System(cluster)
			if err != nil || strconv.FormatUint(sys.SystemIdentifier, 10) != exp.SystemIdentifier {
				t.Errorf("system of the cluster: %+v %v, want %s", sys, err, exp.SystemIdentifier)
			}
			if err := cat.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
