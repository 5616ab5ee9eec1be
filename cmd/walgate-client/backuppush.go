package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/term"

	"github.com/walgate/walgate/client"
)

const backupPushHelp = `walgate-client backup-push PGDATA [--full]: take a full base backup.

Connects to the local PostgreSQL with the usual PG* variables (PGHOST, PGPORT,
PGUSER, ...), runs pg_backup_start and pg_backup_stop on one connection, reads
the data files from disk and streams them as compressed, encrypted tar
partitions to the gateway, several at once. The backup is visible only once
every partition is stored and verified; on failure nothing is left.
Settings: WALGATE_TAR_SIZE_THRESHOLD [WALG_TAR_SIZE_THRESHOLD] (bytes per
partition, default 1 GiB), WALGATE_UPLOAD_CONCURRENCY [WALG_UPLOAD_CONCURRENCY]
(partitions in flight, default 2).`

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

func runBackupPush(ctx context.Context, c *client.Client, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup-push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, backupPushHelp); fs.PrintDefaults() }
	fs.Bool("full", true, "take a full backup (the only kind this version takes)")
	delta := fs.Bool("delta", false, "take a delta backup (not available in this version)")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if fs.NArg() != 1 {
		return usageError("backup-push takes one argument, the data directory (PGDATA)")
	}
	if *delta {
		return usageError("delta backups are not available in this version; run backup-push without --delta for a full backup")
	}
	threshold, err := envInt(getenv, 0, "WALGATE_TAR_SIZE_THRESHOLD", "WALG_TAR_SIZE_THRESHOLD")
	if err != nil {
		return err
	}
	conc, err := envInt(getenv, 2, "WALGATE_UPLOAD_CONCURRENCY", "WALG_UPLOAD_CONCURRENCY")
	if err != nil {
		return err
	}
	opts := client.BackupPushOptions{PartThreshold: threshold, Concurrency: int(conc)}
	if isTerminal(stderr) {
		opts.Progress = stderr
	}
	start := time.Now()
	res, err := c.BackupPush(ctx, fs.Arg(0), opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "backup %s committed: %d partitions, %.1f MiB of data stored as %.1f MiB, start %s, finish %s, in %s\n",
		res.Name, res.Parts, float64(res.UncompressedSize)/(1<<20), float64(res.StoredSize)/(1<<20),
		lsnText(res.StartLSN), lsnText(res.FinishLSN), time.Since(start).Round(100*time.Millisecond))
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "note: %s vanished during the backup (normal: WAL replay recreates it if needed)\n", s)
	}
	return nil
}

func lsnText(l uint64) string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }
