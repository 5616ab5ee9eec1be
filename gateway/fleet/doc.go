// Package fleet keeps what the health of every cluster is judged from:
// a summary of each cluster's archived WAL (timelines, segment runs, last
// push), kept current on every push so that the fleet's status costs no
// catalog scan, and each cluster's backups and drills per catalog
// generation. It evaluates them with gateway/health into the rows of
// `walgate status`, the dashboard, /metrics and wal-verify, for the
// running gateway or, offline, from a catalog read directly.
//
// It also judges the fleet's gateways from their heartbeat rows
// (gateways.go).
//
// It only reads the catalog and never writes it; it never touches a store
// and never speaks HTTP.
package fleet
