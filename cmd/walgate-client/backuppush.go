package main

import (
	"context"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/walgate/walgate/client"
)

var backupPushHelp = cli.Help{
	Usage: "walgate-client backup-push PGDATA [--full | --delta] [--permanent] [--fail-on-corrupt-pages]",
	Text: `Take a base backup, full or delta. Flags may come before or after PGDATA.

Connects to the local PostgreSQL with the usual PG* variables (PGHOST, PGPORT,
PGUSER, ...), runs pg_backup_start and pg_backup_stop on one connection, reads
the data files from disk and streams them as compressed, encrypted tar
partitions to the gateway, several at once. The backup is visible only once
every partition is stored and verified; on failure nothing is left.

A delta backup stores only the pages of each relation data file that changed
since its parent backup started (found by reading every page's LSN here, on
the database host); other files are stored whole. With data checksums on,
every page read is verified; failures are recorded in files_metadata.json and
reported (fatal with --fail-on-corrupt-pages).

A --permanent backup is never deleted by the gateway's retention, which also
keeps the WAL from its start to its finish, so it stays restorable.

Settings:
  WALGATE_DELTA_MAX_STEPS [WALG_DELTA_MAX_STEPS]  deltas allowed after a full
      backup before the next full one (default 0: always full)
  WALGATE_DELTA_ORIGIN [WALG_DELTA_ORIGIN]  parent of a delta: LATEST (the
      newest backup, default) or LATEST_FULL (the newest full backup)
  WALGATE_TAR_SIZE_THRESHOLD [WALG_TAR_SIZE_THRESHOLD]  bytes of data per
      partition (default 1 GiB)
  WALGATE_UPLOAD_CONCURRENCY [WALG_UPLOAD_CONCURRENCY]  partitions in flight
      (default 2)`,
	Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitIntegrity, exitRejected),
}

// envInt reads the first of names that is set as a positive integer.
func envInt(getenv func(string) string, def int64, names ...string) (int64, error) {
	for _, n := range names {
		if v := getenv(n); v != "" {
			i, err := strconv.ParseInt(v, 10, 64)
			if err != nil || i <= 0 {
				return 0, usageError("%s=%q: want a positive whole number", n, v)
			}
			return i, nil
		}
	}
	return def, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func runBackupPush(ctx context.Context, c *client.Client, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate-client backup-push")
	full := fs.Bool("full", false, "take a full backup whatever WALGATE_DELTA_MAX_STEPS says")
	delta := fs.Bool("delta", false, "take a delta backup of the parent WALGATE_DELTA_ORIGIN names; fail if there is none")
	permanent := fs.Bool("permanent", false, "mark the backup permanent: retention never deletes it")
	failCorrupt := fs.Bool("fail-on-corrupt-pages", false, "fail (commit nothing) when a page fails its checksum")
	pos, err := cli.Parse(fs, backupPushHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("backup-push takes one argument, the data directory (PGDATA), got %d", len(pos))
	}
	if *full && *delta {
		return usageError("--full and --delta exclude each other")
	}
	opts := client.BackupPushOptions{Warn: stderr, FailOnCorruptPages: *failCorrupt, Permanent: *permanent, DeltaOrigin: client.DeltaFromLatest}
	switch {
	case *full:
		opts.Mode = client.BackupFull
	case *delta:
		opts.Mode = client.BackupDelta
	}
	for _, n := range []string{"WALGATE_DELTA_MAX_STEPS", "WALG_DELTA_MAX_STEPS"} {
		if v := getenv(n); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 0 {
				return usageError("%s=%q: want a whole number, 0 or more", n, v)
			}
			opts.DeltaMaxSteps = i
			break
		}
	}
	for _, n := range []string{"WALGATE_DELTA_ORIGIN", "WALG_DELTA_ORIGIN"} {
		if v := getenv(n); v != "" {
			switch strings.ToUpper(v) {
			case client.DeltaFromLatest, client.DeltaFromLatestFull:
				opts.DeltaOrigin = strings.ToUpper(v)
			default:
				return usageError("%s=%q: want LATEST or LATEST_FULL", n, v)
			}
			break
		}
	}
	threshold, err := envInt(getenv, 0, "WALGATE_TAR_SIZE_THRESHOLD", "WALG_TAR_SIZE_THRESHOLD")
	if err != nil {
		return err
	}
	conc, err := envInt(getenv, 2, "WALGATE_UPLOAD_CONCURRENCY", "WALG_UPLOAD_CONCURRENCY")
	if err != nil {
		return err
	}
	opts.PartThreshold, opts.Concurrency = threshold, int(conc)
	if isTerminal(stderr) {
		opts.Progress = stderr
	}
	start := time.Now()
	res, err := c.BackupPush(ctx, pos[0], opts)
	if err != nil {
		return err
	}
	if res.FullReason != "" {
		fmt.Fprintf(stderr, "note: full backup instead of a delta: %s\n", res.FullReason)
	}
	kind := "full backup"
	partitions := "partitions"
	if res.Parts == 1 {
		partitions = "partition"
	}
	if res.Kind == "delta" {
		kind = fmt.Sprintf("delta backup of %s (depth %d; %d files as increments holding %d changed pages, found by %s; %d files unchanged)", res.DeltaFrom, res.Depth, res.Incremented, res.ChangedPages, res.ChangedFrom, res.Unchanged)
	}
	fmt.Fprintf(stderr, "backup %s committed: %s, %d %s, %.1f MiB of data stored as %.1f MiB, start %s, finish %s, in %s\n",
		res.Name, kind, res.Parts, partitions, float64(res.UncompressedSize)/(1<<20), float64(res.StoredSize)/(1<<20),
		lsnText(res.StartLSN), lsnText(res.FinishLSN), time.Since(start).Round(100*time.Millisecond))
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "note: %s vanished during the backup (normal: WAL replay recreates it if needed)\n", s)
	}
	return nil
}

func lsnText(l uint64) string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }
