package main

import (
	"context"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"strings"

	"github.com/walgate/walgate/client"
)

// runCheck asks the gateway who we are: it proves URL, TLS and token work
// before PostgreSQL depends on them.
func runCheck(ctx context.Context, c *client.Client, args []string, stdout io.Writer) error {
	pos, err := cli.Parse(cli.NewFlags("walgate-client check"), checkHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("check takes no arguments")
	}
	w, err := c.WhoAmI(ctx)
	if err != nil {
		return err
	}
	cfg := c.Config()
	enc := "off"
	if cfg.Key != nil {
		enc = "libsodium"
	}
	fmt.Fprintf(stdout, "gateway %s (version %s): token %s for cluster %s, scopes %s; compression %s, encryption %s\n",
		cfg.URL, w.Gateway, w.TokenID, w.Cluster, strings.Join(w.Scopes, ","), cfg.Compression, enc)
	return nil
}
