package client

import (
	"context"
	"io"

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

// DecodeWAL is what wal-fetch does with the body of a stored object of
// size bytes whose headers give its SHA-256, compression, content ID and
// plain size: decode it with one of keys into w, checking everything.
func DecodeWAL(body io.Reader, size int64, sha256, contentID, plainSize string, comp codec.Compression, keys []*codec.Key, w io.Writer) error {
	obj := walObject{size: size, sha256: sha256, compression: comp, contentID: contentID, plainSize: plainSize}
	return (&Client{}).decodeWAL("fetch", body, obj, keys, w)
}
