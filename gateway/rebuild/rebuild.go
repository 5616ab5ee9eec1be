package rebuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/index/pgname"
)

// A catalog rebuild (walgate index rebuild --from NAME) lists one backend
// and writes a fresh catalog from what it finds, because the catalog is a
// cache of the stores (DESIGN.md, guarantee 5):
//
//   - WAL objects (<cluster>/wal_005/<name>[.<ext>]) from the metadata the
//     gateway stores with each object; objects without it (written by
//     stock WAL-G) from the key and the bytes: compression from the
//     extension, encryption from the bytes (see detectEncryption), SHA-256
//     by reading the object, and for unencrypted objects the plaintext
//     content ID and size by decoding it.
//   - Backups (<cluster>/basebackups_005/<name>/...) are committed iff their
//     sentinel exists; its JSON fills the record as commitBackup does. Each
//     object is read for its SHA-256 (backup objects carry none).
//   - Each cluster's PostgreSQL system (index.ClusterSystem) from the
//     system-identifier metadata of its WAL objects and its sentinels
//     (writeSystems).
//   - Everything else is counted and reported, never touched.
//
// Tokens and drill reports live in no store: they are carried over from
// the previous catalog when it can be read. The new catalog is written
// beside the old one and swapped in with a rename; the old one is kept.

// Summary is what a catalog rebuild found and cataloged.
type Summary struct {
	Backend          string   `json:"backend"`
	Objects          int      `json:"objects"`  // listed
	Bytes            int64    `json:"bytes"`    // listed
	Clusters         int      `json:"clusters"` // with at least one cataloged object
	WAL              int      `json:"wal"`
	FullBackups      int      `json:"full_backups"`
	DeltaBackups     int      `json:"delta_backups"`
	Incomplete       int      `json:"incomplete_backups"` // objects without a (valid) sentinel: not cataloged
	Unknown          int      `json:"unknown_objects"`    // outside walgate's layout: left alone
	Damaged          int      `json:"damaged_objects"`    // in the layout but unreadable as what the name says
	Foreign          int      `json:"without_metadata"`   // objects without walgate metadata
	ForeignEncrypted int      `json:"foreign_encrypted_wal"`
	TokensCarried    int      `json:"tokens_carried"`
	DrillsCarried    int      `json:"drills_carried"`
	OldCatalog       string   `json:"old_catalog,omitempty"` // where the previous catalog was kept
	Notes            []string `json:"notes,omitempty"`
}

// Print writes the summary as a short table, then the notes.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "catalog rebuilt from backend %s: %d objects, %.1f MiB\n", s.Backend, s.Objects, float64(s.Bytes)/(1<<20))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(label string, n int, comment string) {
		if comment == "" {
			fmt.Fprintf(tw, "  %s\t%d\n", label, n)
		} else {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", label, n, comment)
		}
	}
	row("clusters", s.Clusters, "")
	wal := ""
	if s.ForeignEncrypted > 0 {
		wal = fmt.Sprintf("%d encrypted without walgate metadata: content identity unknown", s.ForeignEncrypted)
	}
	row("WAL files", s.WAL, wal)
	row("backups", s.FullBackups+s.DeltaBackups, fmt.Sprintf("%d full, %d delta", s.FullBackups, s.DeltaBackups))
	row("incomplete backups", s.Incomplete, "no sentinel: not cataloged, not deleted")
	row("without walgate metadata", s.Foreign, "objects written by WAL-G or by hand")
	row("damaged objects", s.Damaged, "not cataloged, left alone")
	row("unknown objects", s.Unknown, "not walgate's layout: left alone")
	row("tokens carried over", s.TokensCarried, "")
	row("drill reports carried over", s.DrillsCarried, "")
	tw.Flush()
	if s.OldCatalog != "" {
		fmt.Fprintf(w, "previous catalog kept as %s\n", s.OldCatalog)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// ErrCatalogInUse: the catalog file is locked, by a running gateway.
var ErrCatalogInUse = errors.New("the catalog is in use: stop the gateway first")

// maxNotes bounds the notes a summary lists; the counts stay exact.
const maxNotes = 50

type rebuildState struct {
	ctx         context.Context
	be          backends.Backend
	backendName string
	progress    io.Writer
	sum         Summary

	mu       sync.Mutex
	notes    []string
	extra    int // notes beyond maxNotes
	done     int // objects read so far
	toRead   int
	lastTick time.Time
}

func (r *rebuildState) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.notes) >= maxNotes {
		r.extra++
		return
	}
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *rebuildState) logf(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, "rebuild: "+format+"\n", args...)
	}
}

