package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
)

const tokenHelp = `walgate token add|list|revoke: manage the tokens database hosts present.

  walgate token add --data DIR|--config FILE --cluster NAME --scope push,fetch [--comment TEXT]
      Prints a new token once; the gateway stores only its SHA-256. A token is
      bound to one cluster. Scopes: push (archive), fetch (restore), admin.
  walgate token list --data DIR|--config FILE
  walgate token revoke --data DIR|--config FILE ID

With a gateway running on DIR the verbs go through its admin socket
(DIR/admin.sock); otherwise they open the catalog directly. With a config
whose catalog is PostgreSQL (catalog: type: postgres) they always work on
that database, whether or not gateways run: every gateway sees the change
within seconds.`

func runToken(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokenHelp)
		return usageErr("token needs a sub-verb: add, list or revoke")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("walgate token "+sub, tokenHelp, stderr)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory)")
	cluster := fs.String("cluster", "", "cluster the token is bound to (add)")
	scope := fs.String("scope", "push,fetch", "comma-separated scopes: push, fetch, admin (add)")
	comment := fs.String("comment", "", "free text kept with the token, e.g. the host name (add)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	dir := catalogSource{data: *data, config: *configPath}
	switch sub {
	case "add":
		if *cluster == "" {
			return usageErr("token add needs --cluster NAME")
		}
		scopes, err := index.ParseScopes(*scope)
		if err != nil {
			return usageErr("%v", err)
		}
		var secret string
		var rec index.Token
		err = withCatalog(dir, func(a *admin.Client) error {
			secret, rec, err = a.AddToken(*cluster, scopes, *comment)
			return err
		}, func(cat index.Interface) error {
			secret, rec, err = admin.CreateToken(cat, *cluster, scopes, *comment)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %s for cluster %s, scopes %s: shown once, store it now (WALGATE_TOKEN on the host)\n",
			rec.ID, rec.Cluster, joinScopes(rec.Scopes))
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
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLUSTER\tSCOPES\tCREATED\tCOMMENT")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Cluster, joinScopes(t.Scopes), t.Created.Format(time.RFC3339), t.Comment)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageErr("token revoke needs exactly one token ID (see 'walgate token list')")
		}
		id := fs.Arg(0)
		err := withCatalog(dir, func(a *admin.Client) error {
			return a.RevokeToken(id)
		}, func(cat index.Interface) error {
			return cat.RevokeToken(id)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token %s revoked\n", id)
		return nil
	}
	return usageErr("unknown token sub-verb %q: use add, list or revoke", sub)
}

// dataDir finds the data directory from --data or the config's data key.
func dataDir(data, configPath string) (string, error) {
	if data != "" {
		return data, nil
	}
	if configPath != "" {
		cfg, err := config.Load(configPath)
		if err != nil {
			return "", &exitError{code: 2, err: err}
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
