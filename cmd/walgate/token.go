package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
)

var tokenHelp = cli.Help{
	Usage: "walgate token add|list|revoke|rotate [flags]",
	Text: `Manage the tokens database hosts and the storage team present.

  walgate token add --data DIR|--config FILE --cluster NAME --scope push,fetch [--expires 90d] [--comment TEXT]
      Prints a new token once; the gateway stores only its SHA-256. A token is
      bound to one cluster and acts on it only, whatever its scopes. Scopes:
      push (archive), fetch (restore), admin (delete, that cluster's
      dashboard page).
  walgate token add --data DIR|--config FILE --all-clusters --scope admin [--expires 90d]
      A fleet-wide admin token: every cluster's pages, the fleet page and
      the audit log. It cannot push or fetch.
  walgate token list --data DIR|--config FILE
      Every token with its expiry and, once rotated, its successor.
  walgate token revoke --data DIR|--config FILE ID
      The token stops working at once.
  walgate token rotate --data DIR|--config FILE ID [--grace 24h] [--expires 90d]
      Prints a successor (same cluster, scopes and comment) once; the old
      token keeps working for the grace period (default 24h), then expires.
      The successor lives as long as the old token did, unless --expires.

Durations: Go durations (36h, 90m) or whole days and weeks (30d, 12w).
An expired token is refused with 401 "token ID expired at TIME".
With a gateway running on DIR the verbs go through its admin socket
(DIR/admin.sock); otherwise they open the catalog directly. With a config
whose catalog is PostgreSQL (catalog: type: postgres) they always work on
that database, whether or not gateways run: every gateway sees the change
within seconds. Either way each act is appended to DIR/audit.log.`,
	Exits: commonExits,
}

// tokenSubHelp is the help of one token sub-verb.
func tokenSubHelp(sub string) cli.Help {
	h := cli.Help{Exits: commonExits}
	switch sub {
	case "add":
		h.Usage = "walgate token add (--data DIR | --config FILE) (--cluster NAME | --all-clusters) [--scope push,fetch] [--expires 90d] [--comment TEXT]"
		h.Text = `Print a new token, once: the gateway stores only its SHA-256. A token for a
database host is bound to one cluster (--cluster); scopes are push (archive),
fetch (restore) and admin (that cluster's dashboard page, deletion through
the gateway). Give it to the host as WALGATE_TOKEN (or a file named by
WALGATE_TOKEN_FILE). --all-clusters --scope admin makes a fleet-wide admin
token for the storage team: every cluster's pages, the fleet page and the
audit log; it cannot push or fetch. --expires 90d (or 12w, 36h) makes the
token stop working after that long.`
	case "list":
		h.Usage = "walgate token list (--data DIR | --config FILE)"
		h.Text = "List the tokens: ID, cluster, scopes, creation, expiry, successor and comment (never the secret)."
	case "revoke":
		h.Usage = "walgate token revoke (--data DIR | --config FILE) ID"
		h.Text = "Revoke the token ID (see 'walgate token list'): the gateway refuses it from now on."
	case "rotate":
		h.Usage = "walgate token rotate (--data DIR | --config FILE) ID [--grace 24h] [--expires 90d]"
		h.Text = `Print a successor of the token ID (same cluster, scopes and comment), once.
The old token keeps working for the grace period (default 24h), then
expires; the successor lives as long as the old token did, unless --expires.`
	}
	return h
}