// tick counts one object read and prints progress at most every 2 s.
func (r *rebuildState) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	if r.progress != nil && (time.Since(r.lastTick) > 2*time.Second || r.done == r.toRead) {
		r.lastTick = time.Now()
		fmt.Fprintf(r.progress, "rebuild: read %d of %d objects\n", r.done, r.toRead)
	}
}

type walItem struct {
	cluster, name, comp string
	info                backends.ObjectInfo
	rec                 index.WALObject
	ok                  bool // rec is to be cataloged
}

type backupGroup struct {
	cluster, name string
	files         map[string]backends.ObjectInfo
	sentinel      *backends.ObjectInfo
	recs          map[string]index.BackupFile
	failed        bool
}

// Run lists the whole backend be (named backendName in the config) and
// replaces the catalog at catalogPath with one built from what it holds.
// The new catalog is written to catalogPath+".rebuild" and renamed into
// place; the previous one is kept as catalogPath+".old-<UTC timestamp>",
// and its tokens and drill reports are carried over. A catalog locked by
// a running gateway makes it fail with ErrCatalogInUse, changing nothing;
// so does any storage error. Progress lines go to progress (nil: none).
func Run(ctx context.Context, be backends.Backend, backendName string, catalogPath string, progress io.Writer) (Summary, error) {
	r := &rebuildState{ctx: ctx, be: be, backendName: backendName, progress: progress, sum: Summary{Backend: backendName}}

	// Hold the previous catalog's lock for the whole rebuild, so that no
	// gateway starts on it and writes what the swap would then drop.
	var old *index.Catalog
	oldExists := false
	if _, err := os.Stat(catalogPath); err == nil {
		oldExists = true
		old, err = index.OpenExclusive(catalogPath, 2*time.Second)
		switch {
		case errors.Is(err, index.ErrLocked):
			return r.sum, fmt.Errorf("%w (%s is locked by another process; a catalog rebuild replaces the catalog and must run alone)", ErrCatalogInUse, catalogPath)
		case errors.Is(err, index.ErrSchema):
			return r.sum, fmt.Errorf("%w: rebuild with the walgate version that wrote it, or move the file away first", err)
		case err != nil:
			return r.sum, fmt.Errorf("%w; its tokens could not be carried over, so nothing was changed: to rebuild without them, move the file away (mv %s %s.broken), run again, and issue new tokens with 'walgate token add'", err, catalogPath, catalogPath)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return r.sum, fmt.Errorf("catalog: %w", err)
	}
	if old != nil {
		defer old.Close()
	}

	tokens, drills, err := r.carryOver(old)
	if err != nil {
		return r.sum, err
	}

	r.logf("listing backend %s", backendName)
	var infos []backends.ObjectInfo
	err = be.List(ctx, "", func(info backends.ObjectInfo) error {
		infos = append(infos, info)
		r.sum.Objects++
		r.sum.Bytes += info.Size
		if progress != nil && r.sum.Objects%10000 == 0 {
			r.logf("listed %d objects", r.sum.Objects)
		}
		return nil
	})
	if err != nil {
		return r.sum, fmt.Errorf("listing backend %s: %w", backendName, err)
	}
	r.logf("listed %d objects (%.1f MiB)", r.sum.Objects, float64(r.sum.Bytes)/(1<<20))

	wals, groups := r.classify(infos)
	if err := r.inspect(wals, groups); err != nil {
		return r.sum, err
	}

	newPath := catalogPath + ".rebuild"
	if err := os.Remove(newPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return r.sum, fmt.Errorf("removing a leftover %s: %w", newPath, err)
	}
	cat, err := index.OpenExclusive(newPath, time.Second)
	if err != nil {
		return r.sum, err
	}
	fail := func(err error) (Summary, error) {
		cat.Close()
		os.Remove(newPath)
		return r.sum, err
	}
	if err := r.write(cat, wals, groups, tokens, drills); err != nil {
		return fail(fmt.Errorf("writing the new catalog: %w", err))
	}
	if err := cat.Check(); err != nil {
		return fail(fmt.Errorf("the new catalog fails its check (a bug; nothing was replaced): %w", err))
	}

	// Swap: keep the old file under a second name (a hard link, so that
	// catalogPath never goes missing), then rename the new one over it.
	if oldExists {
		keep, err := keepPrevious(catalogPath, time.Now())
		if err != nil {
			return fail(err)
		}
		r.sum.OldCatalog = keep
	}
	if err := os.Rename(newPath, catalogPath); err != nil {
		return fail(fmt.Errorf("moving the new catalog into place: %w", err))
	}
	if d, err := os.Open(filepath.Dir(catalogPath)); err == nil {
		d.Sync()
		d.Close()
	}
	if err := cat.Close(); err != nil {
		return r.sum, err
	}
	r.finishNotes()
	return r.sum, nil
}

// keepPrevious keeps the catalog at path under a name of its own,
// path.old-<UTC time>, with -2, -3 ... appended when a rebuild earlier in
// the same second kept one: a hard link where the filesystem has them (path
// never goes missing), a rename where it does not. It never replaces a file.
func keepPrevious(path string, now time.Time) (string, error) {
	base := path + ".old-" + now.UTC().Format("20060102T150405Z")
	for n := 1; n <= 1000; n++ {
		keep := base
		if n > 1 {
			keep = fmt.Sprintf("%s-%d", base, n)
		}
		err := os.Link(path, keep)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// No hard links here: rename, but never over a file.
			if _, serr := os.Lstat(keep); serr == nil {
				continue
			}
			if err := os.Rename(path, keep); err != nil {
				return "", fmt.Errorf("keeping the previous catalog as %s: %w", keep, err)
			}
		}
		return keep, nil
	}
	return "", fmt.Errorf("keeping the previous catalog: %s and 999 numbered names after it are taken; remove old %s.old-* files", base, path)
}

