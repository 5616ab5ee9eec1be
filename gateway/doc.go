// Package gateway is the walgate daemon's core: the HTTP server (fiber, with
// streaming request bodies), token authentication, streaming ingest of WAL
// into the backends with the durability and integrity checks of DESIGN.md
// guarantees 1-4, and the catalog updates that follow.
//
// It imports index, backends and the wire protocol; it never imports the
// client and never sees plaintext or keys. Handlers never buffer a whole
// body: request bodies are read as streams with a per-read idle deadline and
// explicit size limits, because fiber's BodyLimit and ReadTimeout do not
// apply sensibly to streamed bodies.
package gateway
