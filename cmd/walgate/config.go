package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
)

var configHelp = cli.Help{
	Usage: "walgate config check --config FILE [--connect] [--timeout D]",
	Text: `Check a gateway configuration before a start or restart, exactly as
'walgate serve' will read it: every key must be known (a misspelt key is
named with the key it likely meant), every value of the right kind, and the
whole must make sense (backends, groups, listeners, lifecycle policies).
Each problem is printed with its line and key path, all of them at once.

Durations take Go's units and days and weeks: 90s, 15m, 36h, 14d, 2w, 1d12h.

--connect also reaches every backend (a real list and a lookup of a key
that does not exist; nothing is written) and, when the config names a data
directory, opens its catalog read-only (or sees that a running gateway holds
it).`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "the config is valid (and, with --connect, every backend answered)"},
		{Code: 2, Meaning: "the config is not valid, or a backend or the catalog could not be reached: the output says what"}},
}

// loadConfig reads a gateway config strictly; its problems come back as a
// usage error (exit 2) that names, for a misspelt key, the one it likely
// meant. serve, config check and every verb with --config read through it.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		var pe *config.ParseError
		if errors.As(err, &pe) {
			pe.Suggest = cli.Closest
		}
		return config.Config{}, &exitError{code: 2, err: err}
	}
	return cfg, nil
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	_, args, err := subVerb(args, []string{"check"}, configHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate config check")
	configPath := fs.String("config", "", "the YAML config `FILE` to check")
	fs.StringVar(configPath, "c", "", "short for --config")
	connect := fs.Bool("connect", false, "also reach every backend and the catalog")
	timeout := fs.Duration("timeout", 30*time.Second, "with --connect: give each backend this long")
	pos, err := parseArgs(fs, configHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) == 1 && *configPath == "" {
		*configPath = pos[0]
	} else if len(pos) > 0 {
		return usageErr("config check takes no arguments besides --config FILE, got %q", pos)
	}
	if *configPath == "" {
		return usageErr("say which file: walgate config check --config FILE")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("%s: %w", *configPath, err)}
	}
	fmt.Fprintf(stdout, "%s: valid (%d backends, %d groups, data %s)\n", *configPath, len(cfg.Backends), len(cfg.Groups), cfg.Data)
	if !*connect {
		return nil
	}
	failed := 0
	for _, bc := range cfg.Backends {
		if err := reachBackend(bc, *timeout); err != nil {
			fmt.Fprintf(stdout, "backend %s (%s): FAILED: %v\n", bc.Name, bc.Type, err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "backend %s (%s): reachable (list and lookup answered)\n", bc.Name, bc.Type)
	}
	if msg, err := reachCatalog(cfg.Data); err != nil {
		fmt.Fprintf(stdout, "catalog: FAILED: %v\n", err)
		failed++
	} else {
		fmt.Fprintf(stdout, "catalog: %s\n", msg)
	}
	if failed > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%s: %d of %d checks failed (see above)", *configPath, failed, len(cfg.Backends)+1)}
	}
	return nil
}

// errEnough stops a listing after its first object.
var errEnough = errors.New("enough")

// reachBackend opens a backend and makes two real requests that change
// nothing: a listing (stopped after one object) and a lookup of a key
// that does not exist.
func reachBackend(bc config.BackendConfig, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := all.Open(ctx, bc)
	if err != nil {
		return err
	}
	defer b.Close()
	err = b.List(ctx, "", func(backends.ObjectInfo) error { return errEnough })
	if err != nil && !errors.Is(err, errEnough) {
		return fmt.Errorf("list: %w", err)
	}
	if _, err := b.Stat(ctx, "walgate-config-check/absent"); err != nil && !errors.Is(err, backends.ErrNotFound) {
		return fmt.Errorf("lookup: %w", err)
	}
	return nil
}

// reachCatalog says whether the catalog under data can be opened.
func reachCatalog(data string) (string, error) {
	if _, err := admin.Dial(data); err == nil {
		return "held by the gateway running on " + data + " (its admin socket answers)", nil
	}
	path := config.CatalogPath(data)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if st, err := os.Stat(data); err == nil && !st.IsDir() {
			return "", fmt.Errorf("data %s is not a directory", data)
		}
		return "none yet at " + path + ": the first start creates it", nil
	}
	cat, err := index.OpenReadOnly(path, 2*time.Second)
	if err != nil {
		return "", err
	}
	cat.Close()
	return "opened " + path + " read-only", nil
}
