package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/pgname"
)

// BackupPushOptions tune a base backup.
type BackupPushOptions struct {
	// ConnString is a libpq connection string; "" uses the PG* environment
	// variables (PGHOST, PGPORT, PGUSER, ...), as psql does.
	ConnString string
	// PartThreshold closes a tar partition once its payload exceeds it.
	PartThreshold int64
	// Concurrency is how many partitions are read, encoded and uploaded at
	// once.
	Concurrency int
	// Progress receives a progress line (a terminal); nil is quiet.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Permanent marks the backup permanent: retention never deletes it
	// and keeps the WAL from its start to its finish.
	Permanent bool

	// Mode chooses the kind of backup: BackupAuto (a delta when
	// DeltaMaxSteps allows one and a parent exists, else full),
	// BackupFull or BackupDelta (fail when no parent can be used).
	Mode BackupMode
	// DeltaMaxSteps is the longest chain of deltas after a full backup;
	// 0 makes BackupAuto always take a full backup.
	DeltaMaxSteps int
	// DeltaOrigin picks the parent: DeltaFromLatest (the newest backup) or
	// DeltaFromLatestFull (the newest full backup).
	DeltaOrigin string
	// FailOnCorruptPages makes a page that fails its checksum fatal; by
	// default it is recorded in files_metadata.json and reported in
	// Corrupt and on Warn.
	FailOnCorruptPages bool
	// Warn receives warnings (corrupt pages, a delta that became a full
	// backup, files that vanished); nil discards them.
	Warn io.Writer
}

// BackupMode is what kind of backup BackupPush takes.
type BackupMode int

const (
	BackupAuto BackupMode = iota
	BackupFull
	BackupDelta
)

// Delta origins (WALGATE_DELTA_ORIGIN, WAL-G's WALG_DELTA_ORIGIN).
const (
	DeltaFromLatest     = "LATEST"
	DeltaFromLatestFull = "LATEST_FULL"
)

// BackupPushResult describes a committed backup.
type BackupPushResult struct {
	protocol.BackupSummary
	Parts   int
	Skipped []string // files that vanished during the backup
	// Depth is the number of deltas between this backup and its full
	// backup (0 for a full backup).
	Depth int
	// Incremented counts the files stored as page increments, ChangedPages
	// the pages they hold.
	Incremented  int
	ChangedPages int64
	// Unchanged counts the files a delta recorded as skipped: unchanged
	// since the parent, not stored.
	Unchanged int
	// Corrupt lists the files with pages that failed checksum
	// verification.
	Corrupt map[string]basebackup.CorruptBlocks
	// ChangedFrom says how a delta found its changed pages: "WAL
	// summaries" (PostgreSQL 17+, summarize_wal = on) or "page scan", with
	// the reason the summaries could not serve.
	ChangedFrom string
	// FullReason says why a full backup was taken when a delta was
	// configured (e.g. "no earlier backup").
	FullReason string
}

// backupSession is PostgreSQL's side of a base backup: one dedicated
// connection from pg_backup_start to pg_backup_stop. Closing the
// connection aborts the backup on the server.
type backupSession struct {
	conn      *pgx.Conn
	startLSN  pgname.LSN
	startWAL  string
	sysID     uint64
	pgVersion int
	segSize   int64 // wal_segment_size in bytes
	dataDir   string
	checksums bool // the cluster has data checksums
}

