// Package gcs is the backends.Backend that stores objects in a Google Cloud
// Storage bucket through the JSON API (cloud.google.com/go/storage).
//
// It owns the mapping from keys to object names (a key "a/b" is the object
// "<prefix>/a/b", or "a/b" with no prefix), the translation of the SDK's
// errors into the shared ones, and the upload of each Put:
//
//   - Data streams through the SDK's resumable upload, one chunk
//     (Config.ChunkSize, default 4 MiB) in memory at a time; an object that
//     fits in one chunk goes in a single request. The upload is committed
//     only by the final request, which the Writer sends when it is closed,
//     so on a reader error, a cancelled ctx or a size mismatch Put cancels
//     the upload's context instead of closing it: nothing becomes visible
//     and an older object under the key stays.
//   - IfNotExists is the precondition ifGenerationMatch=0, checked by the
//     store when it commits: of concurrent writers at most one wins, the
//     others get 412, which is backends.ErrExists.
//   - Storage classes are the store's own names: STANDARD, NEARLINE,
//     COLDLINE, ARCHIVE ("" = the bucket's default). SetClass rewrites the
//     object onto itself with the new class, keeping its metadata, guarded
//     by a generation precondition so a concurrent overwrite is never undone.
//   - Metadata is the object's user metadata, stored and returned as given.
//
// Config.Timeout bounds each request attempt (connecting, waiting for the
// response headers, sending one chunk of an upload) and each wait for data
// while a download streams, never a whole stream. Failed attempts are
// retried up to Config.MaxAttempts (upload chunks for MaxAttempts×Timeout,
// as the SDK bounds those by time). A write is retried even without a
// precondition, from the chunk buffer, so a retry only ever resends this
// Put's bytes; the one cost is that a single-request IfNotExists write whose
// success was lost in transit is retried into ErrExists.
//
// It must never:
//   - make a partly written object visible under its key, or replace an
//     object unless a Put of the whole new object has succeeded;
//   - hold a whole object in memory, or more than one chunk per Put;
//   - touch object names outside its prefix, or put credentials into
//     errors, logs or Name();
//   - contact the store in New: `walgate backend check` does that;
//   - know anything of PostgreSQL, the catalog or the gateway.
package gcs
