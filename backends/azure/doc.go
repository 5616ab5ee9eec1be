// Package azure stores objects as block blobs in an Azure Blob Storage
// container, through azblob.
//
// A Put reads the stream one block at a time (Config.BlockSize, default
// 4 MiB): an object that fits in one block is one Put Blob; a larger one is
// staged block by block and made visible by Put Block List, so a failed or
// cancelled upload commits nothing (Azure drops uncommitted blocks). One
// Put holds at most one block in memory. Conditional create is
// If-None-Match: * on the request that makes the blob visible.
//
// Classes are access tiers: Hot, Cool, Cold, Archive (set at upload, changed
// by Set Blob Tier). A blob in Archive cannot be read until rehydrated:
// Get fails with backends.ErrArchived.
//
// Azure metadata names must be C# identifiers, so walgate's metadata key
// "content-id" is stored as "wg_content_id" and mapped back on Stat and
// List ('-' and '_' swap; the prefix keeps names from starting with a
// digit). List returns metadata with the listing (one request per 5,000
// blobs).
package azure
