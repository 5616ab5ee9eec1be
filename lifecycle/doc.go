// Package lifecycle will hold walgate's tiering and retention policy: a
// pure planner over the catalog (Plan(view, policy, now) []Action, each
// action with its reason) and a separate executor that is dry-run unless
// told otherwise.
//
// This version of walgate has no lifecycle engine: it never moves or
// deletes archived objects. The package exists so that the layering
// (lifecycle may import index and backends, nothing else) is fixed from the
// start.
package lifecycle
