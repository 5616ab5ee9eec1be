package main

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/walgate/walgate/client"
)

// fetchWithPrefetch restores name to dest, from a segment restored ahead
// when there is one, and then starts restoring the next WALGATE_PREFETCH
// segments of the timeline in the background. Whatever happens to the
// background work, the answer is the foreground fetch's.
func fetchWithPrefetch(ctx context.Context, c *client.Client, name, dest string, getenv func(string) string) error {
	n, err := envCount(getenv, "WALGATE_PREFETCH", client.DefaultPrefetch)
	if err != nil {
		return err
	}
	c.UseGatewayState(filepath.Dir(dest))
	if n == 0 {
		return c.FetchWAL(ctx, name, dest)
	}
	if _, err := c.FetchWALPrefetched(ctx, name, dest, n); err != nil {
		return err
	}
	walDir, next := client.PrefetchPlan(name, dest, n)
	if len(next) > 0 && c.PrefetchNeeded(walDir, next) {
		if exe, err := os.Executable(); err == nil {
			client.StartPrefetch(exe, walDir, next) // best effort
		}
	}
	return nil
}

// runWALPrefetch is the background half of wal-fetch (not for direct
// use): it restores segments ahead into pg_wal/walgate/prefetch, within
// client.PrefetchLifetime, and reports nothing: its output goes nowhere.
func runWALPrefetch(ctx context.Context, args []string, getenv func(string) string, environ []string, stderr io.Writer) int {
	walDir, names, err := client.ParsePrefetchArgs(args)
	if err != nil {
		return fail(stderr, "wal-prefetch", usageError("%v", err))
	}
	ctx, cancel := context.WithTimeout(ctx, client.PrefetchLifetime)
	defer cancel()
	return runWithClient(stderr, "wal-prefetch", getenv, environ, func(c *client.Client) error {
		c.UseGatewayState(walDir)
		c.Prefetch(ctx, walDir, names)
		return nil
	})
}
