package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	t := time.NewTicker(20 * time.Millisecond)
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
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.PartThreshold <= 0 {
		opts.PartThreshold = basebackup.DefaultPartThreshold
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	pgdata, err = filepath.Abs(pgdata)
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(filepath.Join(pgdata, "global", "pg_control")); err != nil {
		return res, &Error{Kind: ErrRejected, Op: "backup-push", Message: pgdata + " is not a PostgreSQL data directory (no global/pg_control)", Err: err}
	}
	parent, why, err := c.chooseParent(ctx, opts)
	if err != nil {
		return res, err
	}
	res.FullReason = why
	startTime := now()
	sess, err := startBackup(ctx, opts.ConnString, pgdata, "walgate "+startTime.UTC().Format(time.RFC3339))
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: "backup-push", Message: "starting the backup failed", Err: err}
	}
	defer sess.close() // ends backup mode on the server if we stop early
	if err := c.checkArchiveSegmentSize(ctx, sess.segSize); err != nil {
		return res, err
	}
	var delta *deltaBase
	if parent != nil {
		delta, why, err = c.loadDeltaBase(ctx, *parent, sess)
		if err == nil && delta == nil && opts.Mode == BackupDelta {
			err = &Error{Kind: ErrRejected, Op: "backup-push", Message: "cannot take a delta backup: " + why + "; run without --delta for a full backup"}
		}
		if err != nil {
			return res, err
		}
		if delta == nil {
			res.FullReason = why
		}
	}
	name := basebackup.BackupName(sess.startWAL)
	if delta != nil {
		if name, err = basebackup.DeltaBackupName(sess.startWAL, delta.parent.Name); err != nil {
			return res, err
		}
		res.Depth = delta.depth
	}
	op := "backup-push " + name
	tarOpts := basebackup.TarOptions{VerifyChecksums: sess.checksums, StartLSN: uint64(sess.startLSN)}
	if delta != nil {
		tarOpts.DeltaLSN = delta.parent.StartLSN
		tarOpts.Incremental = func(member string) bool { return delta.files[member] }
		changes, why, err := summaryChanges(ctx, sess, delta.parent.Timeline, pgname.LSN(delta.parent.StartLSN), sess.startLSN)
		if err != nil {
			return res, &Error{Kind: ErrRejected, Op: op, Message: "reading PostgreSQL's WAL summaries failed", Err: err}
		}
		res.ChangedFrom = "page scan"
		if changes != nil {
			tarOpts.ChangedBlocks = changes.FileBlocks
			res.ChangedFrom = "WAL summaries"
		} else if why != "" {
			res.ChangedFrom = "page scan (WAL summaries not usable: " + why + ")"
		}
	}

	up, err := c.BeginBackup(ctx, name)
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
		return res, &Error{Kind: ErrRejected, Op: op, Message: "reading the data directory failed", Err: err}
	}
	toWrite, unchanged := delta.unchanged(scan.Files)
	parts := basebackup.Partition(toWrite, opts.PartThreshold)
	var prog *Progress
	if opts.Progress != nil {
		prog = NewProgress(opts.Progress, "backup "+name, scan.DataCatalogSize)
	}
	enc := protocol.EncryptionNone
	if c.cfg.Key != nil {
		enc = protocol.EncryptionLibsodium
	}
	comp := c.cfg.Compression

	// Parts in parallel; the first failure cancels the rest.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type partResult struct {
		object string
		files  []basebackup.File
		tar    basebackup.TarResult
		stored int64
	}
	results := make([]partResult, len(parts))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	sem := make(chan struct{}, opts.Concurrency)
	for i, files := range parts {
		wg.Add(1)
		go func(i int, files []basebackup.File) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-pctx.Done():
				return
			}
			defer func() { <-sem }()
			object := basebackup.PartObjectName(i+1, comp)
			tr, stored, err := c.uploadTar(pctx, up, object, comp, enc, prog, func(w io.Writer) (basebackup.TarResult, error) {
				return basebackup.WriteTarWith(w, files, tarOpts)
			})
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			results[i] = partResult{object: object, files: files, tar: tr, stored: stored}
		}(i, files)
	}
	wg.Wait()
	if firstErr != nil {
		prog.Done()
		return res, firstErr
	}
	// pg_control last among the data, as WAL-G and PostgreSQL do.
	ctlObject := basebackup.PgControlObjectName(comp)
	ctlTar, ctlStored, err := c.uploadTar(ctx, up, ctlObject, comp, enc, prog, func(w io.Writer) (basebackup.TarResult, error) {
		return basebackup.WriteTar(w, []basebackup.File{scan.PgControl})
	})
	if err != nil {
		prog.Done()
		return res, err
	}
	prog.Done()

	stopLSN, label, spcmap, err := sess.stop(ctx, pgdata)
	if err != nil {
		return res, &Error{Kind: ErrRejected, Op: op, Message: "stopping the backup failed", Err: err}
	}
	finishTime := now()
	labelObject := basebackup.LabelObjectName(comp)
	_, labelStored, err := c.uploadTar(ctx, up, labelObject, comp, enc, nil, func(w io.Writer) (basebackup.TarResult, error) {
		return basebackup.TarResult{}, basebackup.WriteLabelTar(w, label, spcmap, finishTime)
	})
	if err != nil {
		return res, err
	}

	fm := basebackup.NewFilesMetadata()
	var stored, uncompressed int64
	for _, r := range results {
		fm.AddTar(r.object, r.tar.Members, r.files)
		stored += r.stored
		uncompressed += r.tar.Bytes
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
	fm.AddSkipped(unchanged)
	res.Unchanged = len(unchanged)
	if len(res.Corrupt) > 0 {
		msg := corruptText(res.Corrupt)
		if opts.FailOnCorruptPages {
			return res, &Error{Kind: ErrIntegrity, Op: op, Message: "page checksum failures (the backup was not committed): " + msg + "; check the storage, then run amcheck or pg_checksums, or repair from a replica"}
		}
		if opts.Warn != nil {
			fmt.Fprintf(opts.Warn, "walgate-client: WARNING: %s: page checksum failures recorded in files_metadata.json: %s\n", name, msg)
		}
	}
	fm.AddTar(ctlObject, ctlTar.Members, []basebackup.File{scan.PgControl})
	fm.AddTar(labelObject, []string{"backup_label", "tablespace_map"}, nil)
	host, _ := os.Hostname()
	tli := uint32(0)
	if w, err := pgname.ParseWALFile(sess.startWAL); err == nil {
		tli = uint32(w.Timeline)
	}
	sentinelDoc := basebackup.Sentinel{
		LSN: basebackup.LSN(sess.startLSN), FinishLSN: basebackup.LSN(stopLSN), Timeline: &tli,
		PgVersion: sess.pgVersion, SystemIdentifier: &sess.sysID, WALSegmentSize: sess.segSize,
		UncompressedSize: uncompressed + ctlTar.Bytes, CompressedSize: stored + ctlStored + labelStored,
		DataCatalogSize: scan.DataCatalogSize, Version: basebackup.SentinelVersion,
		StartTime: startTime.UTC(), FinishTime: finishTime.UTC(), DateFmt: basebackup.DateFmt,
		Hostname: host, DataDir: pgdata, IsPermanent: opts.Permanent,
	}
	if len(scan.Tablespaces) > 0 {
		sentinelDoc.Spec = basebackup.NewTablespaceSpec(pgdata, scan.Tablespaces)
	}
	if delta != nil {
		lsn := basebackup.LSN(delta.parent.StartLSN)
		sentinelDoc.DeltaLSN, sentinelDoc.DeltaFrom = &lsn, delta.parent.Name
		sentinelDoc.DeltaFullName, sentinelDoc.DeltaCount = delta.fullName, delta.depth
	}
	// metadata.json, files_metadata.json, then (at commit) the sentinel:
	// WAL-G's order.
	for _, d := range []struct {
		object string
		v      any
	}{{"metadata.json", sentinelDoc.Metadata()}, {"files_metadata.json", fm}} {
		data, err := json.Marshal(d.v)
		if err != nil {
			return res, err
		}
		if _, err := up.Upload(ctx, d.object, "none", protocol.EncryptionNone, bytes.NewReader(data)); err != nil {
			return res, err
		}
	}
	sentinel, err := json.Marshal(sentinelDoc)
	if err != nil {
		return res, err
	}
	sum, err := up.Commit(ctx, sentinel)
	if err != nil {
		return res, err
	}
	res.BackupSummary, res.Parts = sum, len(parts)
	return res, nil
}

// uploadTar streams one tar object: build → compress → encrypt → upload,
// through a pipe, with memory bounded by the codec's buffers.
func (c *Client) uploadTar(ctx context.Context, up *BackupUpload, object string, comp codec.Compression, enc string,
	prog *Progress, build func(io.Writer) (basebackup.TarResult, error)) (basebackup.TarResult, int64, error) {
	pr, pw := io.Pipe()
	var tr basebackup.TarResult
	done := make(chan error, 1)
	go func() {
		w, err := codec.NewWriter(pw, comp, c.cfg.Key)
		if err == nil {
			var out io.Writer = w
			if prog != nil {
				out = progressWriter{w: w, p: prog}
			}
			tr, err = build(out)
			if cerr := w.Close(); err == nil {
				err = cerr
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
