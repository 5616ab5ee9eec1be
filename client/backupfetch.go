package client

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/client/pgctl"
	"github.com/walgate/walgate/gateway/protocol"
)

// DefaultDownloadConcurrency is how many tar partitions a restore fetches
// at once unless told otherwise (WALGATE_DOWNLOAD_CONCURRENCY).
const DefaultDownloadConcurrency = 4

// RestoreOptions tune FetchBackup.
type RestoreOptions struct {
	// Tablespaces maps a tablespace OID to the directory it is restored
	// to instead of its location at backup time (which must then be empty
	// or absent).
	Tablespaces map[string]string
	// Concurrency is how many tar partitions are fetched and extracted at
	// once; 0 means DefaultDownloadConcurrency.
	Concurrency int
	// Fsync flushes every restored file and directory to stable storage
	// before FetchBackup returns.
	Fsync bool
	// Progress receives a progress line (a terminal); nil is quiet.
	Progress io.Writer
	// Recovery, when set, prepares the restored cluster for archive
	// recovery: recovery.signal and settings appended to
	// postgresql.auto.conf.
	Recovery *RecoverySettings
	// NoArchive sets archive_mode = off in the restored
	// postgresql.auto.conf: the copy keeps the source's archive_command,
	// and started as it is would archive into the source's archive.
	NoArchive bool

	// PgBin, when set, is the directory of the server programs that will
	// run the restored cluster: a backup of another PostgreSQL major is
	// refused before anything is written.
	PgBin string

	// tablespaceRoot, when set, sends every tablespace to
	// tablespaceRoot/<oid> (the drill's scratch directory).
	tablespaceRoot string
	// fileOps, when set, is told of each step that orders the restore on
	// disk ("syncfs", "write"), with its path, after it succeeded
	// ("write": before it starts), and of each object read and checked
	// ("fetched", with backup/object); tests check the order.
	fileOps func(op, path string)
}

// RecoverySettings are what FetchBackup writes for archive recovery.
type RecoverySettings struct {
	// RestoreCommand is restore_command, e.g.
	// "/usr/local/bin/walgate-client wal-fetch %f %p".
	RestoreCommand string
	// TargetTime and TargetLSN are recovery_target_time and
	// recovery_target_lsn; at most one. With a target,
	// recovery_target_action is promote.
	TargetTime string
	TargetLSN  string
	// Extra are further settings, name and value, appended after the
	// others (later lines win in PostgreSQL's configuration files).
	Extra [][2]string
}

// RestoredTablespace says where one tablespace was restored.
type RestoredTablespace struct {
	OID string
	Dir string
}

// RestoreResult describes a completed restore.
type RestoreResult struct {
	Backup      protocol.BackupDetail
	Dir         string
	Tablespaces []RestoredTablespace
	Objects     int   // objects fetched
	StoredBytes int64 // their stored (compressed, encrypted) size
	Took        time.Duration
	// Chain names the backups applied, newest first, for a delta backup.
	Chain []string
}

