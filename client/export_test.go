package client

import (
	"context"

	"github.com/walgate/walgate/client/codec"
)

// RecordFileOps makes FetchBackup tell fn of each step that orders a
// restore on disk: "syncfs" (after it), "write" (before it), with the
// path, and "fetched" with backup/object after each object is read and
// checked.
func RecordFileOps(o *RestoreOptions, fn func(op, path string)) { o.fileOps = fn }

// CopyHashing is copyHashing, the wal-push copy that hashes alongside.
var CopyHashing = copyHashing

// SetBootIDPath makes c read the machine's boot id from path instead of
// BootIDPath.
func SetBootIDPath(c *Client, path string) { c.bootIDPath = path }

// PushWALAlone is pushWAL with split chosen: true as a push alone runs,
// false as pushes beside pushes ahead run.
func (c *Client) PushWALAlone(ctx context.Context, path string, split bool) (PushResult, error) {
	return c.pushWAL(ctx, path, split)
}

// Level is the zstd level the client writes with.
func (c *Client) Level() codec.Level { return c.cfg.Level }
