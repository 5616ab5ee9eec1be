package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

var lifecycleHelp = cli.Help{
	Usage: `walgate lifecycle plan  [--cluster NAME] [--json] (--config FILE | --data DIR)
       walgate lifecycle apply --confirm [--cluster NAME] [--json] (--config FILE | --data DIR)`,
	Text: `Tiering and retention, as each cluster group's lifecycle: policy in the
gateway config says. 'plan' changes nothing: it prints, per cluster, the
backups retention keeps (and why), the backups and WAL files it would
delete, the objects it would move to colder storage classes, and the
monthly storage cost now and after (from lifecycle.prices). 'apply
--confirm' carries the plan out: deletes backups (sentinel first, on every
backend), then WAL, then changes classes, and updates the catalog; every
deletion is logged by the gateway.

Guard rails: nothing is deleted for a cluster while copies of it are still
to be replicated, while a backend does not hold a backup the catalog says
it holds, or when it has no full backup; the newest full backup is never
deleted, and nothing the point-in-time-recovery window needs moves to a
class that must be rehydrated before a read unless the policy allows it.

Where the policies come from, said in the output's first line:
  --config FILE  FILE's policies and backends, the gateway's catalog opened
                 directly (read-only for plan). A running gateway holds its
                 catalog: stop it, or drop --config to ask the gateway.
  --data DIR     the running gateway on DIR (its admin socket), with the
                 configuration it runs with; when none runs, the embedded
                 defaults.`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "done (or planned)"},
		{Code: 1, Meaning: "failure: some actions failed, or some clusters could not be planned (the output says which)"},
		exitUsage,
		{Code: 3, Meaning: "applied, but the guard rails kept deletions back for some clusters (the output says why)"}},
}

func runLifecycle(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subVerb(args, []string{"plan", "apply"}, lifecycleHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate lifecycle " + sub)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (policies, backends, data directory)")
	cluster := fs.String("cluster", "", "plan only this cluster")
	asJSON := fs.Bool("json", false, "print the plan (and what was done) as JSON")
	confirm := fs.Bool("confirm", false, "apply: really move and delete (without it, apply refuses)")
	pos, err := parseArgs(fs, lifecycleHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("unexpected argument %q", pos[0])
	}
	if sub == "apply" && !*confirm {
		return usageErr("apply deletes and moves objects: add --confirm (run 'walgate lifecycle plan' first to see what it does)")
	}
	if sub == "plan" && *confirm {
		return usageErr("--confirm goes with apply; plan never changes anything")
	}
	dir, err := dataDir(*data, *configPath)
	if err != nil {
		return err
	}
	opts := apply.Options{Cluster: *cluster, Apply: sub == "apply"}
	var res apply.Result
	var runErr error
	var source string
	// --config FILE means FILE's policies, never the running gateway's.
	a, dialErr := admin.Dial(dir)
	if *configPath == "" && dialErr == nil {
		source = "the running gateway's configuration (admin socket " + admin.SocketPath(dir) + ")"
		res, runErr = a.Lifecycle(opts)
		if runErr != nil && res.Time.IsZero() {
			return runErr
		}
	} else {
		cfg := config.Config{Data: dir}
		source = "the embedded defaults (no gateway runs on " + dir + "; catalog opened directly)"
		if *configPath != "" {
			if cfg, err = loadConfig(*configPath); err != nil {
				return err
			}
			cfg.Data = dir
			source = *configPath + " (offline: its policies and backends; catalog " + config.CatalogPath(dir) + " opened directly"
			if sub == "plan" {
				source += ", read-only"
			}
			source += ")"
			if dialErr == nil {
				return fmt.Errorf("a gateway runs on %s and holds its catalog, so %s cannot be planned offline: stop the gateway, or drop --config to ask the gateway (which uses its own configuration)", dir, *configPath)
			}
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if opts.Apply {
			log = slog.New(slog.NewTextHandler(stderr, nil)) // every deletion
		}
		res, runErr = lifecycleOffline(context.Background(), cfg, opts, log)
		if opts.Apply {
			target := opts.Cluster
			if target == "" {
				target = "all clusters"
			}
			auditLocal(dir, *configPath, "lifecycle.apply", target, runErr, stderr)
		}
		if runErr != nil && res.Time.IsZero() {
			return runErr
		}
	}
	if *asJSON {
		fmt.Fprintf(stderr, "lifecycle %s from %s\n", sub, source)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Policies from %s.\n", source)
		printLifecycle(stdout, res)
	}
	switch {
	case runErr != nil:
		return runErr
	case res.Done.Failures > 0:
		return fmt.Errorf("%d actions failed (the first: %s); the next run retries them", res.Done.Failures, res.Done.Errors[0])
	case opts.Apply && len(res.Plan.Refusals) > 0:
		return &exitError{code: 3, err: errors.New("the guard rails kept deletions back for " + refusedClusters(res) + " (see above)")}
	}
	return nil
}

// lifecycleOffline runs the lifecycle without a gateway: it opens the
// catalog and the stores (the planner confirms sentinels on them) and
// nothing else; no replication, no schedule, no recovery of interrupted
// writes. A plan changes nothing.
func lifecycleOffline(ctx context.Context, cfg config.Config, opts apply.Options, log *slog.Logger) (apply.Result, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return apply.Result{}, &exitError{code: 2, err: err}
	}
	path := config.CatalogPath(cfg.Data)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// Nothing archived yet: an empty plan, and no catalog made for it.
		if opts.Cluster != "" {
			return apply.Result{}, fmt.Errorf("cluster %s: %w", opts.Cluster, index.ErrNotFound)
		}
		return apply.Result{Time: time.Now().UTC(), Applied: opts.Apply}, nil
	}
	open := index.Open
	if !opts.Apply {
		open = index.OpenReadOnly // a plan changes nothing, the catalog file included
	}
	cat, err := open(path, 2*time.Second)
	if err != nil {
		return apply.Result{}, err
	}
	defer cat.Close()
	st, err := stores.Open(ctx, cfg, cat, stores.Options{Log: log})
	if err != nil {
		return apply.Result{}, err
	}
	defer st.Close()
	backends, err := st.LifecycleBackends()
	if err != nil {
		return apply.Result{}, err
	}
	ex := apply.New(apply.Config{Catalog: cat, Stores: st, Backends: backends, Prices: cfg.Lifecycle.Prices,
		SegmentSize: cat.SegmentSize, Log: log})
	return ex.Run(ctx, opts, time.Now())
}