// FetchBackup restores the backup called name (or LATEST) into dir, which
// must be empty or absent (it is then created with mode 0700). Tar
// partitions are fetched, decrypted, decompressed and extracted in
// parallel; every object is read to its end, so its size and SHA-256 are
// checked against what the gateway recorded at backup time. The backup
// label and tablespace map are written after the partitions, pg_control
// last. Tablespaces go to their location at backup time unless
// opts.Tablespaces moves them; tablespace_map names the final locations and
// pg_tblspc/<oid> links to them.
//
// On failure everything this call created is removed again, so that a
// retry finds dir (and the tablespace locations) as they were.
func (c *Client) FetchBackup(ctx context.Context, name, dir string, opts RestoreOptions) (RestoreResult, error) {
	op := "backup-fetch " + name
	if name != protocol.Latest {
		if err := protocol.ValidateBackupName(name); err != nil {
			return RestoreResult{}, &Error{Kind: ErrRejected, Op: op, Message: "bad backup name", Err: err}
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return RestoreResult{}, &Error{Kind: ErrRejected, Op: op, Message: "bad directory " + dir, Err: err}
	}
	if err := CheckRestoreDir(abs); err != nil {
		return RestoreResult{}, &Error{Kind: ErrRejected, Op: op, Message: err.Error()}
	}
	detail, err := c.Backup(ctx, name)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrNotFound {
			if name == protocol.Latest {
				e.Message = fmt.Sprintf("cluster %s has no committed backup", c.cfg.Cluster)
			} else {
				e.Message = fmt.Sprintf("backup %s is not in the archive of cluster %s (see backup-list)", name, c.cfg.Cluster)
			}
		}
		return RestoreResult{}, err
	}
	if err := checkRestoreMajor(detail.PgVersion, opts.PgBin); err != nil {
		return RestoreResult{}, &Error{Kind: ErrRejected, Op: op + " (" + detail.Name + ")", Message: err.Error()}
	}
	return c.restore(ctx, detail, abs, opts)
}

// CheckRestoreDir fails unless dir is absent or an empty directory.
func CheckRestoreDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("it exists and is not a directory")
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(3)
	if err != nil && err != io.EOF {
		return err
	}
	if len(names) > 0 {
		sort.Strings(names)
		return fmt.Errorf("directory is not empty (it holds %s): restore into an empty or missing directory", strings.Join(names, ", "))
	}
	return nil
}

// restoreDir is a directory a restore writes into: created by it (and
// then removed on failure from its topmost created ancestor), or found
// empty (and then emptied again on failure).
type restoreDir struct {
	path    string
	created string      // topmost directory this restore created; "" if path existed
	mode    os.FileMode // mode of an existing path
}

func prepareRestoreDir(path string) (restoreDir, error) {
	if err := CheckRestoreDir(path); err != nil {
		return restoreDir{}, err
	}
	if fi, err := os.Stat(path); err == nil {
		d := restoreDir{path: path, mode: fi.Mode().Perm()}
		return d, os.Chmod(path, 0o700)
	}
	// Make path and its missing parents one at a time, top down. Only a
	// directory whose mkdir succeeded here is this restore's to remove: a
	// parent another process makes meanwhile (a second restore into a
	// sibling) is left alone, and a directory that existed is never named.
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(missing) == 0 { // a dangling symbolic link, or made meanwhile
		return restoreDir{}, &fs.PathError{Op: "mkdir", Path: path, Err: fs.ErrExist}
	}
	d := restoreDir{path: path}
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		switch {
		case err == nil:
			if d.created == "" {
				d.created = missing[i]
			}
		case errors.Is(err, fs.ErrExist) && i > 0:
			// A parent made by another process meanwhile: not ours.
		default:
			if d.created != "" {
				os.RemoveAll(d.created)
			}
			return restoreDir{}, err
		}
	}
	return d, nil
}

// undo removes what the restore put there.
func (d restoreDir) undo() error {
	if d.created != "" {
		return os.RemoveAll(d.created)
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	var first error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d.path, e.Name())); err != nil && first == nil {
			first = err
		}
	}
	if err := os.Chmod(d.path, d.mode); err != nil && first == nil {
		first = err
	}
	return first
}

// backupObjects sorts a backup's objects into what a restore needs.
type backupObjects struct {
	parts   []string // tar_partitions/part_NNN.tar*, by number
	control string   // tar_partitions/pg_control.tar*
	label   string   // tar_partitions/backup_label.tar*
}