func (r *rebuildState) finishNotes() {
	sort.Strings(r.notes)
	r.sum.Notes = r.notes
	if r.extra > 0 {
		r.sum.Notes = append(r.sum.Notes, fmt.Sprintf("... and %d more notes", r.extra))
	}
}

type drillSet struct {
	cluster string
	recs    []index.DrillRecord
}

// carryOver reads what lives only in the catalog: tokens (an unreadable
// token is an error: hosts would lose access) and drill reports (noted).
func (r *rebuildState) carryOver(old *index.Catalog) (map[[32]byte]index.Token, []drillSet, error) {
	if old == nil {
		return nil, nil, nil
	}
	tokens, err := old.TokenRecords()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the tokens of the current catalog: %w; nothing was changed: to rebuild without them, move the file away, run again, and issue new tokens with 'walgate token add'", err)
	}
	var drills []drillSet
	clusters, err := old.Clusters()
	if err != nil {
		r.note("the previous catalog's drill reports cannot be read (%v): none were carried over", err)
		return tokens, nil, nil
	}
	for _, cl := range clusters {
		recs, err := old.Drills(cl.Name, 0)
		if err != nil {
			r.note("cluster %s: the previous catalog's drill reports cannot be read (%v): not carried over", cl.Name, err)
			continue
		}
		if len(recs) > 0 {
			drills = append(drills, drillSet{cl.Name, recs})
		}
	}
	return tokens, drills, nil
}

// splitWALObject parses the last part of a WAL key: a PostgreSQL archive
// file name with an optional compression extension.
func splitWALObject(base string) (name, comp string, ok bool) {
	if _, err := protocol.ValidateWALName(base); err == nil {
		return base, "none", true
	}
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return "", "", false
	}
	comp, known := layout.CompressionOfExt(base[i+1:])
	if !known {
		return "", "", false
	}
	if _, err := protocol.ValidateWALName(base[:i]); err != nil {
		return "", "", false
	}
	return base[:i], comp, true
}