func refusedClusters(res apply.Result) string {
	var names []string
	for _, r := range res.Plan.Refusals {
		names = append(names, r.Cluster)
	}
	return strings.Join(names, ", ")
}

// gib formats bytes for the tables.
func gib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printLifecycle(w io.Writer, res apply.Result) {
	if res.Applied {
		fmt.Fprintf(w, "Lifecycle run at %s: applied.\n\n", res.Time.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "Lifecycle plan at %s (dry run: nothing changed; 'walgate lifecycle apply --confirm' carries it out).\n\n", res.Time.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tBACKUPS KEPT\tBACKUPS DELETED\tWAL DELETED\tMOVES\tCOST/MONTH NOW\tAFTER\tNOTE")
	for _, c := range res.Plan.Clusters {
		note := ""
		switch {
		case c.Error != "":
			note = "no plan: " + c.Error
		case c.Refused:
			note = "deletions refused (below)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d (%s)\t%d\t%.2f\t%.2f\t%s\n", c.Name, len(c.Retained), len(c.DeletedBackups),
			c.WALDeleted, gib(c.WALDeletedBytes), c.Moves, c.Before.Monthly, c.After.Monthly, note)
	}
	tw.Flush()
	if len(res.Steps) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tCLUSTER\tBACKEND\tCLASS\tOBJECTS\tCOUNT\tREASON")
		for _, s := range res.Steps {
			class := ""
			if s.Kind == lifecycle.SetClass {
				from := s.From
				if from == "" {
					from = "(default)"
				}
				class = from + " -> " + s.To
			}
			objects := s.First
			if s.Last != s.First {
				objects += " .. " + s.Last
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Kind, s.Cluster, s.Backend, class, objects, s.Count, s.Reason)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(w, "\nNothing to move or delete.")
	}
	var notes []string
	for _, c := range res.Plan.Clusters {
		for _, r := range c.Retained {
			notes = append(notes, fmt.Sprintf("  %s kept %s: %s", c.Name, r.Name, strings.Join(r.Reasons, "; ")))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nBackups kept:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
	for _, c := range res.Plan.Clusters {
		if len(c.DeletedBackups) == 0 {
			continue
		}
		what := "Backups deleted"
		switch {
		case c.Refused:
			what = "Backups that would be deleted (refused)"
		case !res.Applied:
			what = "Backups to delete"
		}
		fmt.Fprintf(w, "\n%s for %s: %s\n", what, c.Name, strings.Join(c.DeletedBackups, ", "))
	}
	for _, r := range res.Plan.Refusals {
		fmt.Fprintf(w, "\nRefused for %s: %s\n", r.Cluster, r.Reason)
	}
	for _, c := range res.Plan.Clusters {
		for _, warn := range c.Warnings {
			fmt.Fprintf(w, "\nWarning for %s: %s\n", c.Name, warn)
		}
	}
	fmt.Fprintf(w, "\nStorage per class, now -> after: %s; monthly cost %.2f -> %.2f", classBytes(res.Plan.Before, res.Plan.After), res.Plan.Before.Monthly, res.Plan.After.Monthly)
	if res.Plan.Before.Monthly == 0 && res.Plan.After.Monthly == 0 {
		fmt.Fprint(w, " (set lifecycle.prices in the config for estimates)")
	}
	fmt.Fprintln(w)
	if res.Applied {
		d := res.Done
		fmt.Fprintf(w, "\nDone: %d copies moved, %d objects deleted, %d backups deleted, %d failures.\n", d.Moved, d.Deleted, len(d.BackupsDeleted), d.Failures)
		for _, e := range d.Errors {
			fmt.Fprintln(w, "  failed:", e)
		}
	}
}

func classBytes(before, after lifecycle.Cost) string {
	var parts []string
	for _, c := range lifecycle.Classes {
		if before.Bytes[c] == 0 && after.Bytes[c] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s -> %s", c, gib(before.Bytes[c]), gib(after.Bytes[c])))
	}
	if before.Unknown > 0 || after.Unknown > 0 {
		parts = append(parts, fmt.Sprintf("unknown classes %s -> %s", gib(before.Unknown), gib(after.Unknown)))
	}
	if len(parts) == 0 {
		return "nothing stored"
	}
	return strings.Join(parts, ", ")
}