func sortObjects(files map[string]protocol.BackupFile) (backupObjects, error) {
	var o backupObjects
	num := map[string]int{}
	for name := range files {
		base, ok := strings.CutPrefix(name, basebackup.TarFolder+"/")
		if !ok {
			continue
		}
		stem, _, _ := strings.Cut(base, ".tar")
		switch {
		case stem == "pg_control":
			if o.control != "" {
				return o, fmt.Errorf("the backup has two pg_control tars, %s and %s", o.control, name)
			}
			o.control = name
		case stem == "backup_label":
			if o.label != "" {
				return o, fmt.Errorf("the backup has two backup_label tars, %s and %s", o.label, name)
			}
			o.label = name
		case strings.HasPrefix(stem, "part_"):
			n, err := strconv.Atoi(stem[len("part_"):])
			if err != nil {
				return o, fmt.Errorf("unexpected object %s", name)
			}
			num[name] = n
			o.parts = append(o.parts, name)
		default:
			return o, fmt.Errorf("unexpected object %s", name)
		}
	}
	sort.Slice(o.parts, func(i, j int) bool { return num[o.parts[i]] < num[o.parts[j]] })
	switch {
	case o.control == "":
		return o, errors.New("the backup has no tar_partitions/pg_control.tar*: it cannot be restored")
	case o.label == "":
		return o, errors.New("the backup has no tar_partitions/backup_label.tar*: without backup_label PostgreSQL cannot recover it")
	}
	return o, nil
}

// objectCodec returns how to decode one stored object: its compression
// and the keys that may open it (see decodeKeys).
func (c *Client) objectCodec(op, file string, f protocol.BackupFile) (codec.Compression, []*codec.Key, error) {
	comp := codec.Compression(f.Compression)
	if comp == "" {
		comp = codec.Compression(protocol.FileCompression(file))
	}
	switch comp {
	case codec.Zstd, codec.LZ4, codec.Brotli, codec.None, codec.LZMA:
	default:
		return "", nil, &Error{Kind: ErrIntegrity, Op: op, Message: fmt.Sprintf("%s has unknown compression %q", file, f.Compression)}
	}
	if strings.HasSuffix(file, ".json") && (f.Encryption == protocol.EncryptionNone || f.Encryption == "") {
		return comp, nil, nil // backup metadata is plain JSON by design, as in WAL-G
	}
	keys, err := c.decodeKeys(op, file, f.Encryption, f.KeyFingerprint)
	if err != nil {
		return "", nil, err
	}
	return comp, keys, nil
}

// restorer is one restore in progress.
type restorer struct {
	c      *Client
	d      protocol.BackupDetail
	op     string
	dir    string
	opts   RestoreOptions
	prog   *Progress
	undo   []restoreDir
	mu     sync.Mutex
	tsLocs map[string]string // tablespace OID -> final location

	objects int   // objects fetched (mu)
	stored  int64 // their stored bytes (mu)
}

func (c *Client) restore(ctx context.Context, d protocol.BackupDetail, dir string, opts RestoreOptions) (res RestoreResult, err error) {
	start := time.Now()
	r := &restorer{c: c, d: d, op: "backup-fetch " + d.Name, dir: dir, opts: opts}
	op := r.op
	sentinel, err := basebackup.ParseSentinel(bytes.NewReader(d.Sentinel))
	if err != nil {
		return res, &Error{Kind: ErrIntegrity, Op: op, Message: "the backup's sentinel does not parse", Err: err}
	}
	objs, err := sortObjects(d.Files)
	if err != nil {
		return res, &Error{Kind: ErrIntegrity, Op: op, Message: err.Error()}
	}
	all := append(append([]string{objs.label}, objs.parts...), objs.control)
	var total int64
	for _, f := range all {
		if _, _, err := c.objectCodec(op, f, d.Files[f]); err != nil {
			return res, err
		}
		total += d.Files[f].Size
	}
	// A delta needs its whole chain: every link is checked, and its file
	// list read, before anything is written.
	var chain []chainLink
	if sentinel.IsDelta() || d.Kind == "delta" {
		if chain, err = r.resolveChain(ctx, sentinel); err != nil {
			return res, err
		}
		for _, l := range chain[1:] {
			for _, p := range l.parts {
				total += l.d.Files[p].Size
			}
		}
	}
	if opts.Recovery != nil && opts.Recovery.TargetTime != "" && opts.Recovery.TargetLSN != "" {
		return res, &Error{Kind: ErrRejected, Op: op, Message: "give one recovery target: a time or an LSN, not both"}
	}
	if opts.Recovery != nil && opts.Recovery.TargetTime != "" {
		if _, _, terr := ParseTargetTime(opts.Recovery.TargetTime); terr != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "recovery target time", Err: terr}
		}
	}

	rd, err := prepareRestoreDir(dir)
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: op, Message: "cannot prepare " + dir, Err: err}
	}
	r.undo = append(r.undo, rd)
	defer func() {
		if err != nil {
			r.prog.Done()
			for i := len(r.undo) - 1; i >= 0; i-- {
				if uerr := r.undo[i].undo(); uerr != nil {
					err = fmt.Errorf("%w (cleaning up %s also failed: %v)", err, r.undo[i].path, uerr)
				}
			}
		}
	}()
	if opts.Progress != nil {
		r.prog = NewProgress(opts.Progress, "backup-fetch "+d.Name, total)
	}

	// The label tar is small: fetch it first, to learn the tablespaces
	// and check it, and write it after the partitions.
	var label map[string][]byte
	if err := r.fetchObject(ctx, &r.d, objs.label, func(rd io.Reader) error {
		var err error
		label, err = readLabelTar(rd)
		return err
	}); err != nil {
		return res, err
	}
	if err := r.planTablespaces(sentinel, label[basebackup.TablespaceMapMember]); err != nil {
		return res, err
	}
	// The metadata objects are read and checked too, though a restore
	// does not need them: damage anywhere in the backup is found now.
	if err := r.verifyMetadata(ctx, chain != nil); err != nil {
		return res, err
	}

	// The data files are synced once per filesystem after all parts are
	// in, not one by one: per-file fsync serialises the restore on the
	// disk. Their disk writes are started as they are written
	// (Writeback), so that flush finds little left to do. backup_label
	// and pg_control follow, each synced, so they never reach the disk
	// before the data.
	xopts := basebackup.ExtractOptions{Fsync: opts.Fsync, TablespaceDir: r.tablespaceDir}
	partOpts := xopts
	partOpts.Fsync = false
	partOpts.Writeback = opts.Fsync
	if chain == nil {
		if err := r.fetchParts(ctx, &r.d, objs.parts, partOpts); err != nil {
			return res, err
		}
	} else if err := r.applyChain(ctx, chain, partOpts); err != nil {
		return res, err
	}
	if opts.Fsync {
		dirs := []string{dir}
		for _, oid := range sortedOIDs(r.tsLocs) {
			dirs = append(dirs, r.tsLocs[oid])
		}
		if err := syncFilesystems(dirs, r.fileOp); err != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "flushing the restored files to disk failed", Err: err}
		}
	}
	if err := r.writeLabel(label); err != nil {
		return res, err
	}
	r.fileOp("write", filepath.Join(dir, "global", "pg_control"))
	if err := r.fetchObject(ctx, &r.d, objs.control, func(rd io.Reader) error {
		_, err := basebackup.ExtractTar(rd, dir, xopts)
		return err
	}); err != nil {
		return res, err
	}
	if opts.Recovery != nil {
		if err := writeRecoveryConf(dir, *opts.Recovery, opts.Fsync); err != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "writing the recovery settings failed", Err: err}
		}
	}
	if opts.NoArchive {
		if err := pgctl.AppendAutoConf(dir, "walgate-client backup-fetch --no-archive: this copy must not archive into the source's archive",
			[][2]string{{"archive_mode", "off"}}, opts.Fsync); err != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "writing archive_mode = off failed", Err: err}
		}
	}
	if opts.Fsync {
		err := syncPath(dir)
		if err == nil {
			r.fileOp("fsync", dir)
			err = syncPath(filepath.Dir(dir))
		}
		if err == nil {
			r.fileOp("fsync", filepath.Dir(dir))
		}
		if err != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "fsync failed", Err: err}
		}
	}
	r.prog.Done()
	res = RestoreResult{Backup: d, Dir: dir, Objects: r.objects, StoredBytes: r.stored, Took: time.Since(start)}
	for _, l := range chain {
		res.Chain = append(res.Chain, l.d.Name)
	}
	for _, oid := range sortedOIDs(r.tsLocs) {
		res.Tablespaces = append(res.Tablespaces, RestoredTablespace{OID: oid, Dir: r.tsLocs[oid]})
	}
	return res, nil
}

// fetchParts fetches and extracts the data partitions, several at once;
// the first failure stops the others.
func (r *restorer) fetchParts(ctx context.Context, d *protocol.BackupDetail, parts []string, xopts basebackup.ExtractOptions) error {
	n := r.opts.Concurrency
	if n <= 0 {
		n = DefaultDownloadConcurrency
	}
	err := inParallel(ctx, n, len(parts), func(ctx context.Context, i int) error {
		return r.fetchObject(ctx, d, parts[i], func(rd io.Reader) error {
			_, err := basebackup.ExtractTar(rd, r.dir, xopts)
			return err
		})
	})
	if err == nil && ctx.Err() != nil {
		return &Error{Kind: ErrUnavailable, Op: r.op, Message: "interrupted", Err: ctx.Err()}
	}
	return err
}

// fetchObject streams one object of the backup through decryption and
// decompression into consume, then reads it to its very end so that the
// codec checks the stream's end and OpenBackupFile's reader checks size
// and SHA-256. A broken transfer or a failed check is retried as a whole,
// so that the gateway serves another store's copy (consume must be
// repeatable: extraction overwrites).
func (r *restorer) fetchObject(ctx context.Context, d *protocol.BackupDetail, file string, consume func(io.Reader) error) error {
	var n int64
	err := r.c.retryFetch(ctx, func() error {
		var err error
		n, err = r.fetchObjectOnce(ctx, d, file, consume)
		return err
	}, func(time.Duration) { r.prog.Add(-n) })
	if err == nil {
		r.mu.Lock()
		r.objects++
		r.stored += d.Files[file].Size
		r.mu.Unlock()
		r.fileOp("fetched", d.Name+"/"+file)
	}
	return err
}

// verifyMetadata fetches every object of the backup outside
// tar_partitions/ (metadata.json, files_metadata.json), checking its size
// and SHA-256 and that it parses. A delta's files_metadata.json was read
// with its chain already.
func (r *restorer) verifyMetadata(ctx context.Context, chainRead bool) error {
	for _, file := range sortedOIDs(r.d.Files) {
		if strings.HasPrefix(file, basebackup.TarFolder+"/") || chainRead && file == "files_metadata.json" {
			continue
		}
		if err := r.fetchObject(ctx, &r.d, file, func(rd io.Reader) error {
			if file == "files_metadata.json" {
				_, err := basebackup.ParseFilesMetadata(rd)
				return err
			}
			return validJSON(rd)
		}); err != nil {
			return err
		}
	}
	return nil
}

// validJSON reads one JSON value from rd, token by token (in bounded
// memory), and fails if it is not valid JSON or something follows it.
func validJSON(rd io.Reader) error {
	dec := json.NewDecoder(rd)
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: not valid JSON: %w", codec.ErrCorrupt, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data follows the JSON document", codec.ErrCorrupt)
	}
	return nil
}

// objectSource counts the stored bytes read and keeps the first error.
type objectSource struct {
	r    io.Reader
	prog *Progress
	n    int64
	err  error
}

