// Package gateway is the walgate daemon's front: the HTTP server (fiber,
// with streaming request bodies) on the routes gateway/protocol exports,
// token authentication, the handlers of WAL push and fetch, backup
// sessions, drills, health and retention deletion, the janitor of abandoned
// sessions and the lifecycle schedule, Prometheus metrics and the
// dashboard. Open wires it: the catalog (index), the stores
// (gateway/stores), the fleet's WAL summaries (gateway/fleet), the
// lifecycle executor (lifecycle/apply) and the admin socket (gateway/admin).
//
// It never writes to a store itself (gateway/stores does, within the ack
// policy), never decides what to delete (lifecycle does), never decodes an
// object or imports a compression library, and never sees plaintext or keys.
// Handlers never buffer a whole body: request bodies are read as streams
// with a per-read idle deadline and explicit size limits, because fiber's
// BodyLimit and ReadTimeout do not apply sensibly to streamed bodies.
package gateway