// backupFileName checks an object name inside a backup: the gateway's
// grammar, plus WAL-G's .lzma tar partitions (cataloged, noted).
func backupFileName(file string) bool {
	if protocol.ValidateBackupFile(file) == nil {
		return true
	}
	stem, ok := strings.CutSuffix(file, ".lzma")
	return ok && strings.HasSuffix(stem, ".tar") && protocol.ValidateBackupFile(stem) == nil
}

// classify sorts listed objects into WAL, backup groups and unknown ones.
func (r *rebuildState) classify(infos []backends.ObjectInfo) ([]*walItem, []*backupGroup) {
	var wals []*walItem
	seen := map[string]*walItem{} // cluster/name
	groups := map[string]*backupGroup{}
	group := func(cluster, name string) *backupGroup {
		k := cluster + "/" + name
		g := groups[k]
		if g == nil {
			g = &backupGroup{cluster: cluster, name: name, files: map[string]backends.ObjectInfo{}}
			groups[k] = g
		}
		return g
	}
	unknown := func(info backends.ObjectInfo, why string) {
		r.sum.Unknown++
		r.note("unknown object %s (%s): left alone", info.Key, why)
	}
	for _, info := range infos {
		cluster, rest, _ := strings.Cut(info.Key, "/")
		area, rest, _ := strings.Cut(rest, "/")
		if area != layout.WALDir && area != layout.BackupDir {
			unknown(info, "not under <cluster>/wal_005/ or <cluster>/basebackups_005/")
			continue
		}
		if err := protocol.ValidateCluster(cluster); err != nil {
			unknown(info, err.Error())
			continue
		}
		if area == layout.WALDir {
			name, comp, ok := splitWALObject(rest)
			if !ok {
				unknown(info, "not a PostgreSQL WAL file name with a zst, lz4, br or lzma extension")
				continue
			}
			if prev := seen[cluster+"/"+name]; prev != nil {
				r.sum.Unknown++
				r.note("unknown object %s: a second object for WAL file %s of cluster %s (the first, %s, is cataloged): left alone", info.Key, name, cluster, prev.info.Key)
				continue
			}
			w := &walItem{cluster: cluster, name: name, comp: comp, info: info}
			seen[cluster+"/"+name] = w
			wals = append(wals, w)
			continue
		}
		if name, ok := strings.CutSuffix(rest, layout.SentinelSuffix); ok && !strings.Contains(name, "/") {
			if protocol.ValidateBackupName(name) != nil {
				unknown(info, "not a backup sentinel of a valid backup name")
				continue
			}
			i := info
			group(cluster, name).sentinel = &i
			continue
		}
		name, file, _ := strings.Cut(rest, "/")
		if protocol.ValidateBackupName(name) != nil || !backupFileName(file) {
			unknown(info, "not an object of a backup in WAL-G's layout")
			continue
		}
		group(cluster, name).files[file] = info
	}
	var out []*backupGroup
	for _, g := range groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].cluster != out[j].cluster {
			return out[i].cluster < out[j].cluster
		}
		return out[i].name < out[j].name
	})
	return wals, out
}

// inspect reads what needs reading (several objects at once) and fills
// the records.
func (r *rebuildState) inspect(wals []*walItem, groups []*backupGroup) error {
	var jobs []func() error
	for _, w := range wals {
		if rec, ok := r.walFromMetadata(w); ok {
			w.rec, w.ok = rec, true
			continue
		}
		w := w
		jobs = append(jobs, func() error { return r.inspectWAL(w) })
	}
	var gmu sync.Mutex
	for _, g := range groups {
		if g.sentinel == nil {
			continue // incomplete: nothing to read
		}
		g.recs = map[string]index.BackupFile{}
		for file, info := range g.files {
			g, file, info := g, file, info
			jobs = append(jobs, func() error {
				rec, err := r.inspectBackupFile(g, file, info)
				if err != nil {
					return err
				}
				gmu.Lock()
				defer gmu.Unlock()
				if rec == nil {
					g.failed = true
				} else {
					g.recs[file] = *rec
				}
				return nil
			})
		}
	}
	r.toRead = len(jobs)
	if len(jobs) > 0 {
		r.logf("reading %d objects (WAL without walgate metadata, backup objects)", len(jobs))
	}
	return runJobs(r.ctx, 8, jobs)
}

