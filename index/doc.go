// Package index is walgate's catalog: what the gateway holds, for which
// cluster, where, with which hashes, and which tokens may reach it. It keeps
// everything in one bbolt file behind a typed API.
//
// Rules: no bbolt transaction or byte slice escapes this package; no network
// or storage I/O runs inside a write transaction; keys sort so that range
// scans follow WAL order; the schema is versioned (meta/schema). The catalog
// is a cache of the object stores (DESIGN.md guarantee 5): losing it loses
// no archived data.
package index
