// Package stores is the gateway's layer over its object stores: each
// configured backend with its health and write slots, the cluster groups
// and their ack policies, the tee of one write into a group's ack set,
// reads that fail over between copies and verify what they hand on, the
// memory of damaged copies and their repair, and the replicator that
// works each backend's queue (kept in the catalog) until every backend of
// a group holds every object.
//
// It owns where bytes go and where they are read from. It must never speak
// HTTP or know a request (the root gateway does), never decide what to
// keep or delete (lifecycle does), never hold an object in memory (writes
// stream; a tee holds one chunk), and never acknowledge a write below the
// group's ack policy.
package stores
