// Package azure is the backends.Backend that stores objects as block blobs
// in one Azure Blob Storage container, under an optional key prefix.
//
// It owns the mapping of keys, metadata and storage classes onto Azure: a
// key "a/b" is the blob "<prefix>/a/b"; metadata key "codec-v" is the
// blob metadata "wg_codec_v" (Azure metadata names are case-insensitive C#
// identifiers); classes are the access tiers Hot, Cool, Cold and Archive.
// A Put stages blocks of Config.BlockSize, one at a time, and commits them
// with one Put Block List (or, for an object of at most one block, one Put
// Blob), so nothing is visible before the commit and memory per Put is one
// block. IfNotExists is If-None-Match: * on that commit.
// docs/backends.md describes the configuration.
//
// It must never:
//   - make a partly written object visible, or replace an object unless a
//     Put of the whole new object has succeeded;
//   - put a secret (account key, SAS, connection string) into an error, a
//     log line or Name();
//   - hold a whole object in memory;
//   - create or delete containers, or know anything of PostgreSQL, the
//     catalog or the gateway.
package azure