func (s *objectSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	s.prog.Add(int64(n))
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

func (r *restorer) fetchObjectOnce(ctx context.Context, d *protocol.BackupDetail, file string, consume func(io.Reader) error) (int64, error) {
	op := fmt.Sprintf("fetch %s of %s", file, d.Name)
	want := d.Files[file]
	comp, keys, err := r.c.objectCodec(op, file, want)
	if err != nil {
		return 0, err
	}
	body, err := r.c.OpenBackupFile(ctx, d.Name, file, want)
	if err != nil {
		return 0, objectError(ctx, op, err)
	}
	defer body.Close()
	src := &objectSource{r: body, prog: r.prog}
	dec, _, err := openObject(src, comp, keys)
	if err != nil {
		if src.err != nil {
			err = src.err
		}
		return src.n, objectError(ctx, op, err)
	}
	defer dec.Close()
	err = consume(dec)
	if err == nil {
		// The tar ended: read the rest of the decoded stream (the tar's
		// padding, the end of the compressed and encrypted streams).
		_, err = io.Copy(io.Discard, dec)
	}
	var own *Error
	if err == nil || (src.err == nil && !isLocalError(err) && !errors.As(err, &own) && ctx.Err() == nil) {
		// Read the stored bytes to their end: the size and hash check.
		// After bytes that did not decode, this tells corrupt storage
		// (hash mismatch) from a wrong key or a bad backup.
		extra, derr := io.Copy(io.Discard, src)
		if err == nil {
			if derr != nil {
				err = derr
			} else if extra > 0 {
				err = fmt.Errorf("%w: %d bytes follow the end of the encoded stream", codec.ErrCorrupt, extra)
			}
		}
	}
	if err == nil {
		return src.n, nil
	}
	if src.err != nil {
		err = src.err // the transfer or the hash check failed: that is the cause
	}
	return src.n, objectError(ctx, op, err)
}

// isLocalError reports whether err is about the local file system.
func isLocalError(err error) bool {
	var pe *fs.PathError
	var le *os.LinkError
	return errors.As(err, &pe) || errors.As(err, &le)
}

// objectError classifies a failure while restoring one object.
func objectError(ctx context.Context, op string, err error) error {
	var ce *Error
	switch {
	case errors.As(err, &ce):
		if ce.Kind == ErrIntegrity && !strings.HasPrefix(ce.Message, "integrity check failed") {
			e := *ce
			e.Message = "integrity check failed: " + e.Message
			return &e
		}
		return ce
	case ctx.Err() != nil:
		return &Error{Kind: ErrUnavailable, Op: op, Message: "interrupted", Err: ctx.Err()}
	case isLocalError(err):
		return &Error{Kind: ErrRejected, Op: op, Message: "writing the restored files failed", Err: err}
	case errors.Is(err, codec.ErrAuth) && !errors.Is(err, codec.ErrTruncated):
		return &Error{Kind: ErrIntegrity, Op: op, Message: "integrity check failed: decryption failed although the stored bytes match their recorded SHA-256: wrong key (check WALGATE_ENCRYPTION_KEY and _TRANSFORM)", Err: &notStorage{err}}
	case errors.Is(err, basebackup.ErrUnsafeMember):
		// Reached only once the stored bytes matched their SHA-256 (the
		// caller reads them to the end): the backup itself holds the
		// member, and no other copy or attempt can cure that.
		return &Error{Kind: ErrIntegrity, Op: op, Message: "integrity check failed: refused a tar member (the stored bytes match their recorded SHA-256: the backup itself holds it)", Err: &notStorage{err}}
	}
	return &Error{Kind: ErrIntegrity, Op: op, Message: "integrity check failed: the object does not decode to a valid tar stream", Err: err}
}

// readLabelTar reads the backup_label tar: backup_label and, optionally,
// tablespace_map.
func readLabelTar(r io.Reader) (map[string][]byte, error) {
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(hdr.Name, "/")
		if hdr.Typeflag != tar.TypeReg || (name != basebackup.LabelMember && name != basebackup.TablespaceMapMember) {
			return nil, fmt.Errorf("%w: unexpected member %q in the backup_label tar", basebackup.ErrUnsafeMember, hdr.Name)
		}
		if hdr.Size > 16<<20 {
			return nil, fmt.Errorf("%w: member %s is %d bytes", basebackup.ErrUnsafeMember, name, hdr.Size)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	if len(out[basebackup.LabelMember]) == 0 {
		return nil, errors.New("the backup_label tar holds no backup_label")
	}
	return out, nil
}

// planTablespaces decides where each tablespace goes and prepares the
// locations: --tablespace, else the sentinel's Spec, else tablespace_map.
func (r *restorer) planTablespaces(s basebackup.Sentinel, spcmap []byte) error {
	op := r.op
	orig := map[string]string{}
	mapped, err := basebackup.ParseTablespaceMap(spcmap)
	if err != nil {
		return &Error{Kind: ErrIntegrity, Op: op, Message: "the backup's tablespace_map does not parse", Err: err}
	}
	for _, m := range mapped {
		orig[m[0]] = m[1]
	}
	if s.Spec != nil {
		for _, t := range s.Spec.Tablespaces {
			orig[t.Name] = t.Location
		}
	}
	r.tsLocs = map[string]string{}
	for oid, loc := range orig {
		if !basebackup.IsOID(oid) {
			return &Error{Kind: ErrIntegrity, Op: op, Message: fmt.Sprintf("the backup names a tablespace %q, which is not an OID", oid)}
		}
		r.tsLocs[oid] = loc
	}
	for oid, loc := range r.opts.Tablespaces {
		if _, ok := orig[oid]; !ok {
			have := "none"
			if len(orig) > 0 {
				have = strings.Join(sortedOIDs(orig), ", ")
			}
			return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("the backup has no tablespace %s (its tablespaces: %s)", oid, have)}
		}
		abs, err := filepath.Abs(loc)
		if err != nil {
			return &Error{Kind: ErrRejected, Op: op, Message: "bad tablespace directory " + loc, Err: err}
		}
		r.tsLocs[oid] = abs
	}
	if r.opts.tablespaceRoot != "" {
		for oid := range r.tsLocs {
			r.tsLocs[oid] = filepath.Join(r.opts.tablespaceRoot, oid)
		}
	}
	seen := map[string]string{}
	for _, oid := range sortedOIDs(r.tsLocs) {
		loc := filepath.Clean(r.tsLocs[oid])
		r.tsLocs[oid] = loc
		if !filepath.IsAbs(loc) {
			return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("tablespace %s was at %q, not an absolute path: give it a directory with --tablespace %s=DIR", oid, loc, oid)}
		}
		if other, ok := seen[loc]; ok {
			return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("tablespaces %s and %s would both go to %s", other, oid, loc)}
		}
		seen[loc] = oid
		if loc == r.dir || strings.HasPrefix(loc, r.dir+string(filepath.Separator)) || strings.HasPrefix(r.dir, loc+string(filepath.Separator)) {
			return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("tablespace %s would go to %s, which overlaps the data directory %s", oid, loc, r.dir)}
		}
		td, err := prepareRestoreDir(loc)
		if err != nil {
			return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("tablespace %s cannot be restored to %s (move it with --tablespace %s=DIR)", oid, loc, oid), Err: err}
		}
		r.undo = append(r.undo, td)
	}
	return nil
}

