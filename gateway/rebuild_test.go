package gateway_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// httpDo sends one request to a test gateway and returns status and body.
func httpDo(t *testing.T, method, u, token string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// pushBackup uploads files and, with sentinel non-nil, commits the backup
// through the gateway's backup routes.
func pushBackup(t *testing.T, base, token, name string, files map[string][]byte, sentinel []byte) {
	t.Helper()
	st, _, body := httpDo(t, http.MethodPost, base+protocol.BackupPath(cluster, name), token, nil, nil)
	if st != http.StatusCreated {
		t.Fatalf("begin %s: HTTP %d %s", name, st, body)
	}
	var begin protocol.BeginBackupResult
	if err := json.Unmarshal(body, &begin); err != nil {
		t.Fatal(err)
	}
	commit := protocol.CommitBackup{Sentinel: sentinel, Files: map[string]protocol.BackupFile{}}
	for f, data := range files {
		st, _, body := httpDo(t, http.MethodPut, base+protocol.BackupFilePath(cluster, name, f), token, map[string]string{
			protocol.HeaderBackupSession: begin.Session,
			protocol.HeaderCompression:   protocol.FileCompression(f),
			protocol.HeaderEncryption:    protocol.EncryptionNone,
		}, data)
		if st != http.StatusCreated {
			t.Fatalf("upload %s of %s: HTTP %d %s", f, name, st, body)
		}
		commit.Files[f] = protocol.BackupFile{Size: int64(len(data)), SHA256: sha(data)}
	}
	if sentinel == nil {
		return
	}
	req, _ := json.Marshal(commit)
	session := map[string]string{protocol.HeaderBackupSession: begin.Session}
	if st, _, body := httpDo(t, http.MethodPost, base+protocol.BackupCommitPath(cluster, name), token, session, req); st != http.StatusOK {
		t.Fatalf("commit %s: HTTP %d %s", name, st, body)
	}
}

func tarLike(t *testing.T, n int) []byte {
	b := randBytes(t, n)
	copy(b[257:], "ustar\x0000")
	return b
}

// catalogView is what a client can see of a cluster: every WAL file with
// its headers and bytes, the backup list and each backup's objects.
type catalogView struct {
	wal     map[string]string // name -> headers and SHA-256 of the body
	list    string            // backup-list JSON, commit times removed
	objects map[string]string // backup/file -> SHA-256 of the body
}

var walHeaderNames = []string{protocol.HeaderContentSHA256, protocol.HeaderCompression, protocol.HeaderEncryption,
	protocol.HeaderContentID, protocol.HeaderPlainSize}

func viewOf(t *testing.T, base, token string, walNames []string) catalogView {
	t.Helper()
	v := catalogView{wal: map[string]string{}, objects: map[string]string{}}
	for _, name := range walNames {
		st, h, body := httpDo(t, http.MethodGet, base+protocol.WALPath(cluster, name), token, nil, nil)
		if st != http.StatusOK {
			t.Fatalf("GET WAL %s: HTTP %d %s", name, st, body)
		}
		var parts []string
		for _, hn := range walHeaderNames {
			parts = append(parts, hn+"="+h.Get(hn))
		}
		v.wal[name] = strings.Join(parts, " ") + " body=" + sha(body)
	}
	st, _, body := httpDo(t, http.MethodGet, base+protocol.BackupsPath(cluster), token, nil, nil)
	if st != http.StatusOK {
		t.Fatalf("backup list: HTTP %d %s", st, body)
	}
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		delete(b, "committed")
		name := b["name"].(string)
		st, _, body := httpDo(t, http.MethodGet, base+protocol.BackupPath(cluster, name), token, nil, nil)
		if st != http.StatusOK {
			t.Fatalf("describe %s: HTTP %d %s", name, st, body)
		}
		var d protocol.BackupDetail
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatal(err)
		}
		v.objects[name+" sentinel"] = sha(d.Sentinel)
		for f, rec := range d.Files {
			st, _, data := httpDo(t, http.MethodGet, base+protocol.BackupFilePath(cluster, name, f), token, nil, nil)
			if st != http.StatusOK || sha(data) != rec.SHA256 || int64(len(data)) != rec.Size {
				t.Fatalf("fetch %s of %s: HTTP %d, %d bytes, want %d with the described SHA-256", f, name, st, len(data), rec.Size)
			}
			v.objects[name+"/"+f] = fmt.Sprintf("%s %d %s %s", rec.SHA256, rec.Size, rec.Compression, rec.Encryption)
		}
	}
	out, _ := json.Marshal(list)
	v.list = string(out)
	return v
}