func startBackup(ctx context.Context, connString, pgdata, label string) (*backupSession, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL (set PGHOST, PGPORT, PGUSER as for psql): %w", err)
	}
	s := &backupSession{conn: conn}
	fail := func(err error) (*backupSession, error) {
		conn.Close(context.Background())
		return nil, err
	}
	var inRecovery bool
	var walLevel, archiveMode string
	if err := conn.QueryRow(ctx, `SELECT current_setting('data_directory'), current_setting('server_version_num')::int,
		(SELECT system_identifier FROM pg_control_system()), pg_is_in_recovery(),
		current_setting('data_checksums') = 'on', current_setting('wal_level'), current_setting('archive_mode'),
		(SELECT bytes_per_wal_segment FROM pg_control_init())::bigint`).Scan(&s.dataDir, &s.pgVersion, &s.sysID, &inRecovery,
		&s.checksums, &walLevel, &archiveMode, &s.segSize); err != nil {
		return fail(fmt.Errorf("reading the server's settings: %w", err))
	}
	if err := checkPgVersion(s.pgVersion); err != nil {
		return fail(err)
	}
	if inRecovery {
		return fail(errors.New("the server is a standby: backups from a standby are not supported yet; run backup-push on the primary"))
	}
	if walLevel == "minimal" {
		return fail(errors.New("wal_level is minimal: an online backup needs wal_level = replica (or logical); set it and restart PostgreSQL"))
	}
	if archiveMode == "off" {
		return fail(errors.New("archive_mode is off: the WAL a backup needs to become consistent would never reach the archive, so the backup could not be restored; set archive_mode = on and archive_command = 'walgate-client wal-push %p', restart PostgreSQL, then run backup-push again"))
	}
	want, err1 := filepath.EvalSymlinks(pgdata)
	have, err2 := filepath.EvalSymlinks(s.dataDir)
	if err1 != nil || err2 != nil || want != have {
		return fail(fmt.Errorf("PGDATA %s is not the data directory of the server connected to (%s): check PGHOST/PGPORT", pgdata, s.dataDir))
	}
	var lsn string
	if err := conn.QueryRow(ctx, backupStartSQL(pgMajor(s.pgVersion)), label).Scan(&lsn, &s.startWAL); err != nil {
		return fail(fmt.Errorf("starting the backup: %w", err))
	}
	if s.startLSN, err = pgname.ParseLSN(lsn); err != nil {
		return fail(err)
	}
	return s, nil
}

// stop ends the backup and returns the stop LSN and the backup_label and
// tablespace_map contents. Like pg_basebackup it does not return before
// the last WAL segment the backup needs is archived, but it watches
// archive_status itself every 20 ms: pg_backup_stop(wait_for_archive)
// polls once a second, a second lost on every backup.
func (s *backupSession) stop(ctx context.Context, pgdata string) (pgname.LSN, string, string, error) {
	var lsn, label, spcmap, seg string
	var archiving bool
	if err := s.conn.QueryRow(ctx, backupStopSQL(pgMajor(s.pgVersion))).Scan(&lsn, &label, &spcmap, &seg, &archiving); err != nil {
		return 0, "", "", fmt.Errorf("stopping the backup: %w", err)
	}
	l, err := pgname.ParseLSN(lsn)
	if err != nil {
		return 0, "", "", err
	}
	if archiving {
		if err := waitArchived(ctx, pgdata, seg); err != nil {
			return 0, "", "", err
		}
	}
	return l, label, spcmap, nil
}

// waitArchived waits until PostgreSQL's archiver is done with WAL file
// seg, by PostgreSQL's own rule (XLogArchiveIsBusy): done when .done
// exists, or when neither .ready nor the file itself exists any more.
func waitArchived(ctx context.Context, pgdata, seg string) error {
	status := filepath.Join(pgdata, "pg_wal", "archive_status", seg)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	gone := func(p string) bool { _, err := os.Stat(p); return errors.Is(err, os.ErrNotExist) }
	// A short tick: the backup's end waits on it, and three stat calls
	// cost nothing next to the archiver's own work.
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if exists(status+".done") || (gone(status+".ready") && gone(filepath.Join(pgdata, "pg_wal", seg))) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to archive %s, which the backup needs: %w (check archive_command and pg_stat_archiver)", seg, ctx.Err())
		case <-t.C:
		}
	}
}

func (s *backupSession) close() { s.conn.Close(context.Background()) }

