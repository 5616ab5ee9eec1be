package main

import (
	"github.com/walgate/walgate/cmd/internal/cli"
)

// clientExits is every exit code of walgate-client with its meaning; the
// global help lists them all and each verb's help those it can return.
var clientExits = []cli.ExitCode{
	{Code: exitOK, Meaning: "success"},
	{Code: exitUnavailable, Meaning: "gateway unreachable or failing: retry later; wal-fetch only on a standby (standby.signal), which retries by itself"},
	{Code: exitUsage, Meaning: "usage or configuration error: fix the command or the environment"},
	{Code: exitAuth, Meaning: "not authorised: token refused, scope missing, or gateway certificate not trusted"},
	{Code: exitIntegrity, Meaning: "integrity failure: hash mismatch, wrong key, tampered or corrupt data"},
	{Code: exitConflict, Meaning: "wal-push: this name was archived before with different content, nothing overwritten; wal-push, backup-push: the cluster name belongs to another PostgreSQL system, nothing stored; delete: the gateway's guard rails refused the deletion, nothing deleted"},
	{Code: exitRejected, Meaning: "request rejected as invalid, or a local file could not be read or written"},
	{Code: exitDrillFailed, Meaning: "drill: the restore drill ran and failed (its report was sent to the gateway)"},
	{Code: exitWALVerify, Meaning: "wal-verify: the archive cannot restore the newest backup to now (the report says why)"},
	{Code: exitNotFound, Meaning: "wal-fetch: the gateway's catalog has no such file (normal at the end of recovery: PostgreSQL ends archive recovery and promotes)"},
	{Code: exitStopRecovery, Meaning: "wal-fetch: the file may be archived but could not be restored (gateway unreachable after retries, every copy damaged, token or TLS refused, configuration or local write error); above 125, so PostgreSQL stops recovery with FATAL instead of promoting early. Fix the cause and start PostgreSQL again. Codes 2-6 are not used by wal-fetch."},
}

// exits picks the listed codes from clientExits.
func exits(codes ...int) []cli.ExitCode {
	var out []cli.ExitCode
	for _, c := range codes {
		for _, e := range clientExits {
			if e.Code == c {
				out = append(out, e)
			}
		}
	}
	return out
}

var (
	walPushHelp = cli.Help{
		Usage: "walgate-client wal-push PATH   (archive_command = 'walgate-client wal-push %p')",
		Text: `Compress, encrypt and archive one WAL file through the gateway. Exits 0
only when the gateway acknowledged it durably and the hashes matched, so
PostgreSQL never recycles a segment that is not safe. With
WALGATE_LOOKAHEAD > 0 it also starts a background process (one per
pg_wal) that pushes the next segments PostgreSQL has marked ready ahead of
the archiver, so archiving keeps up under load; a later call for one of
them returns at once, or waits for its push under way.`,
		Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitIntegrity, exitConflict, exitRejected),
	}
	walFetchHelp = cli.Help{
		Usage: "walgate-client wal-fetch NAME DEST   (restore_command = 'walgate-client wal-fetch %f %p')",
		Text: `Restore WAL file NAME to DEST: DEST appears complete and verified, or not at
all. PostgreSQL runs it in the data directory; on a standby
(standby.signal there) an unreachable gateway exits 1 so the standby
retries by itself. WALGATE_PREFETCH segments are restored ahead in the
background.`,
		Exits: exits(exitOK, exitUnavailable, exitNotFound, exitStopRecovery),
	}
	backupListHelp = cli.Help{
		Usage: "walgate-client backup-list [--json]",
		Text: `List the cluster's committed backups, oldest first: kind, each delta's
parent and chain depth, start and finish time and LSN, timeline, data and
stored size, PostgreSQL major. A backup that cannot be restored (a link of
its chain or an object missing or damaged on every store) is named below
the table. --json prints the schema documented in docs/json.md.`,
		Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth),
	}
	backupFetchHelp = cli.Help{
		Usage: "walgate-client backup-fetch DIR NAME|LATEST [--recovery [--target-time T | --target-lsn L]] [--no-archive] [--tablespace OID=DIR]... [--pg-bin DIR]",
		Text: `Restore a backup into DIR (empty or missing), every object verified.
Tablespaces go where they were unless moved with --tablespace. On failure
DIR is left as it was. WALGATE_DOWNLOAD_CONCURRENCY parts at once.

--recovery writes recovery.signal and a restore_command through this
program; a target (--target-time, --target-lsn) promotes when reached.
--target-time takes RFC 3339 or PostgreSQL's timestamp with a zone, e.g.
2026-03-01T12:00:00Z or '2026-03-01 12:00:00+01'.

The restored copy keeps the source's postgresql.conf, archive_command
included: started as it is, it archives into the source's archive.
--no-archive sets archive_mode = off in its postgresql.auto.conf.

--pg-bin refuses, before writing, a backup of another PostgreSQL major than
the server programs in that directory.`,
		Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitIntegrity, exitRejected),
	}
	drillHelp = cli.Help{
		Usage: "walgate-client drill [NAME|LATEST] [--target-time T] [--check-sql FILE] [--keep] [--timeout D] [--pg-bin DIR]",
		Text: `Restore drill: fetch the backup into a scratch directory (under
WALGATE_DRILL_DIR or $TMPDIR), recover it with a private PostgreSQL that
never archives (archive_mode = off in the copy), check every database with
amcheck (created in the throwaway copy) and run FILE, then stop, clean up
and send the report to the gateway, which shows it in 'walgate status'.
Exits 7 if the drill failed, also when recovery (without --target-time)
ended short of the newest archived segment or timeline.`,
		Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitIntegrity, exitRejected, exitDrillFailed),
	}
	checkHelp = cli.Help{
		Usage: "walgate-client check",
		Text: `Check URL, TLS and token against the gateway before PostgreSQL depends on
them: prints the gateway's version, the token's cluster and scopes, and the
compression and encryption this host uses.`,
		Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth),
	}
	versionHelp = cli.Help{Usage: "walgate-client version", Text: "Print the client's version.", Exits: exits(exitOK)}
)