// tablespaceDir is ExtractOptions.TablespaceDir.
func (r *restorer) tablespaceDir(oid string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if loc, ok := r.tsLocs[oid]; ok {
		return loc, nil
	}
	if r.opts.tablespaceRoot != "" && basebackup.IsOID(oid) {
		loc := filepath.Join(r.opts.tablespaceRoot, oid)
		td, err := prepareRestoreDir(loc)
		if err != nil {
			return "", err
		}
		r.undo = append(r.undo, td)
		r.tsLocs[oid] = loc
		return loc, nil
	}
	return "", &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("the backup holds files of tablespace %q, which neither its sentinel nor its tablespace_map names", oid)}
}

// writeLabel writes backup_label, tablespace_map with the final
// locations, and the pg_tblspc links.
func (r *restorer) writeLabel(label map[string][]byte) error {
	fail := func(err error) error {
		return &Error{Kind: ErrRejected, Op: r.op, Message: "writing backup_label and the tablespace links failed", Err: err}
	}
	if len(r.tsLocs) > 0 {
		tblspc := filepath.Join(r.dir, "pg_tblspc")
		if err := os.MkdirAll(tblspc, 0o700); err != nil {
			return fail(err)
		}
		var m strings.Builder
		for _, oid := range sortedOIDs(r.tsLocs) {
			loc := r.tsLocs[oid]
			m.WriteString(basebackup.TablespaceMapLine(oid, loc))
			link := filepath.Join(tblspc, oid)
			if fi, err := os.Lstat(link); err == nil {
				if !fi.IsDir() {
					return fail(fmt.Errorf("%s exists and is not a directory", link))
				}
				if err := os.Remove(link); err != nil { // an empty directory from the tar
					return fail(err)
				}
			}
			if err := os.Symlink(loc, link); err != nil {
				return fail(err)
			}
		}
		r.fileOp("write", filepath.Join(r.dir, basebackup.TablespaceMapMember))
		if err := pgctl.WriteFile(filepath.Join(r.dir, basebackup.TablespaceMapMember), []byte(m.String()), r.opts.Fsync); err != nil {
			return fail(err)
		}
		if r.opts.Fsync {
			if err := syncPath(tblspc); err != nil {
				return fail(err)
			}
		}
	}
	r.fileOp("write", filepath.Join(r.dir, basebackup.LabelMember))
	if err := pgctl.WriteFile(filepath.Join(r.dir, basebackup.LabelMember), label[basebackup.LabelMember], r.opts.Fsync); err != nil {
		return fail(err)
	}
	return nil
}

func sortedOIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) < len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// QuoteShell quotes a word for /bin/sh when it needs it (PostgreSQL runs
// restore_command through the shell).
func QuoteShell(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeRecoveryConf makes the restored directory start in archive
// recovery with the settings of rs (pgctl.StartRecovery).
func writeRecoveryConf(dir string, rs RecoverySettings, fsync bool) error {
	if strings.ContainsAny(rs.TargetTime+rs.TargetLSN+rs.RestoreCommand, "\n\r") {
		return errors.New("recovery settings must not contain line breaks")
	}
	rec := pgctl.Recovery{RestoreCommand: rs.RestoreCommand, TargetTime: rs.TargetTime, TargetLSN: rs.TargetLSN}
	if rec.TargetTime != "" || rec.TargetLSN != "" {
		rec.TargetAction = "promote"
	}
	lines, err := rec.Settings()
	if err != nil {
		return err
	}
	return pgctl.StartRecovery(dir, "recovery settings written by walgate-client", append(lines, rs.Extra...), fsync)
}

// syncTree fsyncs every regular file and directory under dir, dir too
// (F_FULLFSYNC on macOS, which os.File.Sync uses): how a restore is made
// durable where there is no syncfs(2). Symbolic links are not followed:
// a tablespace's directory is synced as a tree of its own.
func syncTree(dir string) error {
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !e.Type().IsRegular() {
			return nil
		}
		return syncPath(path)
	})
	if err != nil {
		return fmt.Errorf("fsync under %s: %w", dir, err)
	}
	return nil
}

// syncPath fsyncs a file or directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// fileOp tells opts.fileOps of a step, if anyone listens.
func (r *restorer) fileOp(op, path string) {
	if r.opts.fileOps != nil {
		r.opts.fileOps(op, path)
	}
}
