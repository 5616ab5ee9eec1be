// Package pgname is PostgreSQL's naming vocabulary as walgate uses it:
// WAL file names (segments, timeline history files, backup history files,
// partial segments), timelines and LSNs, and the long page header at the
// start of a segment (its system identifier).
//
// It owns the strict grammars that every name from the wire is checked
// against before it touches a catalog key or a storage path. It imports
// nothing of walgate's and must never do I/O.
package pgname
