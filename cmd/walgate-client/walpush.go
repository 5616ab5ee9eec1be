package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/walgate/walgate/client"
)

// runWALPush archives one WAL file (archive_command's %p), and has up to
// WALGATE_LOOKAHEAD further segments PostgreSQL has marked ready archived
// ahead by a background process (wal-push-ahead).
func runWALPush(ctx context.Context, c *client.Client, path string, getenv func(string) string) error {
	n, err := envCount(getenv, "WALGATE_LOOKAHEAD", client.DefaultLookahead)
	if err != nil {
		return err
	}
	c.UseGatewayState(filepath.Dir(path))
	start := func(walDir, name string) bool {
		exe, err := os.Executable()
		return err == nil && client.StartPushAhead(exe, walDir, name) == nil
	}
	_, err = c.PushWALLookahead(ctx, path, n, start)
	return err
}

// runWALPushAhead is the background half of wal-push (not for direct
// use): it archives ready segments ahead of PostgreSQL's archiver, up to
// WALGATE_LOOKAHEAD of them at once, compressing as many at once as there
// are CPUs, until the archiver leaves it nothing to do or
// client.PushAheadLifetime has passed. It reports nothing: its output goes
// nowhere, and wal-push archives whatever it left undone.
func runWALPushAhead(ctx context.Context, args []string, getenv func(string) string, environ []string, stderr io.Writer) int {
	walDir, name, err := client.ParsePushAheadArgs(args)
	if err != nil {
		return fail(stderr, "wal-push-ahead", usageError("%v", err))
	}
	n, err := envCount(getenv, "WALGATE_LOOKAHEAD", client.DefaultLookahead)
	if err != nil {
		return fail(stderr, "wal-push-ahead", err)
	}
	ctx, cancel := context.WithTimeout(ctx, client.PushAheadLifetime)
	defer cancel()
	return runWithClient(stderr, "wal-push-ahead", getenv, environ, func(c *client.Client) error {
		c.UseGatewayState(walDir)
		c.PushAhead(ctx, walDir, name, n, n, runtime.NumCPU())
		return nil
	})
}

// envCount reads a count from 0 (off) to client.MaxLookahead.
func envCount(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > client.MaxLookahead {
		return 0, usageError("%s=%q: want a whole number from 0 (off) to %d", name, v, client.MaxLookahead)
	}
	return n, nil
}

// pushMemoryPerSegment is about what one segment's push allocates in all:
// the zstd window and tables, the encoded object, the copy buffer.
const pushMemoryPerSegment = 16 << 20

// tuneGCForPush runs the exec'd wal-push without garbage collection up to
// a heap of twice pushMemoryPerSegment (it pushes one file; pushes ahead
// run in their own process), and with it beyond. The process
// lives for one push, nearly all it allocates stays live until the end, so
// collecting it only costs time and fresh memory (the collector's workers
// and their stacks). GOGC or GOMEMLIMIT in the environment leave the Go
// defaults in place.
func tuneGCForPush(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(2 * pushMemoryPerSegment)
}
