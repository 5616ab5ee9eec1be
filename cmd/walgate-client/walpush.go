package main

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"github.com/walgate/walgate/client"
)

// runWALPush archives one WAL file (archive_command's %p), and up to
// WALGATE_LOOKAHEAD further segments PostgreSQL has marked ready.
func runWALPush(ctx context.Context, c *client.Client, path string, getenv func(string) string) error {
	n, err := envCount(getenv, "WALGATE_LOOKAHEAD", client.DefaultLookahead)
	if err != nil {
		return err
	}
	c.UseGatewayState(filepath.Dir(path))
	_, err = c.PushWALLookahead(ctx, path, n)
	return err
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
// a heap of pushMemoryPerSegment per segment it may push at once (the one
// asked for and WALGATE_LOOKAHEAD more), and with it beyond. The process
// lives for one push, nearly all it allocates stays live until the end, so
// collecting it only costs time and fresh memory (the collector's workers
// and their stacks). GOGC or GOMEMLIMIT in the environment leave the Go
// defaults in place.
func tuneGCForPush(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	n, err := envCount(getenv, "WALGATE_LOOKAHEAD", client.DefaultLookahead)
	if err != nil {
		return // runWALPush reports it
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(int64(n+2) * pushMemoryPerSegment)
}