// runJobs runs jobs, n at a time; the first error stops the rest (a job
// not yet started does not start; a cancelled ctx is an error).
func runJobs(ctx context.Context, n int, jobs []func() error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, job := range jobs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			return job()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// walFromMetadata builds the record from the metadata putWAL stores, when
// it is there and agrees with the key.
func (r *rebuildState) walFromMetadata(w *walItem) (index.WALObject, bool) {
	md := w.info.Metadata
	if md[layout.MetaKind] != layout.KindWAL {
		return index.WALObject{}, false
	}
	plain, err := strconv.ParseInt(md[layout.MetaPlainSize], 10, 64)
	sum, herr := hex.DecodeString(md[layout.MetaSHA256])
	switch {
	case md[layout.MetaCluster] != w.cluster || md[layout.MetaName] != w.name || md[layout.MetaCompression] != w.comp,
		md[layout.MetaEncryption] != protocol.EncryptionNone && md[layout.MetaEncryption] != protocol.EncryptionLibsodium,
		herr != nil || len(sum) != sha256.Size || !protocol.ValidContentID(md[layout.MetaContentID]), err != nil || plain < 0:
		r.note("%s: its walgate metadata is incomplete or disagrees with the key; derived from the object instead", w.info.Key)
		return index.WALObject{}, false
	}
	obj := index.WALObject{
		Name: w.name, Key: w.info.Key, Backend: r.backendName, Size: w.info.Size,
		SHA256: md[layout.MetaSHA256], ContentID: md[layout.MetaContentID], PlainSize: plain,
		Compression: w.comp, Encryption: md[layout.MetaEncryption], StoredAt: w.info.Modified.UTC(),
		KeyFingerprint: metaKeyFingerprint(md),
	}
	if p, l := md[layout.MetaTimelineParent], md[layout.MetaSwitchLSN]; p != "" {
		n, perr := strconv.ParseUint(p, 10, 32)
		lsn, lerr := pgname.ParseLSN(l)
		if perr == nil && lerr == nil {
			obj.TimelineParent, obj.SwitchLSN = uint32(n), uint64(lsn)
		}
	}
	return obj, true
}

// inspectWAL reads a WAL object without (usable) metadata: its SHA-256,
// its encryption, and when it is not encrypted its plaintext's content ID
// and size, which are what a walgate client without a key sends for the
// same segment.
func (r *rebuildState) inspectWAL(w *walItem) error {
	defer r.tick()
	if w.info.Metadata[layout.MetaKind] != layout.KindWAL {
		r.mu.Lock()
		r.sum.Foreign++
		r.mu.Unlock()
	}
	res, err := r.readObject(w.info, w.comp, w.name, false)
	if err != nil {
		return err
	}
	if res.damaged != nil {
		r.mu.Lock()
		r.sum.Damaged++
		r.mu.Unlock()
		r.note("%s: %v: not cataloged", w.info.Key, res.damaged)
		return nil
	}
	w.rec = index.WALObject{
		Name: w.name, Key: w.info.Key, Backend: r.backendName, Size: res.size, SHA256: res.sha256,
		Compression: w.comp, Encryption: res.encryption, StoredAt: w.info.Modified.UTC(),
	}
	if res.encryption == protocol.EncryptionNone {
		w.rec.ContentID, w.rec.PlainSize = "sha256:"+res.plainSHA256, res.plainSize
	} else {
		w.rec.ContentID = layout.ContentIDUnknown
		r.mu.Lock()
		r.sum.ForeignEncrypted++
		r.mu.Unlock()
	}
	w.ok = true
	return nil
}

// inspectBackupFile hashes one object of a committed backup; nil when it
// is damaged (noted).
func (r *rebuildState) inspectBackupFile(g *backupGroup, file string, info backends.ObjectInfo) (*index.BackupFile, error) {
	defer r.tick()
	md := info.Metadata
	comp := layout.FileCompression(file)
	isJSON := strings.HasSuffix(file, ".json")
	fromMD := md[layout.MetaKind] == layout.KindBackup && md[layout.MetaFile] == file && md[layout.MetaCompression] == comp &&
		(md[layout.MetaEncryption] == protocol.EncryptionNone || md[layout.MetaEncryption] == protocol.EncryptionLibsodium)
	if !fromMD {
		r.mu.Lock()
		r.sum.Foreign++
		r.mu.Unlock()
	}
	var res objectResult
	var err error
	if fromMD || isJSON {
		res, err = r.hashOnly(info)
		res.encryption = protocol.EncryptionNone
		if fromMD {
			res.encryption = md[layout.MetaEncryption]
		}
	} else {
		res, err = r.readObject(info, comp, "", true)
	}
	if err != nil {
		return nil, err
	}
	if res.damaged != nil {
		r.mu.Lock()
		r.sum.Damaged++
		r.mu.Unlock()
		r.note("%s: %v", info.Key, res.damaged)
		return nil, nil
	}
	rec := &index.BackupFile{Key: info.Key, Size: res.size, SHA256: res.sha256, Compression: comp, Encryption: res.encryption}
	if fromMD {
		rec.KeyFingerprint = metaKeyFingerprint(md)
	}
	return rec, nil
}

// metaKeyFingerprint is the key fingerprint an object's metadata records,
// "" when none or not a valid one (the client then tries its keys).
func metaKeyFingerprint(md map[string]string) string {
	fp := md[layout.MetaKeyFingerprint]
	if md[layout.MetaEncryption] != protocol.EncryptionLibsodium || !protocol.ValidKeyFingerprint(fp) {
		return ""
	}
	return fp
}

type objectResult struct {
	size        int64
	sha256      string
	encryption  string
	plainSHA256 string // WAL, unencrypted
	plainSize   int64
	damaged     error // the bytes are not what the name says
}

func (r *rebuildState) open(info backends.ObjectInfo) (io.ReadCloser, *codec.HashReader, error) {
	rc, err := r.be.Get(r.ctx, info.Key, 0, -1)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, err)
	}
	return rc, codec.NewHashReader(rc), nil
}

