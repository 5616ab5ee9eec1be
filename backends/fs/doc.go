// Package fs is the backends.Backend that stores objects as files under one
// local directory (the root).
//
// It owns the mapping from keys to paths and the durability of every write:
// a key "a/b/c" is the file <root>/a/b/c, written to a temp file
// (".walgate-tmp-<random>") in the same directory, fsynced, renamed (or
// linked, for IfNotExists) into place, and made durable by fsyncing the
// directory. Metadata lives in "user.walgate.<name>" extended attributes.
// CleanTemp removes the temp files a crashed writer leaves behind.
// docs/backends.md describes the on-disk layout in full.
//
// It must never:
//   - make a partly written object visible under its key, or replace an
//     object unless a Put of the whole new object has succeeded;
//   - follow a symbolic link below the root, or touch any path outside it;
//   - hold a whole object in memory: data streams through one bounded buffer;
//   - know anything of PostgreSQL, the catalog or the gateway: keys are
//     opaque slash-separated names.
package fs
