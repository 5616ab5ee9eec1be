package main

import (
	"context"

	"github.com/walgate/walgate/client"
)

// runWALPush archives one WAL file (archive_command's %p).
func runWALPush(ctx context.Context, c *client.Client, path string) error {
	_, err := c.PushWAL(ctx, path)
	return err
}