// BackupPush takes a full base backup of the cluster whose data directory
// is pgdata and uploads it through the gateway. The backup becomes visible
// only when every part is stored and verified; on any failure it is
// aborted and nothing is left.
func (c *Client) BackupPush(ctx context.Context, pgdata string, opts BackupPushOptions) (res BackupPushResult, err error) {
	opts = opts.withDefaults()
	if pgdata, err = checkDataDir(pgdata); err != nil {
		return res, err
	}
	parent, why, err := c.chooseParent(ctx, opts)
	if err != nil {
		return res, err
	}
	res.FullReason = why
	startTime := opts.Now()
	sess, err := startBackup(ctx, opts.ConnString, pgdata, "walgate "+startTime.UTC().Format(time.RFC3339))
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: "backup-push", Message: "starting the backup failed", Err: err}
	}
	defer sess.close() // ends backup mode on the server if we stop early
	if err := c.checkArchiveSegmentSize(ctx, sess.segSize); err != nil {
		return res, err
	}
	plan, err := c.planBackup(ctx, sess, parent, opts, &res)
	if err != nil {
		return res, err
	}

	up, err := c.beginBackup(ctx, plan.name, sess.sysID)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if aerr := up.Abort(actx); aerr != nil {
				err = fmt.Errorf("%w (aborting the backup on the gateway also failed: %v; it will be removed after the session timeout)", err, aerr)
			}
		}
	}()

	scan, err := basebackup.ScanDataDir(pgdata)
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: plan.op, Message: "reading the data directory failed", Err: err}
	}
	toWrite, unchanged := plan.delta.unchanged(scan.Files)
	parts, total, err := c.partition(ctx, &plan, toWrite, opts)
	if err != nil {
		return res, err
	}
	var prog *Progress
	if opts.Progress != nil {
		prog = NewProgress(opts.Progress, "backup "+plan.name, total)
	}
	data, err := c.uploadData(ctx, up, plan, scan.PgControl, parts, prog)
	prog.Done()
	if err != nil {
		return res, err
	}

	stopLSN, label, spcmap, err := sess.stop(ctx, pgdata)
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: plan.op, Message: "stopping the backup failed", Err: err}
	}
	finishTime := opts.Now()
	labelObject := basebackup.LabelObjectName(c.cfg.Compression)
	_, labelStored, err := c.uploadTar(ctx, up, labelObject, c.cfg.Compression, c.encryption(), nil, func(w io.Writer) (basebackup.TarResult, error) {
		return basebackup.TarResult{}, basebackup.WriteLabelTar(w, label, spcmap, finishTime)
	})
	if err != nil {
		return res, err
	}

	fm := data.filesMetadata(&res)
	fm.AddSkipped(unchanged)
	res.Unchanged = len(unchanged)
	if err := reportCorrupt(res.Corrupt, opts, plan); err != nil {
		return res, err
	}
	// As WAL-G: pg_control's tar and /global/pg_control are not listed
	// (restores take them from their own tar), and the backup_label set
	// is in WAL-G's order, not the tar's.
	fm.AddTar(labelObject, basebackup.LabelTarMembers, nil)

	sentinel := newSentinel(sess, stopLSN, plan, opts)
	sentinel.UncompressedSize = data.uncompressed()
	sentinel.CompressedSize = data.stored() + labelStored
	sentinel.DataCatalogSize = scan.DataCatalogSize
	sentinel.StartTime, sentinel.FinishTime = startTime.UTC(), finishTime.UTC()
	sentinel.DataDir = pgdata
	if len(scan.Tablespaces) > 0 {
		sentinel.Spec = basebackup.NewTablespaceSpec(pgdata, scan.Tablespaces)
	}
	sum, err := commitBackup(ctx, up, sentinel, fm)
	if err != nil {
		return res, err
	}
	res.BackupSummary, res.Parts = sum, len(parts)
	return res, nil
}

// withDefaults fills the options left at zero.
func (o BackupPushOptions) withDefaults() BackupPushOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PartThreshold <= 0 {
		o.PartThreshold = basebackup.DefaultPartThreshold
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	return o
}

// checkDataDir makes pgdata absolute and checks that it holds a
// PostgreSQL cluster.
func checkDataDir(pgdata string) (string, error) {
	pgdata, err := filepath.Abs(pgdata)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(pgdata, "global", "pg_control")); err != nil {
		return "", &Error{Kind: ErrRejected, Op: "backup-push", Message: pgdata + " is not a PostgreSQL data directory (no global/pg_control)", Err: err}
	}
	return pgdata, nil
}

// backupPlan is what a backup is before its first byte is read: its
// name, and how its tars are written (full, or a delta on a parent).
type backupPlan struct {
	name    string
	op      string     // for errors: "backup-push <name>"
	delta   *deltaBase // nil for a full backup
	tarOpts basebackup.TarOptions
	workers int // partitions read, encoded and uploaded at once
}

