package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
)

var tokenHelp = cli.Help{
	Usage: "walgate token add|list|revoke [flags]",
	Text: `Manage the tokens database hosts present.

  walgate token add --data DIR --cluster NAME --scope push,fetch [--comment TEXT]
      Prints a new token once; the gateway stores only its SHA-256. A token is
      bound to one cluster. Scopes: push (archive), fetch (restore), admin.
  walgate token list --data DIR
  walgate token revoke --data DIR ID

With a gateway running on DIR the verbs go through its admin socket
(DIR/admin.sock); otherwise they open the catalog directly.`,
	Exits: commonExits,
}

// tokenSubHelp is the help of one token sub-verb.
func tokenSubHelp(sub string) cli.Help {
	h := cli.Help{Exits: commonExits}
	switch sub {
	case "add":
		h.Usage = "walgate token add (--data DIR | --config FILE) --cluster NAME [--scope push,fetch] [--comment TEXT]"
		h.Text = `Print a new token for a database host, once: the gateway stores only its
SHA-256. The token is bound to one cluster; scopes are push (archive), fetch
(restore) and admin (storage teams: status, deletion through the gateway).
Give it to the host as WALGATE_TOKEN (or a file named by WALGATE_TOKEN_FILE).`
	case "list":
		h.Usage = "walgate token list (--data DIR | --config FILE)"
		h.Text = "List the tokens: ID, cluster, scopes, creation time and comment (never the secret)."
	case "revoke":
		h.Usage = "walgate token revoke (--data DIR | --config FILE) ID"
		h.Text = "Revoke the token ID (see 'walgate token list'): the gateway refuses it from now on."
	}
	return h
}

func runToken(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subVerb(args, []string{"add", "list", "revoke"}, tokenHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate token " + sub)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory)")
	cluster := fs.String("cluster", "", "cluster the token is bound to (add)")
	scope := fs.String("scope", "push,fetch", "comma-separated scopes: push, fetch, admin (add)")
	comment := fs.String("comment", "", "free text kept with the token, e.g. the host name (add)")
	pos, err := parseArgs(fs, tokenSubHelp(sub), args, stdout)
	if err != nil {
		return err
	}
	if sub != "revoke" && len(pos) > 0 {
		return usageErr("token %s takes no arguments, got %q", sub, pos)
	}
	dir, err := dataDir(*data, *configPath)
	if err != nil {
		return err
	}
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
		}, func(cat *index.Catalog) error {
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
		}, func(cat *index.Catalog) error {
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
		if len(pos) != 1 {
			return usageErr("token revoke needs exactly one token ID (see 'walgate token list')")
		}
		id := pos[0]
		err := withCatalog(dir, func(a *admin.Client) error {
			return a.RevokeToken(id)
		}, func(cat *index.Catalog) error {
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

// withCatalog runs viaGateway when a gateway serves dir, else direct on
// the catalog file.
func withCatalog(dir string, viaGateway func(*admin.Client) error, direct func(*index.Catalog) error) error {
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
