package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/walgate/walgate/client"
)

// exitStopRecovery is wal-fetch's answer when a file may be archived but
// could not be restored. PostgreSQL reads every restore_command status from
// 1 to 125 as "not in the archive": archive recovery would end there and
// the server promote, silently short of the archive. A status above 125
// makes the startup process stop with FATAL instead (RestoreArchivedFile:
// wait_result_is_any_signal(rc, true)). 126 and 127 would be logged as
// "command not executable" and "command not found", and 129 to 192 read as
// "killed by signal N" (143, SIGTERM, even makes PostgreSQL exit quietly),
// so walgate uses 200.
const exitStopRecovery = 200

// standbySignal is the file whose presence in the data directory makes
// PostgreSQL run as a standby.
const standbySignal = "standby.signal"

// runWALFetch restores one WAL file (restore_command's %f and %p) and
// returns the exit code PostgreSQL must see. PostgreSQL runs
// restore_command in the data directory, so dataDir is the working
// directory.
func runWALFetch(ctx context.Context, args []string, getenv func(string) string, environ []string, dataDir string, stderr io.Writer) int {
	if len(args) != 2 {
		return failWALFetch(stderr, "", dataDir, usageError("wal-fetch takes two arguments, the WAL file name (%%f) and the destination path (%%p)"))
	}
	if err := client.CheckEnvironment(environ); err != nil {
		return failWALFetch(stderr, args[0], dataDir, err)
	}
	cfg, err := client.LoadConfig(getenv)
	if err != nil {
		return failWALFetch(stderr, args[0], dataDir, err)
	}
	c, err := client.New(cfg)
	if err != nil {
		return failWALFetch(stderr, args[0], dataDir, err)
	}
	defer c.Close()
	return failWALFetch(stderr, args[0], dataDir, fetchWithPrefetch(ctx, c, args[0], args[1], getenv))
}

// isStandby reports whether dataDir is a standby's data directory.
func isStandby(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, standbySignal))
	return err == nil
}

// walFetchCode maps wal-fetch's outcome to its exit code: 0 restored, 74
// (1..125: "not archived") only when the gateway's catalog answered that
// no such file is archived, 1 for a transient failure on a standby (which
// retries by itself and must not shut down for a blip), and 200 (stop
// recovery with FATAL) for everything else.
func walFetchCode(err error, standby bool) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case standby && errors.Is(err, client.ErrUnavailable):
		return exitUnavailable
	}
	return exitStopRecovery
}

// failWALFetch prints one line for a failed wal-fetch: the file, the
// cause, and what PostgreSQL will do and what to do about it.
func failWALFetch(stderr io.Writer, name, dataDir string, err error) int {
	standby := isStandby(dataDir)
	code := walFetchCode(err, standby)
	if err == nil {
		return code
	}
	what := "wal-fetch"
	if name != "" {
		what += " " + name
	}
	switch code {
	case exitNotFound:
		fmt.Fprintf(stderr, "walgate-client %s: %v (exit %d): not archived; PostgreSQL ends archive recovery here, which is normal at the end of the archive\n", what, err, code)
	case exitUnavailable:
		fmt.Fprintf(stderr, "walgate-client %s: %v (exit %d): the standby retries by itself; bring the gateway back\n", what, err, code)
	default:
		fmt.Fprintf(stderr, "walgate-client %s: %s: %v (exit %d): recovery stops with FATAL rather than end early; fix the cause and start PostgreSQL again, it resumes from this file\n",
			what, kindOf(err), err, code)
	}
	return code
}

// kindOf names the failure class of err for a DBA.
func kindOf(err error) string {
	var ue *usageErr
	switch {
	case errors.As(err, &ue), client.IsConfigError(err):
		return "usage or configuration error"
	case errors.Is(err, client.ErrAuth):
		return "not authorised"
	case errors.Is(err, client.ErrIntegrity):
		return "integrity failure, every copy tried"
	case errors.Is(err, client.ErrRejected):
		return "request rejected or local file error"
	}
	return "gateway unreachable or failing after retries"
}
