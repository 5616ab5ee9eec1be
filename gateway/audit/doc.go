// Package audit keeps the gateway's audit log: one JSON line per
// administrative act (token add, revoke and rotate, dashboard login,
// delete, lifecycle apply, index rebuild, backend check) in the
// append-only file audit.log of the data directory, rotated by size.
//
// An entry names the acting token by its ID and never holds a secret.
// Each line is written and fsync'd before the act's answer goes out, so an
// acknowledged act is on disk. The gateway and the offline admin verbs
// (which run only while no gateway serves the directory) append to the
// same file; a lock file serialises them.
package audit