func (r *rebuildState) hashOnly(info backends.ObjectInfo) (objectResult, error) {
	rc, ch, err := r.open(info)
	if err != nil {
		return objectResult{}, err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, ch); err != nil {
		return objectResult{}, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, err)
	}
	return objectResult{size: ch.Size(), sha256: ch.SHA256()}, nil
}

// Leading bytes of the compressed containers (docs/codec.md, section 2).
var (
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// maxPlain bounds a decoded WAL file: PostgreSQL's largest segment.
const maxPlain = 1 << 30

// readObject reads an object without walgate metadata once: SHA-256 and
// size of the stored bytes, whether it is encrypted, and for a WAL file
// (wal true via name != "") that is not, the plaintext's SHA-256 and size.
// A read failure of the backend is an error; bytes that are not what the
// name says are reported in damaged.
//
// Encryption is detected from the bytes, since WAL-G marks it nowhere (the
// vectors' README: "encryption adds no extension"): a zstd, lz4 or lzma
// stream starts with its magic number, which a libsodium object (24
// random header bytes) does not; brotli has no magic, so an object that
// decodes is plain and one that does not is taken as encrypted; a
// libsodium object must also have the exact size the chunking implies
// (docs/codec.md 3.2), else it is damaged.
func (r *rebuildState) readObject(info backends.ObjectInfo, comp, walName string, isTar bool) (objectResult, error) {
	rc, ch, err := r.open(info)
	if err != nil {
		return objectResult{}, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(ch, 64<<10)
	head, _ := br.Peek(600)
	head = bytes.Clone(head)

	var res objectResult
	encrypted := false
	decode := walName != "" // decode the whole plaintext (WAL)
	switch comp {
	case "zstd":
		encrypted = !bytes.HasPrefix(head, magicZstd)
	case "lz4":
		encrypted = !bytes.HasPrefix(head, magicLZ4)
	case "lzma":
		encrypted = !lzmaHeader(head)
	case "brotli":
		// Decided by decoding, below.
	case "none":
		encrypted = !plainLooking(walName, isTar, head, info.Size) && codec.EncryptedSizePossible(info.Size)
	}

	var plain hash.Hash
	var plainN int64
	var derr error
	if !encrypted && comp != "none" && (decode || comp == "brotli") {
		plain = sha256.New()
		var dec io.ReadCloser
		dec, derr = codec.NewReader(br, codec.Compression(comp), nil)
		if derr == nil {
			defer dec.Close()
			if decode {
				plainN, derr = io.Copy(plain, io.LimitReader(dec, maxPlain+1))
				if derr == nil && plainN > maxPlain {
					derr = errors.New("decodes to more than 1 GiB")
				}
			} else {
				// A tar partition: its first header must decode.
				buf := make([]byte, 512)
				_, derr = io.ReadFull(dec, buf)
				if derr == nil && !bytes.Equal(buf[257:262], []byte("ustar")) {
					derr = errors.New("does not decode to a tar archive")
				}
			}
		}
		if derr != nil && comp == "brotli" {
			encrypted, derr = true, nil
		}
	} else if comp == "none" && decode && !encrypted {
		plain = sha256.New()
		plainN, derr = io.Copy(plain, br)
		if derr != nil {
			return res, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, derr)
		}
	}
	// Read to the end for the stored bytes' hash and size.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return res, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, err)
	}
	if ch.Size() != info.Size {
		return res, fmt.Errorf("reading %s from backend %s: got %d bytes, listed with %d", info.Key, r.backendName, ch.Size(), info.Size)
	}
	res.size, res.sha256 = ch.Size(), ch.SHA256()
	res.encryption = protocol.EncryptionNone
	switch {
	case derr != nil:
		res.damaged = fmt.Errorf("not a valid %s stream (%v)", comp, derr)
	case encrypted && !codec.EncryptedSizePossible(res.size):
		res.damaged = fmt.Errorf("neither a %s stream nor a libsodium object of a possible size", comp)
	case encrypted:
		res.encryption = protocol.EncryptionLibsodium
	case decode:
		res.plainSHA256, res.plainSize = hex.EncodeToString(plain.Sum(nil)), plainN
	}
	return res, nil
}