func sameView(t *testing.T, what string, got, want catalogView) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: the gateway shows\n%v\nwant (before the rebuild)\n%v\n%s\n%s", what, got, want, g, w)
	}
}

func checkCatalog(t *testing.T, path string) {
	t.Helper()
	cat, err := index.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
}

func runRebuild(t *testing.T, store, backendName, catalogPath string) rebuild.Summary {
	t.Helper()
	be, err := fs.New(store, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var progress bytes.Buffer
	sum, err := rebuild.Run(context.Background(), be, backendName, catalogPath, &progress)
	if err != nil {
		t.Fatalf("Rebuild: %v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	sum.Print(&out)
	t.Logf("rebuild summary:\n%s", out.String())
	return sum
}

// TestRebuildFromWalgateStore pushes WAL and backups through a real
// gateway, stops it, rebuilds the catalog from the store (with the old
// catalog present, then with it deleted) and checks that a gateway on the
// rebuilt catalog serves everything as before, to the same tokens.
func TestRebuildFromWalgateStore(t *testing.T) {
	data := t.TempDir()
	e := start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	walNames := []string{seg1, seg2, "000000010000000000000003", "00000002.history", "000000010000000000000002.00000028.backup"}
	for _, name := range walNames {
		if r := e.put(t, name, e.push, randBytes(t, 3000+len(name))); r.status != http.StatusCreated {
			t.Fatalf("push %s: HTTP %d %s", name, r.status, r.msg)
		}
	}
	full, delta := "base_000000010000000000000002", "base_000000010000000000000003_D_000000010000000000000002"
	pushBackup(t, e.g.URL, e.push, full, map[string][]byte{
		"tar_partitions/part_001.tar": tarLike(t, 5000), "tar_partitions/pg_control.tar": tarLike(t, 1024),
		"tar_partitions/backup_label.tar": tarLike(t, 1024), "metadata.json": []byte(`{"start_lsn":33554472}`),
	}, []byte(`{"LSN":33554472,"FinishLSN":33554688,"StartTime":"2026-11-25T01:00:00Z","FinishTime":"2026-11-25T01:00:05Z","PgVersion":150018,"SystemIdentifier":7711916252778549563,"Hostname":"db1","UncompressedSize":123456}`))
	pushBackup(t, e.g.URL, e.push, delta, map[string][]byte{
		"tar_partitions/part_001.tar": tarLike(t, 700), "tar_partitions/pg_control.tar": tarLike(t, 1024),
		"files_metadata.json": []byte(`{"Files":{}}`),
	}, []byte(`{"LSN":50331688,"FinishLSN":50331904,"DeltaFrom":"`+full+`","DeltaFullName":"`+full+`","DeltaCount":1,"StartTime":"2026-11-25T02:00:00Z","FinishTime":"2026-11-25T02:00:05Z","PgVersion":150018,"Hostname":"db1"}`))
	// An upload in progress when the gateway stopped: never committed.
	pushBackup(t, e.g.URL, e.push, "base_000000010000000000000004", map[string][]byte{"tar_partitions/part_001.tar": tarLike(t, 600)}, nil)

	if st, _, body := httpDo(t, http.MethodPost, e.g.URL+protocol.DrillsPath(cluster), e.fetch, nil, []byte(`{"backup":"`+full+`","passed":true}`)); st != http.StatusCreated {
		t.Fatalf("drill report: HTTP %d %s", st, body)
	}
	_, _, drillsBefore := httpDo(t, http.MethodGet, e.g.URL+protocol.DrillsPath(cluster), e.fetch, nil, nil)
	before := viewOf(t, e.g.URL, e.fetch, walNames)
	if len(before.objects) != 9 {
		t.Fatalf("before: %d backup objects, want 9", len(before.objects))
	}
	e.g.Server.Shutdown(context.Background())

	store, catPath := filepath.Join(data, "store"), config.CatalogPath(data)
	sum := runRebuild(t, store, "local", catPath)
	want := rebuild.Summary{Backend: "local", Clusters: 1, WAL: 5, FullBackups: 1, DeltaBackups: 1, Incomplete: 1, TokensCarried: 4, DrillsCarried: 1}
	got := sum
	got.Objects, got.Bytes, got.Notes, got.OldCatalog = 0, 0, nil, ""
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
	if sum.Objects != 5+5+4+1 || len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "base_000000010000000000000004 of cluster main: 1 objects but no sentinel") {
		t.Fatalf("objects %d, notes %q", sum.Objects, sum.Notes)
	}
	if _, err := os.Stat(sum.OldCatalog); err != nil || !strings.HasPrefix(sum.OldCatalog, catPath+".old-") {
		t.Fatalf("old catalog kept as %q: %v", sum.OldCatalog, err)
	}
	if _, err := os.Stat(catPath + ".rebuild"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the .rebuild file is left behind: %v", err)
	}
	checkCatalog(t, catPath)
	if len(gatewaytest.ListFiles(t, filepath.Join(store, cluster, "basebackups_005", "base_000000010000000000000004"))) != 1 {
		t.Fatal("the incomplete backup's object was touched")
	}

	// Same tokens, same view; a repeat push is still "exists", a
	// different body still a conflict.
	g2 := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	u, _ := url.Parse(g2.URL)
	e2 := &env{g: g2, addr: u.Host, pushFetch: e.pushFetch, push: e.push, fetch: e.fetch, other: e.other}
	sameView(t, "after a rebuild with the old catalog present", viewOf(t, g2.URL, e.fetch, walNames), before)
	if _, _, drills := httpDo(t, http.MethodGet, g2.URL+protocol.DrillsPath(cluster), e.fetch, nil, nil); !bytes.Equal(drills, drillsBefore) {
		t.Fatalf("drill reports after the rebuild:\n%s\nwant\n%s", drills, drillsBefore)
	}
	orig := e2.get(t, seg1, e.fetch)
	if r := e2.put(t, seg1, e.push, orig.body); r.status != http.StatusOK {
		t.Fatalf("re-push of %s after the rebuild: HTTP %d %s, want 200 exists", seg1, r.status, r.msg)
	}
	expect(t, "different content after the rebuild", e2.put(t, seg1, e.push, randBytes(t, 100)), http.StatusConflict, protocol.CodeConflict)
	g2.Server.Shutdown(context.Background())

	// The catalog lost entirely: the store alone rebuilds it, with no
	// tokens to carry over.
	for _, p := range []string{catPath, sum.OldCatalog} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	sum = runRebuild(t, store, "local", catPath)
	if sum.TokensCarried != 0 || sum.OldCatalog != "" || sum.WAL != 5 || sum.FullBackups != 1 || sum.DeltaBackups != 1 {
		t.Fatalf("rebuild without a catalog: %+v", sum)
	}
	checkCatalog(t, catPath)
	g3 := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	sameView(t, "after a rebuild from the store alone", viewOf(t, g3.URL, g3.Token(cluster, "fetch"), walNames), before)
}

const vectorsDir = "../testdata/walg"

type walgExpected struct {
	Encryption *struct {
		Key       string `json:"WALG_LIBSODIUM_KEY"`
		Transform string `json:"WALG_LIBSODIUM_KEY_TRANSFORM"`
	} `json:"encryption"`
	Backups []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"backups"`
	WALObjects []struct {
		Object        string `json:"object"`
		Name          string `json:"name"`
		ObjectSHA256  string `json:"object_sha256"`
		DecodedSize   int64  `json:"decoded_size"`
		DecodedSHA256 string `json:"decoded_sha256"`
	} `json:"wal_objects"`
	Plain []struct {
		File    string `json:"file"`
		Segment string `json:"segment"`
	} `json:"plain"`
}

// copyTree copies dir into dst (created), files writable by the owner.
func copyTree(t *testing.T, dir, dst string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRebuildWALGVectors rebuilds a catalog over copies of stock WAL-G
// archives (a cluster folder each) and fetches through a gateway on it.
func TestRebuildWALGVectors(t *testing.T) {
	if _, err := os.Stat(vectorsDir); err != nil {
		t.Fatalf("WAL-G test vectors missing (expected at %s): %v", vectorsDir, err)
	}
	for _, variant := range []string{"lz4-plain", "zstd-libsodium", "brotli-libsodium", "lzma-plain"} {
		t.Run(variant, func(t *testing.T) {
			vdir := filepath.Join(vectorsDir, variant)
			raw, err := os.ReadFile(filepath.Join(vdir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var exp walgExpected
			if err := json.Unmarshal(raw, &exp); err != nil {
				t.Fatal(err)
			}
			data, root := t.TempDir(), t.TempDir()
			copyTree(t, filepath.Join(vdir, "archive"), filepath.Join(root, cluster))
			sum := runRebuild(t, root, "walg", config.CatalogPath(data))
			objects := len(gatewaytest.ListFiles(t, root))
			fulls, deltas := 0, 0
			for _, b := range exp.Backups {
				if b.Kind == "delta" {
					deltas++
				} else {
					fulls++
				}
			}
			encrypted := 0
			if exp.Encryption != nil {
				encrypted = len(exp.WALObjects)
			}
			if sum.Objects != objects || sum.Foreign != objects-len(exp.Backups) || sum.WAL != len(exp.WALObjects) ||
				sum.FullBackups != fulls || sum.DeltaBackups != deltas || sum.Clusters != 1 || sum.ForeignEncrypted != encrypted ||
				sum.Unknown != 0 || sum.Damaged != 0 || sum.Incomplete != 0 {
				t.Fatalf("summary %+v: want %d objects, %d WAL, %d full and %d delta backups, %d encrypted WAL", sum, objects, len(exp.WALObjects), fulls, deltas, encrypted)
			}
			checkCatalog(t, config.CatalogPath(data))

			g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data,
				Backends: []config.BackendConfig{{Name: "walg", Type: "fs", Path: root}}}})
			tok := g.Token(cluster, "push", "fetch")
			for _, w := range exp.WALObjects {
				st, h, body := httpDo(t, http.MethodGet, g.URL+protocol.WALPath(cluster, w.Name), tok, nil, nil)
				if st != http.StatusOK || sha(body) != w.ObjectSHA256 || h.Get(protocol.HeaderContentSHA256) != w.ObjectSHA256 {
					t.Fatalf("GET %s: HTTP %d, body SHA-256 %.12s, header %.12s, want the vector's object %.12s", w.Name, st, sha(body), h.Get(protocol.HeaderContentSHA256), w.ObjectSHA256)
				}
				wantEnc, wantID, wantPlain := protocol.EncryptionNone, "sha256:"+w.DecodedSHA256, fmt.Sprint(w.DecodedSize)
				if exp.Encryption != nil {
					// No identity is known: no identity headers, so the
					// client checks the stored bytes' SHA-256 only.
					wantEnc, wantID, wantPlain = protocol.EncryptionLibsodium, "", ""
				}
				if h.Get(protocol.HeaderEncryption) != wantEnc || h.Get(protocol.HeaderContentID) != wantID || h.Get(protocol.HeaderPlainSize) != wantPlain {
					t.Fatalf("GET %s: encryption %q, content ID %q, plain size %q; want %q, %q, %q", w.Name,
						h.Get(protocol.HeaderEncryption), h.Get(protocol.HeaderContentID), h.Get(protocol.HeaderPlainSize), wantEnc, wantID, wantPlain)
				}
			}
			st, _, body := httpDo(t, http.MethodGet, g.URL+protocol.BackupsPath(cluster), tok, nil, nil)
			var list []protocol.BackupSummary
			if st != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list) != len(exp.Backups) {
				t.Fatalf("backup list: HTTP %d %s", st, body)
			}
			for i, b := range exp.Backups {
				if list[i].Name != b.Name || list[i].Kind != b.Kind || list[i].Timeline != 1 {
					t.Fatalf("backup %d: %+v, want %s (%s) on timeline 1", i, list[i], b.Name, b.Kind)
				}
			}
			if variant != "lzma-plain" { // the fetch route serves no .lzma backup objects
				name := exp.Backups[len(exp.Backups)-1].Name
				var d protocol.BackupDetail
				_, _, body = httpDo(t, http.MethodGet, g.URL+protocol.BackupPath(cluster, name), tok, nil, nil)
				if err := json.Unmarshal(body, &d); err != nil {
					t.Fatal(err)
				}
				for f, rec := range d.Files {
					want, err := os.ReadFile(filepath.Join(root, cluster, "basebackups_005", name, f))
					if err != nil {
						t.Fatal(err)
					}
					st, _, got := httpDo(t, http.MethodGet, g.URL+protocol.BackupFilePath(cluster, name, f), tok, nil, nil)
					wantEnc := protocol.EncryptionNone
					if exp.Encryption != nil && !strings.HasSuffix(f, ".json") {
						wantEnc = protocol.EncryptionLibsodium
					}
					if st != http.StatusOK || !bytes.Equal(got, want) || rec.Encryption != wantEnc {
						t.Fatalf("fetch %s of %s: HTTP %d, %d bytes (want %d), encryption %s (want %s)", f, name, st, len(got), len(want), rec.Encryption, wantEnc)
					}
				}
			}

			// The walgate client restores the WAL-G segments it can verify,
			// and a re-push of one compares with the rebuilt content ID.
			if len(exp.Plain) == 0 || variant == "lzma-plain" {
				return
			}
			u, _ := url.Parse(g.URL)
			cfg := client.Config{URL: u, Token: tok, Cluster: cluster, Compression: codec.Zstd, Timeout: 10 * time.Second}
			if exp.Encryption != nil {
				if cfg.Key, err = codec.ParseKey(exp.Encryption.Key, exp.Encryption.Transform); err != nil {
					t.Fatal(err)
				}
			}
			c, err := client.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := exp.Plain[0]
			gz, err := os.ReadFile(filepath.Join(vdir, p.File))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			segment, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(t.TempDir(), p.Segment)
			if err := os.WriteFile(src, segment, 0o600); err != nil {
				t.Fatal(err)
			}
			// A re-push of the same segment is a repeat: for an encrypted
			// object, whose identity the gateway does not know, the client
			// decodes the archived copy and compares it with its own.
			res, err := c.PushWAL(context.Background(), src)
			if err != nil || res.Status != "exists" {
				t.Fatalf("re-push of WAL-G's %s with walgate: %+v, %v; want exists", p.Segment, res, err)
			}
			dest := filepath.Join(t.TempDir(), p.Segment)
			if err := c.FetchWAL(context.Background(), p.Segment, dest); err != nil {
				t.Fatalf("wal-fetch of WAL-G's %s: %v", p.Segment, err)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, segment) {
				t.Fatalf("wal-fetch of %s restored other bytes", p.Segment)
			}
			// Other bytes under the same name are refused, never taken as
			// a repeat (one byte changed in the last page).
			segment[len(segment)-100] ^= 0xff
			if err := os.WriteFile(src, segment, 0o600); err != nil {
				t.Fatal(err)
			}
			if res, err := c.PushWAL(context.Background(), src); !errors.Is(err, client.ErrConflict) {
				t.Fatalf("push of a different %s over WAL-G's: %+v, %v; want a conflict", p.Segment, res, err)
			}
		})
	}
}

// TestRebuildRefusesLockedCatalog: with a gateway running on the catalog
// the rebuild fails, changes nothing and says to stop the gateway.
func TestRebuildRefusesLockedCatalog(t *testing.T) {
	data := t.TempDir()
	e := start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	if r := e.put(t, seg1, e.push, randBytes(t, 100)); r.status != http.StatusCreated {
		t.Fatalf("push: HTTP %d", r.status)
	}
	be, err := fs.New(filepath.Join(data, "store"), fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	_, err = rebuild.Run(context.Background(), be, "local", config.CatalogPath(data), nil)
	if !errors.Is(err, rebuild.ErrCatalogInUse) || !strings.Contains(err.Error(), "stop the gateway first") {
		t.Fatalf("Rebuild under a running gateway: %v, want ErrCatalogInUse", err)
	}
	files, _ := filepath.Glob(config.CatalogPath(data) + ".*")
	if len(files) != 0 {
		t.Fatalf("left behind: %q", files)
	}
	if r := e.get(t, seg1, e.fetch); r.status != http.StatusOK {
		t.Fatalf("the running gateway after the refused rebuild: HTTP %d %s", r.status, r.msg)
	}
}

// TestRebuildRefusesUnreadableCatalog: a catalog that cannot be read is
// not replaced, since its tokens would be lost without a word.
func TestRebuildRefusesUnreadableCatalog(t *testing.T) {
	data, root := t.TempDir(), t.TempDir()
	junk := []byte("not a catalog, but the file a DBA must decide about")
	if err := os.WriteFile(config.CatalogPath(data), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	_, err = rebuild.Run(context.Background(), be, "local", config.CatalogPath(data), nil)
	if err == nil || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("Rebuild over an unreadable catalog: %v", err)
	}
	if got, _ := os.ReadFile(config.CatalogPath(data)); !bytes.Equal(got, junk) {
		t.Fatal("the unreadable catalog was changed")
	}
	if files, _ := filepath.Glob(config.CatalogPath(data) + ".*"); len(files) != 0 {
		t.Fatalf("left behind: %q", files)
	}
}

// TestRebuildReportsUnknownObjects: keys outside the layout, damaged
// objects and broken backups are counted and noted, never fatal, and left
// in place.
func TestRebuildReportsUnknownObjects(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	be, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	seg := randBytes(t, 1<<20) // a plain, uncompressed 1 MiB segment
	put := func(key string, body []byte) {
		if _, err := be.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("main/wal_005/"+seg1, seg)
	unknown := []string{"README.txt", "main/wal_005/notes.txt", "main/wal_005/" + seg2 + ".gz", "main/basebackups_005/base_000000010000000000000002/extra.bin",
		"main/other/thing", "Main!/wal_005/" + seg1}
	for _, k := range unknown {
		put(k, []byte("not walgate's"))
	}
	// Neither a zstd stream (no magic) nor a libsodium object: no payload
	// size gives 8238 bytes (docs/codec.md 3.2).
	put("main/wal_005/"+seg2+".zst", randBytes(t, 24+8209+5))
	put("main/basebackups_005/base_000000010000000000000003/tar_partitions/part_001.tar", tarLike(t, 1024)) // no sentinel
	put("main/basebackups_005/base_000000010000000000000005_backup_stop_sentinel.json", []byte("{"))        // no objects

	var progress bytes.Buffer
	sum, err := rebuild.Run(context.Background(), be, "local", config.CatalogPath(data), &progress)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	var out bytes.Buffer
	sum.Print(&out)
	t.Log(out.String())
	if sum.Unknown != len(unknown) || sum.Damaged != 1 || sum.Incomplete != 2 || sum.WAL != 1 || sum.Foreign != 2 {
		t.Fatalf("summary %+v", sum)
	}
	for _, k := range append(unknown, "main/wal_005/"+seg2+".zst") {
		if !strings.Contains(out.String(), k) {
			t.Errorf("the summary does not name %s", k)
		}
		if _, err := be.Stat(context.Background(), k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	obj, err := cat.WAL(cluster, seg1)
	if err != nil || obj.ContentID != "sha256:"+sha(seg) || obj.PlainSize != 1<<20 || obj.Encryption != "none" || obj.Compression != "none" {
		t.Fatalf("%s: %+v, %v", seg1, obj, err)
	}
	if list, err := cat.Backups(cluster, ""); err != nil || len(list) != 0 {
		t.Fatalf("backups cataloged: %+v, %v", list, err)
	}
}

// encodeObject makes an object as walgate and WAL-G write it.
func encodeObject(t *testing.T, plain []byte, comp codec.Compression, key *codec.Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, comp, key)
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

func tarOf(t *testing.T, name string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	return buf.Bytes()
}

// TestRebuildDetectsEncryption: objects without walgate metadata, in every
// compression with and without a key, are cataloged with the encryption
// they have and, when plain, the content ID a walgate client would send.
func TestRebuildDetectsEncryption(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	be, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	key, err := codec.ParseKey("ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d", "hex")
	if err != nil {
		t.Fatal(err)
	}
	put := func(k string, body []byte) {
		if _, err := be.Put(context.Background(), k, bytes.NewReader(body), int64(len(body)), backends.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	segment := bytes.Repeat(randBytes(t, 4096), 256) // 1 MiB, compressible
	history := []byte("1\t0/3000000\tno recovery target specified\n")
	type want struct{ enc, id string }
	wants := map[string]want{}
	tli := 1
	for _, comp := range []codec.Compression{codec.Zstd, codec.LZ4, codec.Brotli, codec.None} {
		for _, k := range []*codec.Key{nil, key} {
			seg := fmt.Sprintf("%08X0000000000000001", tli)
			hist := fmt.Sprintf("%08X.history", tli)
			tli++
			ext := ""
			if comp.Ext() != "" {
				ext = "." + comp.Ext()
			}
			put("main/wal_005/"+seg+ext, encodeObject(t, segment, comp, k))
			put("main/wal_005/"+hist+ext, encodeObject(t, history, comp, k))
			w := want{protocol.EncryptionNone, "sha256:" + sha(segment)}
			wh := want{protocol.EncryptionNone, "sha256:" + sha(history)}
			if k != nil {
				w = want{protocol.EncryptionLibsodium, layout.ContentIDUnknown}
				wh = w
			}
			wants[seg], wants[hist] = w, wh

			// A committed backup of tars in the same encoding.
			name := "base_" + seg
			bkey := func(f string) string { return "main/basebackups_005/" + name + "/" + f }
			put(bkey("tar_partitions/part_001.tar"+ext), encodeObject(t, tarOf(t, "base/1/1", segment[:20000]), comp, k))
			put(bkey("tar_partitions/pg_control.tar"+ext), encodeObject(t, tarOf(t, "global/pg_control", segment[:8192]), comp, k))
			put(bkey("metadata.json"), []byte(`{}`))
			put("main/basebackups_005/"+name+"_backup_stop_sentinel.json",
				[]byte(`{"LSN":16777256,"FinishLSN":16777472,"FinishTime":"2026-11-25T01:00:05Z"}`))
			wants[name] = want{enc: w.enc}
		}
	}
	sum, err := rebuild.Run(context.Background(), be, "local", config.CatalogPath(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.WAL != 16 || sum.FullBackups != 8 || sum.Damaged+sum.Unknown+sum.Incomplete != 0 || sum.ForeignEncrypted != 8 {
		t.Fatalf("summary %+v", sum)
	}
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
	for name, w := range wants {
		if strings.HasPrefix(name, "base_") {
			b, err := cat.Backup(cluster, name)
			if err != nil {
				t.Fatal(err)
			}
			for f, rec := range b.Files {
				wantEnc := w.enc
				if strings.HasSuffix(f, ".json") {
					wantEnc = protocol.EncryptionNone
				}
				if rec.Encryption != wantEnc {
					t.Errorf("%s/%s: encryption %s, want %s", name, f, rec.Encryption, wantEnc)
				}
			}
			continue
		}
		obj, err := cat.WAL(cluster, name)
		if err != nil {
			t.Fatal(err)
		}
		if obj.Encryption != w.enc || obj.ContentID != w.id {
			t.Errorf("%s (%s): encryption %s, content ID %s; want %s, %s", name, obj.Compression, obj.Encryption, obj.ContentID, w.enc, w.id)
		}
	}
}
