// Package layout is the archive's vocabulary as it lies in the object
// stores, WAL-G's layout: object keys (<cluster>/wal_005/...,
// <cluster>/basebackups_005/...), compression methods and their object
// name extensions, the metadata walgate stores with each object, the
// sentinel fields the catalog keeps, and backup names.
//
// It is a leaf: it imports nothing of walgate's, does no I/O and holds no
// state, so that the gateway, the rebuild and the client can share it. It
// never decides anything about a request; it only names things.
package layout