// planBackup names the backup and decides whether it is a delta of
// parent (nil: full). res learns why a full backup was taken instead,
// the chain depth, and where the changed pages come from.
func (c *Client) planBackup(ctx context.Context, sess *backupSession, parent *protocol.BackupSummary, opts BackupPushOptions, res *BackupPushResult) (backupPlan, error) {
	var plan backupPlan
	if parent != nil {
		delta, why, err := c.loadDeltaBase(ctx, *parent, sess)
		if err == nil && delta == nil && opts.Mode == BackupDelta {
			err = &Error{Kind: ErrRejected, Op: "backup-push", Message: "cannot take a delta backup: " + why + "; run without --delta for a full backup"}
		}
		if err != nil {
			return plan, err
		}
		if delta == nil {
			res.FullReason = why
		}
		plan.delta = delta
	}
	plan.name = basebackup.BackupName(sess.startWAL)
	if plan.delta != nil {
		var err error
		if plan.name, err = basebackup.DeltaBackupName(sess.startWAL, plan.delta.parent.Name); err != nil {
			return plan, err
		}
		res.Depth = plan.delta.depth
	}
	plan.op = "backup-push " + plan.name
	plan.workers = opts.Concurrency
	plan.tarOpts = basebackup.TarOptions{VerifyChecksums: sess.checksums, StartLSN: uint64(sess.startLSN)}
	if delta := plan.delta; delta != nil {
		plan.tarOpts.DeltaLSN = delta.parent.StartLSN
		plan.tarOpts.Incremental = func(member string) bool { return delta.files[member] }
		changes, why, err := summaryChanges(ctx, sess, delta.parent.Timeline, pgname.LSN(delta.parent.StartLSN), sess.startLSN)
		if err != nil {
			return plan, &Error{Kind: ErrRejected, Op: plan.op, Message: "reading PostgreSQL's WAL summaries failed", Err: err}
		}
		res.ChangedFrom = "page scan"
		if changes != nil {
			plan.tarOpts.ChangedBlocks = changes.FileBlocks
			res.ChangedFrom = "WAL summaries"
		} else if why != "" {
			res.ChangedFrom = "page scan (WAL summaries not usable: " + why + ")"
		}
	}
	return plan, nil
}

// encryption is the Walgate-Encryption of the objects this client
// writes.
func (c *Client) encryption() string {
	if c.cfg.Key != nil {
		return protocol.EncryptionLibsodium
	}
	return protocol.EncryptionNone
}

// storedTar is one uploaded tar object.
type storedTar struct {
	object string
	files  []basebackup.File
	tar    basebackup.TarResult
	stored int64
}

// backupData is the data of a backup once uploaded: the partitions and
// pg_control.
type backupData struct {
	parts   []storedTar
	control storedTar
}

// minDeltaPart is the smallest payload a delta's tar partitions are cut
// at.
const minDeltaPart = 16 << 20

// partition cuts the files to write into tar partitions and returns them
// with their total payload. A full backup's are cut at opts.PartThreshold
// of file data. A delta first finds its changed pages, by a scan of every
// page (plan.workers goroutines, large files split between them) unless
// PostgreSQL's WAL summaries listed them, and is cut by its increments'
// payload into about two partitions per worker, largest first, so that the
// workers share the encoding evenly.
func (c *Client) partition(ctx context.Context, plan *backupPlan, files []basebackup.File, opts BackupPushOptions) ([][]basebackup.File, int64, error) {
	if plan.delta == nil {
		var total int64
		for _, f := range files {
			total += f.Size
		}
		return basebackup.Partition(files, opts.PartThreshold), total, nil
	}
	if plan.tarOpts.ChangedBlocks == nil {
		var prog *Progress
		if opts.Progress != nil {
			prog = NewProgress(opts.Progress, "scan for changed pages, "+plan.name, basebackup.ScanBytes(files, plan.tarOpts))
		}
		cs, err := basebackup.ScanChanges(ctx, files, plan.tarOpts, plan.workers, prog.Add)
		prog.Done()
		if err != nil {
			return nil, 0, &Error{Kind: ErrRejected, Op: plan.op, Message: "scanning the data directory for changed pages failed", Err: err}
		}
		plan.tarOpts.ChangedBlocks = cs.FileBlocks
	}
	payload := make(map[string]int64, len(files))
	var total int64
	for _, f := range files {
		payload[f.Member] = basebackup.Payload(f, plan.tarOpts)
		total += payload[f.Member]
	}
	threshold := min(opts.PartThreshold, max(total/int64(2*max(plan.workers, 1)), minDeltaPart))
	parts := basebackup.PartitionBy(files, threshold, func(f basebackup.File) int64 { return payload[f.Member] })
	// The largest first: the workers take partitions in order, and a
	// large one started last would run alone at the end.
	size := func(part []basebackup.File) (n int64) {
		for _, f := range part {
			n += payload[f.Member]
		}
		return n
	}
	sort.SliceStable(parts, func(i, j int) bool { return size(parts[i]) > size(parts[j]) })
	return parts, total, nil
}

