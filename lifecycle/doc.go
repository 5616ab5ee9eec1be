// Package lifecycle is walgate's tiering and retention planner: a pure
// function of a catalog snapshot, a Policy and the time that says which
// objects move to which storage class and which are deleted, each action
// with its reason, which deletions its guard rails refused, which backups
// it keeps and why, and the monthly storage cost before and after.
//
// The rules, per cluster:
//
//   - Retention keeps the newest RetainFull full backups with the deltas
//     built on them; for a PITRWindow, the newest backup with a complete
//     chain that finished before the window starts and lies on the newest
//     timeline's history (the anchor), and every backup that finished
//     inside the window; permanent backups; always the newest full backup.
//     A kept delta keeps its chain. With neither rule set nothing is
//     deleted.
//   - WAL: a kept backup (other than one kept only as a chain link or as
//     permanent) keeps its timeline's WAL from its start on, and all WAL
//     of every descendant timeline; chain links and permanent backups keep
//     their own start..finish. Everything older on a timeline is deleted;
//     a timeline no kept backup restores through is deleted whole, except
//     the newest. Timeline history files are always kept. Where a history
//     is unknown, every lower timeline counts as a possible ancestor.
//   - Tiering: each object of a kind (WAL, backup data, metadata) moves to
//     the class of the oldest tier rule its age has passed, only ever
//     colder. What the PITR window needs (the anchor's chain and later
//     backups, the WAL from the anchor's start on) stops at the coldest
//     class that reads without rehydration unless the policy allows more.
//   - Guard rails: no deletion while replication is pending for the
//     cluster, while the catalog and a backend disagree, or when the
//     cluster has no full backup; a Refusal says what would have gone.
//
// It must never do I/O: it reads no catalog and touches no backend. The
// caller builds the snapshot (Cluster, streaming its WAL; PlanStream keeps
// memory flat over millions of segments) and a separate executor, dry-run
// unless told otherwise, applies a plan and logs every deletion. Where the
// planner cannot tell whether something is needed, it keeps it.
package lifecycle
