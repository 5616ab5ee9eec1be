package main

import (
	"context"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/pgname"
)

// tablespaceFlag collects --tablespace OID=DIR.
type tablespaceFlag map[string]string

func (t tablespaceFlag) String() string { return "" }

func (t tablespaceFlag) Set(v string) error {
	oid, dir, ok := strings.Cut(v, "=")
	if !ok || oid == "" || dir == "" || strings.Trim(oid, "0123456789") != "" {
		return fmt.Errorf("want OID=DIR, e.g. 16384=/srv/pg/ts1, not %q", v)
	}
	if _, dup := t[oid]; dup {
		return fmt.Errorf("tablespace %s given twice", oid)
	}
	t[oid] = dir
	return nil
}

// checkBackupName accepts a backup name or LATEST.
func checkBackupName(name string) error {
	if name == protocol.Latest {
		return nil
	}
	if err := protocol.ValidateBackupName(name); err != nil {
		return usageError("%v", err)
	}
	return nil
}

// downloadConcurrency reads WALGATE_DOWNLOAD_CONCURRENCY
// [WALG_DOWNLOAD_CONCURRENCY].
func downloadConcurrency(getenv func(string) string) (int, error) {
	n, err := envInt(getenv, client.DefaultDownloadConcurrency, "WALGATE_DOWNLOAD_CONCURRENCY", "WALG_DOWNLOAD_CONCURRENCY")
	if err != nil {
		return 0, err
	}
	if n > 64 {
		return 0, usageError("WALGATE_DOWNLOAD_CONCURRENCY=%d: at most 64", n)
	}
	return int(n), nil
}

// restoreCommand is restore_command through this very walgate-client.
func restoreCommand() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find this program's path for restore_command: %w", err)
	}
	return client.QuoteShell(exe) + " wal-fetch %f %p", nil
}

func runBackupFetch(ctx context.Context, c *client.Client, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate-client backup-fetch")
	recovery := fs.Bool("recovery", false, "write recovery.signal and restore_command through this program")
	targetTime := fs.String("target-time", "", "with --recovery: recover up to `TIME` (RFC 3339 or PostgreSQL timestamp with zone), then promote")
	targetLSN := fs.String("target-lsn", "", "with --recovery: recover up to `LSN`, then promote")
	noArchive := fs.Bool("no-archive", false, "set archive_mode = off in the restored copy's postgresql.auto.conf")
	pgBin := fs.String("pg-bin", "", "refuse a backup of another major than the server programs in `DIR`")
	ts := tablespaceFlag{}
	fs.Var(ts, "tablespace", "restore tablespace OID into DIR (`OID=DIR`, repeatable)")
	pos, err := cli.Parse(fs, backupFetchHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("backup-fetch takes two arguments, the directory to restore into and the backup name (or LATEST)")
	}
	dir, name := pos[0], pos[1]
	if err := checkBackupName(name); err != nil {
		return err
	}
	if *targetTime != "" && *targetLSN != "" {
		return usageError("give one recovery target: --target-time or --target-lsn, not both")
	}
	if (*targetTime != "" || *targetLSN != "") && !*recovery {
		return usageError("--target-time and --target-lsn go with --recovery")
	}
	if *targetLSN != "" {
		if _, err := pgname.ParseLSN(*targetLSN); err != nil {
			return usageError("--target-lsn: %v", err)
		}
	}
	if *targetTime != "" {
		if _, *targetTime, err = client.ParseTargetTime(*targetTime); err != nil {
			return usageError("--target-time: %v", err)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return usageError("directory %q: %v", dir, err)
	}
	if err := client.CheckRestoreDir(abs); err != nil {
		return usageError("refusing to restore into %s: %v", abs, err)
	}
	conc, err := downloadConcurrency(getenv)
	if err != nil {
		return err
	}
	opts := client.RestoreOptions{Tablespaces: ts, Concurrency: conc, Fsync: true, PgBin: *pgBin, NoArchive: *noArchive}
	if isTerminal(stderr) {
		opts.Progress = stderr
	}
	if *recovery {
		rc, err := restoreCommand()
		if err != nil {
			return err
		}
		opts.Recovery = &client.RecoverySettings{RestoreCommand: rc, TargetTime: *targetTime, TargetLSN: *targetLSN}
	}
	res, err := c.FetchBackup(ctx, name, abs, opts)
	if err != nil {
		return err
	}
	b := res.Backup
	fmt.Fprintf(stdout, "restored %s into %s: %d objects, %.1f MiB stored, in %s\n",
		b.Name, res.Dir, res.Objects, float64(res.StoredBytes)/(1<<20), res.Took.Round(100*time.Millisecond))
	fmt.Fprintf(stdout, "  backup of PostgreSQL %d on %s: start %s, finish %s (%s), timeline %d\n",
		b.PgVersion/10000, orDash(b.Hostname), lsnText(b.StartLSN), lsnText(b.FinishLSN), b.FinishTime.UTC().Format(time.RFC3339), b.Timeline)
	for _, t := range res.Tablespaces {
		fmt.Fprintf(stdout, "  tablespace %s restored to %s\n", t.OID, t.Dir)
	}
	if opts.Recovery != nil {
		target := "the end of the archived WAL"
		switch {
		case *targetTime != "":
			target = "recovery_target_time " + *targetTime + ", then promote"
		case *targetLSN != "":
			target = "recovery_target_lsn " + *targetLSN + ", then promote"
		}
		fmt.Fprintf(stdout, "  recovery.signal written; restore_command = '%s'; recovers to %s\n", opts.Recovery.RestoreCommand, target)
		fmt.Fprintf(stdout, "  start PostgreSQL on %s to recover (the server's environment needs the WALGATE_* settings)\n", res.Dir)
	} else {
		fmt.Fprintf(stdout, "  no recovery settings written: add restore_command and recovery.signal (or use --recovery) before starting PostgreSQL\n")
	}
	if *noArchive {
		fmt.Fprintf(stdout, "  archive_mode = off written to %s: this copy does not archive\n", filepath.Join(res.Dir, "postgresql.auto.conf"))
	} else {
		fmt.Fprintf(stderr, "warning: the restored copy keeps the source's archive_command: started as it is, it archives into the source's archive "+
			"(a promoted copy on a new timeline mixes its WAL into it). Unless it replaces the source, set archive_mode = off "+
			"(or another archive_command) in %s before starting it, or restore with --no-archive\n", filepath.Join(res.Dir, "postgresql.auto.conf"))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
