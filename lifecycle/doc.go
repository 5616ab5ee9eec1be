// Package lifecycle is walgate's tiering and retention planner: a pure
// function of a catalog snapshot, a Policy and the time that says which
// objects move to which storage class and which are deleted, each action
// with its reason, and which deletions its guard rails refused.
//
// It owns the rules: which backups retention keeps (the newest N full
// backups with their deltas, the PITR window, permanent backups, never
// fewer than one full), which WAL they need (per timeline, following
// timeline history), which abstract class (hot, warm, cold, archive) an
// object of a kind and age belongs in, and what that class is called on
// each backend.
//
// It must never do I/O: it reads no catalog and touches no backend. The
// caller builds the snapshot (Cluster, streaming its WAL) and a separate
// executor, dry-run unless told otherwise, applies a plan and logs every
// deletion. A planner that cannot tell whether something is needed keeps
// it.
package lifecycle
