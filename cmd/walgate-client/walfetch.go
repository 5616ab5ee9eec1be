package main

import (
	"context"

	"github.com/walgate/walgate/client"
)

// runWALFetch restores one WAL file (restore_command's %f and %p).
func runWALFetch(ctx context.Context, c *client.Client, name, dest string) error {
	return c.FetchWAL(ctx, name, dest)
}