func runToken(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subVerb(args, []string{"add", "list", "revoke", "rotate"}, tokenHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate token " + sub)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory)")
	cluster := fs.String("cluster", "", "cluster the token is bound to (add)")
	allClusters := fs.Bool("all-clusters", false, "a fleet-wide admin token instead of one bound to a cluster (add; needs --scope admin)")
	scope := fs.String("scope", "push,fetch", "comma-separated scopes: push, fetch, admin (add)")
	comment := fs.String("comment", "", "free text kept with the token, e.g. the host name (add)")
	expires := fs.String("expires", "", "the token stops working after this long: 30d, 12w, 36h (add, rotate; default: never, or on rotate the old token's lifetime)")
	grace := fs.String("grace", "", "how long the rotated token keeps working (rotate; default 24h)")
	pos, err := parseArgs(fs, tokenSubHelp(sub), args, stdout)
	if err != nil {
		return err
	}
	var id string
	if sub == "revoke" || sub == "rotate" {
		if len(pos) != 1 {
			return usageErr("token %s needs exactly one token ID (see 'walgate token list')", sub)
		}
		id = pos[0]
		if strings.TrimSpace(id) == "" {
			return usageErr("token %s needs a token ID, not an empty string (see 'walgate token list')", sub)
		}
	} else if len(pos) > 0 {
		return usageErr("token %s takes no arguments, got %q", sub, pos)
	}
	lifetime, err := parseLifetime("--expires", *expires)
	if err != nil {
		return err
	}
	dir := catalogSource{data: *data, config: *configPath}
	switch sub {
	case "add":
		if *cluster == "" && !*allClusters {
			return usageErr("token add needs --cluster NAME (or --all-clusters for a fleet-wide admin token)")
		}
		if *cluster != "" && *allClusters {
			return usageErr("token add takes --cluster NAME or --all-clusters, not both")
		}
		scopes, err := index.ParseScopes(*scope)
		if err != nil {
			return usageErr("%v", err)
		}
		if *allClusters && (len(scopes) != 1 || scopes[0] != index.ScopeAdmin) {
			return usageErr("--all-clusters makes a fleet-wide admin token: pass --scope admin (database hosts get tokens bound to their cluster)")
		}
		spec := admin.TokenSpec{Cluster: *cluster, AllClusters: *allClusters, Scopes: scopes, Comment: *comment, Lifetime: lifetime}
		var secret string
		var rec index.Token
		err = withCatalog(dir, func(a *admin.Client) error {
			secret, rec, err = a.IssueToken(spec)
			return err
		}, func(cat index.Interface) error {
			secret, rec, err = admin.IssueToken(cat, spec, time.Now())
			target := spec.Cluster
			if err == nil {
				target = rec.ID + " " + rec.Target()
			}
			return auditSource(dir, "token.add", target, err, stderr)
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %s for %s, scopes %s, %s: shown once, store it now (WALGATE_TOKEN on the host)\n",
			rec.ID, describeTarget(rec), joinScopes(rec.Scopes), describeExpiry(rec))
		return nil
	case "list":
		var list []index.Token
		err := withCatalog(dir, func(a *admin.Client) error {
			list, err = a.ListTokens()
			return err
		}, func(cat index.Interface) error {
			list, err = cat.ListTokens()
			return err
		})
		if err != nil {
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLUSTER\tSCOPES\tCREATED\tEXPIRES\tSUCCESSOR\tCOMMENT")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, listCluster(t), joinScopes(t.Scopes), t.Created.Format(time.RFC3339),
				listExpiry(t, now), dash(t.Successor), t.Comment)
		}
		return tw.Flush()
	case "revoke":
		err := withCatalog(dir, func(a *admin.Client) error {
			return a.RevokeToken(id)
		}, func(cat index.Interface) error {
			return auditSource(dir, "token.revoke", id, cat.RevokeToken(id), stderr)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token %s revoked\n", id)
		return nil
	case "rotate":
		g, err := parseLifetime("--grace", *grace)
		if err != nil {
			return err
		}
		req := admin.RotateRequest{Lifetime: lifetime, Grace: g}
		var secret string
		var old, next index.Token
		err = withCatalog(dir, func(a *admin.Client) error {
			secret, old, next, err = a.RotateToken(id, req)
			return err
		}, func(cat index.Interface) error {
			secret, old, next, err = admin.RotateToken(cat, id, req, time.Now())
			target := id
			if err == nil {
				target = id + " -> " + next.ID
			}
			return auditSource(dir, "token.rotate", target, err, stderr)
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %s replaces %s for %s, scopes %s, %s: shown once, store it now; %s keeps working until %s\n",
			next.ID, old.ID, describeTarget(next), joinScopes(next.Scopes), describeExpiry(next), old.ID, old.Expires.UTC().Format(time.RFC3339))
		return nil
	}
	return usageErr("unknown token sub-verb %q: use add, list, revoke or rotate", sub)
}

// parseLifetime reads a duration flag: a Go duration (36h, 90m) or whole
// days or weeks (30d, 12w). Empty is zero.
func parseLifetime(flagName, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if n, unit := v[:len(v)-1], v[len(v)-1]; unit == 'd' || unit == 'w' {
		days, perr := strconv.ParseUint(n, 10, 32)
		if perr != nil || days > 100*366 {
			err = fmt.Errorf("not a whole number of days or weeks")
		}
		d = time.Duration(days) * 24 * time.Hour
		if unit == 'w' {
			d *= 7
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be more than zero")
	}
	if err != nil {
		return 0, usageErr("%s %q: %v; give a duration such as 30d, 12w or 36h", flagName, v, err)
	}
	return d, nil
}

// auditLocal appends an act done offline (no gateway running) to the
// data directory's audit log and returns the act's own error. A failure
// to record is reported on stderr; the act stands.
func auditLocal(dir, configPath, action, target string, actErr error, stderr io.Writer) error {
	opts := audit.Options{}
	if configPath != "" {
		if cfg, err := loadConfig(configPath); err == nil {
			opts = audit.Options{MaxBytes: cfg.Audit.MaxBytes, Keep: cfg.Audit.Keep}
		}
	}
	l, err := audit.Open(dir, opts)
	if err == nil {
		err = l.Record(audit.Entry{Client: "local", Action: action, Target: target, Result: audit.Result(actErr)})
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: %s was not written to the audit log: %v\n", action, err)
	}
	return actErr
}

// auditSource is auditLocal for a verb that found its catalog through
// src: the act goes to the audit log of src's data directory, made if
// missing (with a PostgreSQL catalog the verb may run on a host where no
// gateway ever ran).
func auditSource(src catalogSource, action, target string, actErr error, stderr io.Writer) error {
	dir, err := dataDir(src.data, src.config)
	if err == nil {
		err = os.MkdirAll(dir, 0o750)
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: %s was not written to the audit log: %v\n", action, err)
		return actErr
	}
	return auditLocal(dir, src.config, action, target, actErr, stderr)
}

func describeTarget(t index.Token) string {
	if t.AllClusters {
		return "all clusters"
	}
	return "cluster " + t.Cluster
}

func describeExpiry(t index.Token) string {
	if t.Expires.IsZero() {
		return "no expiry"
	}
	return "expires " + t.Expires.UTC().Format(time.RFC3339)
}

func listCluster(t index.Token) string {
	if t.AllClusters {
		return "(all)"
	}
	return t.Cluster
}

func listExpiry(t index.Token, now time.Time) string {
	switch {
	case t.Expires.IsZero():
		return "never"
	case t.Valid(now) != nil:
		return t.Expires.UTC().Format(time.RFC3339) + " (expired)"
	}
	return t.Expires.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dataDir finds the data directory from --data or the config's data key.
func dataDir(data, configPath string) (string, error) {
	if data != "" {
		return data, nil
	}
	if configPath != "" {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return "", err
		}
		if cfg.Data != "" {
			return cfg.Data, nil
		}
	}
	return "", usageErr("say where the gateway keeps its data: --data DIR or --config FILE")
}

// catalogSource is where an admin verb finds the catalog: --data, or the
// --config that names the data directory or a PostgreSQL catalog.
type catalogSource struct{ data, config string }

// withCatalog runs direct on the PostgreSQL catalog the config names
// (gateways or not: it serves any number of processes); for a bbolt
// catalog it runs viaGateway when a gateway serves the data directory,
// else direct on the catalog file.
func withCatalog(src catalogSource, viaGateway func(*admin.Client) error, direct func(index.Interface) error) error {
	if src.config != "" {
		cfg, err := config.Load(src.config)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if cfg.Catalog.IsPostgres() {
			if err := cfg.Catalog.Validate(); err != nil {
				return &exitError{code: 2, err: err}
			}
			cat, err := gateway.OpenCatalog(context.Background(), cfg, 0)
			if err != nil {
				return err
			}
			defer cat.Close()
			return direct(cat)
		}
	}
	dir, err := dataDir(src.data, src.config)
	if err != nil {
		return err
	}
	if a, err := admin.Dial(dir); err == nil {
		return viaGateway(a)
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
		} else {
			return err
		}
	}
	cat, err := index.Open(config.CatalogPath(dir), 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w; if a gateway runs on this directory, its admin socket %s did not answer", err, admin.SocketPath(dir))
	}
	defer cat.Close()
	return direct(cat)
}

func joinScopes(s []index.Scope) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, ",")
}