// lzmaHeader reports whether head starts like an LZMA "alone" stream:
// properties byte 0x5D (lc=3, lp=0, pb=2, what WAL-G writes) and a power of
// two dictionary between 4 KiB and 1 GiB.
func lzmaHeader(head []byte) bool {
	if len(head) < 13 || head[0] != 0x5d {
		return false
	}
	dict := binary.LittleEndian.Uint32(head[1:5])
	return dict >= 4<<10 && dict <= 1<<30 && dict&(dict-1) == 0
}

// plainLooking reports whether an uncompressed object looks like the
// plaintext its name promises: a WAL segment has a power-of-two size, a
// history or backup history file is text, a tar has a tar header.
func plainLooking(walName string, isTar bool, head []byte, size int64) bool {
	switch {
	case isTar:
		return len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
	case strings.HasSuffix(walName, ".history") || strings.HasSuffix(walName, ".backup"):
		return utf8.Valid(head) && !bytes.ContainsRune(head, 0)
	}
	return size > 0 && size&(size-1) == 0
}

// write fills the new catalog.
func (r *rebuildState) write(cat *index.Catalog, wals []*walItem, groups []*backupGroup, tokens map[[32]byte]index.Token, drills []drillSet) error {
	clusters := map[string]bool{}
	byCluster := map[string][]index.WALObject{}
	for _, w := range wals {
		if w.ok {
			byCluster[w.cluster] = append(byCluster[w.cluster], w.rec)
		}
	}
	for cl, objs := range byCluster {
		for len(objs) > 0 {
			n := min(len(objs), 2000)
			if err := cat.AddWALBatch(cl, objs[:n]); err != nil {
				return err
			}
			objs = objs[n:]
			r.sum.WAL += n
		}
		clusters[cl] = true
	}
	for _, g := range groups {
		b, ok, err := r.backupRecord(g)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := cat.BeginBackup(g.cluster, b); err != nil {
			return err
		}
		clusters[g.cluster] = true
		if b.Info.Kind == "delta" {
			r.sum.DeltaBackups++
		} else {
			r.sum.FullBackups++
		}
	}
	// Deltas whose parent is missing from this backend cannot be restored.
	for _, g := range groups {
		b, err := cat.Backup(g.cluster, g.name)
		if err != nil || b.Info.DeltaFrom == "" {
			continue
		}
		if _, err := cat.Backup(g.cluster, b.Info.DeltaFrom); err != nil {
			r.note("backup %s of cluster %s is a delta of %s, which is not in this backend: it cannot be restored", g.name, g.cluster, b.Info.DeltaFrom)
		}
	}
	if err := r.writeSystems(cat, wals, groups); err != nil {
		return err
	}
	r.sum.Clusters = len(clusters)
	for h, t := range tokens {
		if err := cat.AddToken(h, t); err != nil {
			return err
		}
		r.sum.TokensCarried++
	}
	for _, d := range drills {
		for _, rec := range d.recs {
			if err := cat.AddDrill(d.cluster, rec); err != nil {
				return err
			}
			r.sum.DrillsCarried++
		}
	}
	return nil
}

