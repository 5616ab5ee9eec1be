package client

// RecordFileOps makes FetchBackup tell fn of each step that orders a
// restore on disk: "syncfs" (after it), "write" (before it), with the path.
func RecordFileOps(o *RestoreOptions, fn func(op, path string)) { o.fileOps = fn }

// CopyHashing is copyHashing, the wal-push copy that hashes alongside.
var CopyHashing = copyHashing

// SetBootIDPath makes c read the machine's boot id from path instead of
// BootIDPath.
func SetBootIDPath(c *Client, path string) { c.bootIDPath = path }