// uploadData uploads the partitions, several at once (the first failure
// cancels the rest), then pg_control, last among the data as WAL-G and
// PostgreSQL do.
func (c *Client) uploadData(ctx context.Context, up *BackupUpload, plan backupPlan, pgControl basebackup.File,
	parts [][]basebackup.File, prog *Progress) (backupData, error) {
	comp, enc := c.cfg.Compression, c.encryption()
	data := backupData{parts: make([]storedTar, len(parts))}
	err := inParallel(ctx, plan.workers, len(parts), func(ctx context.Context, i int) error {
		object := basebackup.PartObjectName(i+1, comp)
		tr, stored, err := c.uploadTar(ctx, up, object, comp, enc, prog, func(w io.Writer) (basebackup.TarResult, error) {
			return basebackup.WriteTarWith(w, parts[i], plan.tarOpts)
		})
		if err != nil {
			return err
		}
		data.parts[i] = storedTar{object: object, files: parts[i], tar: tr, stored: stored}
		return nil
	})
	if err != nil {
		return data, err
	}
	object := basebackup.PgControlObjectName(comp)
	tr, stored, err := c.uploadTar(ctx, up, object, comp, enc, prog, func(w io.Writer) (basebackup.TarResult, error) {
		return basebackup.WriteTar(w, []basebackup.File{pgControl})
	})
	if err != nil {
		return data, err
	}
	data.control = storedTar{object: object, tar: tr, stored: stored}
	return data, nil
}

// uncompressed is the tar bytes of the data.
func (d backupData) uncompressed() int64 {
	n := d.control.tar.Bytes
	for _, p := range d.parts {
		n += p.tar.Bytes
	}
	return n
}

// stored is the bytes the gateway stored for the data.
func (d backupData) stored() int64 {
	n := d.control.stored
	for _, p := range d.parts {
		n += p.stored
	}
	return n
}

// filesMetadata lists the partitions' files for files_metadata.json,
// with what each tar found (skipped files, incremented files, changed
// pages, corrupt blocks), which res learns too.
func (d backupData) filesMetadata(res *BackupPushResult) *basebackup.FilesMetadata {
	fm := basebackup.NewFilesMetadata()
	for _, r := range d.parts {
		fm.AddTar(r.object, r.tar.Members, r.files)
		res.Skipped = append(res.Skipped, r.tar.Skipped...)
		for m := range r.tar.Incremented {
			d := fm.Files[m]
			d.IsIncremented = true
			fm.Files[m] = d
			res.Incremented++
		}
		res.ChangedPages += r.tar.ChangedPages
		for m, cb := range r.tar.Corrupt {
			d := fm.Files[m]
			d.CorruptBlocks = cb
			fm.Files[m] = d
			if res.Corrupt == nil {
				res.Corrupt = map[string]basebackup.CorruptBlocks{}
			}
			res.Corrupt[m] = *cb
		}
	}
	return fm
}

// reportCorrupt fails the backup on pages that failed their checksum
// when opts.FailOnCorruptPages, else warns of them.
func reportCorrupt(corrupt map[string]basebackup.CorruptBlocks, opts BackupPushOptions, plan backupPlan) error {
	if len(corrupt) == 0 {
		return nil
	}
	msg := corruptText(corrupt)
	if opts.FailOnCorruptPages {
		return &Error{Kind: ErrIntegrity, Op: plan.op, Message: "page checksum failures (the backup was not committed): " + msg + "; check the storage, then run amcheck or pg_checksums, or repair from a replica"}
	}
	if opts.Warn != nil {
		fmt.Fprintf(opts.Warn, "walgate-client: WARNING: %s: page checksum failures recorded in files_metadata.json: %s\n", plan.name, msg)
	}
	return nil
}

