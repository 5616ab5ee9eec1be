// Package apply is the lifecycle executor: it builds each cluster's
// snapshot from the catalog (confirming on the stores that every backup's
// sentinel is where the catalog says), runs the pure planner of package
// lifecycle over it, and, when told to apply, carries the plan out: backups
// deleted sentinel first on every backend, then WAL deletions and class
// changes, with the catalog updated after each.
//
// It owns the order and bookkeeping of a run, nothing else. It must never
// decide what to keep or move (the planner does, with its reasons and
// guard rails), never act without Options.Apply, never run two runs at
// once, and never start background work: the daemon's schedule calls Run.
package apply
