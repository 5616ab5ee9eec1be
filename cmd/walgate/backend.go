package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway/config"
)

var backendHelp = cli.Help{
	Usage: "walgate backend check NAME --config FILE [--class CLASS]... [--timeout D]",
	Text: `Try a configured backend before the gateway uses it. Writes a few small test
objects under walgate-check/ (and one of 6 MiB), reads, ranges, lists,
creates conditionally, changes storage classes, deletes, removes what it
wrote, and prints a line per capability with what was seen or the store's
error (wrong credentials, missing permissions, an unknown bucket).

The classes tried are the backend's classes: mapping in the config (the
lifecycle's hot/warm/cold/archive), or those given with --class. Archive
classes that need rehydration (S3 GLACIER and DEEP_ARCHIVE, Azure Archive)
are tried only when named with --class: a test object there may carry a
minimum storage charge.`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "every required capability works"},
		{Code: 1, Meaning: "one does not: the gateway cannot use the backend as configured"}, exitUsage},
}

func runBackend(args []string, stdout, stderr io.Writer) (retErr error) {
	_, args, err := subVerb(args, []string{"check"}, backendHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate backend check")
	configPath := fs.String("config", "", "YAML config that defines the backend")
	fs.StringVar(configPath, "c", "", "short for --config")
	var classes stringList
	fs.Var(&classes, "class", "a storage class to try (repeatable); default: the backend's classes mapping")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	pos, err := parseArgs(fs, backendHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *configPath == "" {
		return usageErr("usage: %s", backendHelp.Usage)
	}
	name := pos[0]
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	cfg.Defaults()
	var bc *config.BackendConfig
	var names []string
	for i := range cfg.Backends {
		names = append(names, cfg.Backends[i].Name)
		if cfg.Backends[i].Name == name {
			bc = &cfg.Backends[i]
		}
	}
	if bc == nil {
		return usageErr("no backend %q in %s (backends: %s)", name, *configPath, strings.Join(names, ", "))
	}
	if len(classes) == 0 {
		std, err := bc.StorageClasses()
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		seen := map[string]bool{}
		for _, c := range bc.Classes {
			if !seen[c] && !std.NeedsRehydration(c) {
				seen[c] = true
				classes = append(classes, c)
			}
		}
		sort.Strings(classes)
	}
	if fi, err := os.Stat(cfg.Data); err == nil && fi.IsDir() {
		defer func() { auditLocal(cfg.Data, *configPath, "backend.check", name, retErr, stderr) }()
	}
	b, err := all.Open(context.Background(), *bc)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fmt.Fprintf(stdout, "checking backend %s (%s) ...\n\n", name, b.Name())
	results := backends.Check(ctx, b, classes)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAPABILITY\tRESULT\tDETAIL")
	failed := 0
	for _, r := range results {
		verdict := "ok"
		switch {
		case !r.OK && r.Required:
			verdict = "FAILED"
			failed++
		case !r.OK:
			verdict = "not available"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, verdict, r.Detail)
	}
	tw.Flush()
	if len(classes) == 0 {
		fmt.Fprintln(stdout, "\nno storage classes tried: map hot/warm/cold/archive under classes: in the config, or pass --class")
	}
	if failed > 0 {
		return fmt.Errorf("backend %s: %d required capabilities failed: the gateway cannot use it as configured", name, failed)
	}
	fmt.Fprintf(stdout, "\nbackend %s works for walgate\n", name)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
