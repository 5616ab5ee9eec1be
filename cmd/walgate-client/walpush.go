package main

import (
	"context"
	"path/filepath"
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
