package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/cmd/internal/cli"
)

// runCheck asks every gateway of WALGATE_URL who we are: it proves URL,
// TLS and token work before PostgreSQL depends on them. One line per
// gateway; it fails only when no gateway works (with the first failure's
// kind, for the exit code). When some work and others do not, it succeeds,
// since archiving fails over to those that work, and prints a warning that
// names how many do not.
func runCheck(ctx context.Context, c *client.Client, args []string, stdout io.Writer) error {
	pos, err := cli.Parse(cli.NewFlags("walgate-client check"), checkHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("check takes no arguments")
	}
	cfg := c.Config()
	enc := "off"
	if cfg.Key != nil {
		enc = "libsodium"
	}
	checks := c.CheckGateways(ctx)
	var failed []error
	for _, gc := range checks {
		if gc.Err != nil {
			failed = append(failed, gc.Err)
			fmt.Fprintf(stdout, "gateway %s: FAILED (reachable %s, TLS %s, token %s): %v\n",
				gc.URL, yesNo(gc.Reachable), tlsState(gc), tokenState(gc), gc.Err)
			continue
		}
		fmt.Fprintf(stdout, "gateway %s (version %s): OK, TLS %s; token %s for cluster %s, scopes %s; compression %s, encryption %s\n",
			gc.URL, gc.WhoAmI.Gateway, tlsState(gc), gc.WhoAmI.TokenID, gc.WhoAmI.Cluster, strings.Join(gc.WhoAmI.Scopes, ","), cfg.Compression, enc)
	}
	switch {
	case len(failed) == len(checks):
		if len(checks) == 1 {
			return failed[0]
		}
		return fmt.Errorf("none of the %d gateways of WALGATE_URL works: %w", len(checks), failed[0])
	case len(failed) > 0:
		fmt.Fprintf(stdout, "WARNING: %d of %d gateways of WALGATE_URL do not work; the client fails over to the others\n", len(failed), len(checks))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func tlsState(gc client.GatewayCheck) string {
	switch {
	case gc.URL.Scheme != "https":
		return "off (http)"
	case gc.TLS:
		return "verified"
	case errors.Is(gc.Err, client.ErrAuth) && !gc.Reachable:
		return "FAILED"
	}
	return "unknown"
}

func tokenState(gc client.GatewayCheck) string {
	switch {
	case gc.Err == nil:
		return "accepted"
	case gc.Reachable && errors.Is(gc.Err, client.ErrAuth):
		return "REFUSED"
	}
	return "not checked"
}
