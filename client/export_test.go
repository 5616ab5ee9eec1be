package client

import (
	"context"
	"io"
	"path/filepath"
	"time"

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
	return c.pushWAL(ctx, path, split, nil)
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

// SetAheadTiming sets how long a background push-ahead waits for work
// before it ends and how long wal-push waits for a push of its segment
// under way in the background, and puts them back at the end of t.
func SetAheadTiming(t interface{ Cleanup(func()) }, idle, wait time.Duration) {
	oldIdle, oldWait := aheadIdle, aheadWait
	aheadIdle, aheadWait = idle, wait
	t.Cleanup(func() { aheadIdle, aheadWait = oldIdle, oldWait })
}

// LockPushing takes the lock a push of name in walDir holds, as a
// background push-ahead does while it pushes name.
func LockPushing(walDir, name string) (unlock func(), ok bool) {
	return lockName(filepath.Join(walDir, StateDir, "pushed"), name+lockSuffix, 0)
}

// StatusListings is how many times archive_status was listed to find
// ready segments.
func StatusListings() int64 { return statusListings.Load() }