// newSentinel is the backup's sentinel as far as the server session and
// the plan tell it; the caller adds sizes, times and the data directory.
func newSentinel(sess *backupSession, stopLSN pgname.LSN, plan backupPlan, opts BackupPushOptions) basebackup.Sentinel {
	host, _ := os.Hostname()
	tli := uint32(0)
	if w, err := pgname.ParseWALFile(sess.startWAL); err == nil {
		tli = uint32(w.Timeline)
	}
	s := basebackup.Sentinel{
		LSN: basebackup.LSN(sess.startLSN), FinishLSN: basebackup.LSN(stopLSN), Timeline: &tli,
		PgVersion: sess.pgVersion, SystemIdentifier: &sess.sysID, WALSegmentSize: sess.segSize,
		Version: basebackup.SentinelVersion, DateFmt: basebackup.DateFmt,
		Hostname: host, IsPermanent: opts.Permanent,
	}
	if delta := plan.delta; delta != nil {
		lsn := basebackup.LSN(delta.parent.StartLSN)
		s.DeltaLSN, s.DeltaFrom = &lsn, delta.parent.Name
		s.DeltaFullName, s.DeltaCount = delta.fullName, delta.depth
	}
	return s
}

// commitBackup uploads metadata.json and files_metadata.json, then
// commits with the sentinel: WAL-G's order.
func commitBackup(ctx context.Context, up *BackupUpload, sentinel basebackup.Sentinel, fm *basebackup.FilesMetadata) (protocol.BackupSummary, error) {
	for _, d := range []struct {
		object string
		v      any
	}{{"metadata.json", sentinel.Metadata()}, {"files_metadata.json", fm}} {
		data, err := json.Marshal(d.v)
		if err != nil {
			return protocol.BackupSummary{}, err
		}
		if _, err := up.Upload(ctx, d.object, "none", protocol.EncryptionNone, bytes.NewReader(data)); err != nil {
			return protocol.BackupSummary{}, err
		}
	}
	b, err := json.Marshal(sentinel)
	if err != nil {
		return protocol.BackupSummary{}, err
	}
	return up.Commit(ctx, b)
}

// uploadBufferSize is how much encoded data a tar upload gathers before
// handing it to the HTTP request.
const uploadBufferSize = 256 << 10

// uploadTar streams one tar object: build → compress → encrypt → upload,
// through a pipe, with memory bounded by the codec's buffers and one
// uploadBufferSize buffer. The codec is
// its bulk writer: a backup-push lives long enough for the memory that
// makes compression cheaper per byte and lets one partition keep two CPUs
// busy (a partition of 1 GiB next to one half its size would otherwise
// leave a CPU idle for the second half of the backup).
func (c *Client) uploadTar(ctx context.Context, up *BackupUpload, object string, comp codec.Compression, enc string,
	prog *Progress, build func(io.Writer) (basebackup.TarResult, error)) (basebackup.TarResult, int64, error) {
	pr, pw := io.Pipe()
	var tr basebackup.TarResult
	done := make(chan error, 1)
	go func() {
		// The encrypted stream comes in 8 KiB chunks (the format's); sent
		// one by one, each would be an HTTP chunk, a write on the socket,
		// and on the gateway a write to the file.
		bw := bufio.NewWriterSize(pw, uploadBufferSize)
		w, err := codec.NewBulkWriter(bw, comp, c.cfg.Key, c.cfg.Level)
		if err == nil {
			var out io.Writer = w
			if prog != nil {
				out = progressWriter{w: w, p: prog}
			}
			tr, err = build(out)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
		}
		pw.CloseWithError(err)
		done <- err
	}()
	stored, err := up.Upload(ctx, basebackup.TarFolder+"/"+object, string(comp), enc, pr)
	pr.CloseWithError(errors.New("upload ended"))
	berr := <-done
	if berr != nil && !strings.Contains(berr.Error(), "upload ended") {
		return tr, 0, &Error{Kind: ErrRejected, Op: "backup-push " + up.Name, Message: "reading data for " + object + " failed", Err: berr}
	}
	if err != nil {
		return tr, 0, err
	}
	return tr, stored.Size, nil
}

// progressWriter counts tar bytes (about the file bytes read) into a
// Progress.
type progressWriter struct {
	w io.Writer
	p *Progress
}

func (w progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.Add(int64(n))
	return n, err
}