// backupRecord builds a committed backup's record from its sentinel, as
// commitBackup does; false (noted) when the backup cannot be cataloged.
func (r *rebuildState) backupRecord(g *backupGroup) (index.Backup, bool, error) {
	where := fmt.Sprintf("backup %s of cluster %s", g.name, g.cluster)
	if g.sentinel == nil {
		r.sum.Incomplete++
		r.note("%s: %d objects but no sentinel (an interrupted upload): incomplete backup, not cataloged, not deleted", where, len(g.files))
		return index.Backup{}, false, nil
	}
	if len(g.files) == 0 {
		r.sum.Incomplete++
		r.note("%s: a sentinel but no objects: not cataloged", where)
		return index.Backup{}, false, nil
	}
	if g.failed {
		r.sum.Incomplete++
		r.note("%s: damaged objects (above): not cataloged", where)
		return index.Backup{}, false, nil
	}
	sentinel, err := r.readSmall(*g.sentinel)
	if err != nil {
		return index.Backup{}, false, err
	}
	var sf layout.Sentinel
	if err := json.Unmarshal(sentinel, &sf); err != nil || sf.Check() != nil {
		r.sum.Incomplete++
		r.sum.Damaged++
		r.note("%s: the sentinel is not JSON with LSN, FinishLSN and FinishTime: not cataloged", where)
		return index.Backup{}, false, nil
	}
	if _, ok := layout.FindFile(g.recs, layout.ControlFile); !ok {
		r.note("%s: no tar_partitions/pg_control.tar*: cataloged, but it cannot be restored", where)
	}
	for f := range g.recs {
		if strings.HasSuffix(f, ".lzma") {
			r.note("%s: lzma-compressed objects (WAL-G): cataloged, but this gateway's fetch route serves only zst, lz4, br and uncompressed backup objects", where)
			break
		}
	}
	begun := g.sentinel.Modified
	for _, info := range g.files {
		if info.Modified.Before(begun) {
			begun = info.Modified
		}
	}
	b := index.Backup{
		Name: g.name, State: index.BackupCommitted, Backend: r.backendName,
		Begun: begun.UTC(), LastActivity: g.sentinel.Modified.UTC(), Committed: g.sentinel.Modified.UTC(),
		Files: g.recs, SentinelKey: g.sentinel.Key, SentinelSize: g.sentinel.Size,
		Info: index.BackupInfoOf(g.name, sf),
	}
	return b, true, nil
}

func (r *rebuildState) readSmall(info backends.ObjectInfo) ([]byte, error) {
	rc, err := r.be.Get(r.ctx, info.Key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s from backend %s: %w", info.Key, r.backendName, err)
	}
	return data, nil
}
