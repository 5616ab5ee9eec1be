package main

import (
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"os"
	"strings"
	"time"

	"github.com/walgate/walgate/gateway/certs"
)

var certHelp = cli.Help{
	Usage: "walgate cert init DIR [--host NAME]... [--days N]",
	Text: `Make a private CA, a server
certificate and a client certificate under DIR, for trials and tests.

The server certificate names localhost, 127.0.0.1, ::1, this machine's host
name and every --host. Then:
  walgate serve --data D --tls-cert DIR/server.crt --tls-key DIR/server.key
  WALGATE_CA_FILE=DIR/ca.crt walgate-client ...
For mutual TLS add --tls-client-ca DIR/ca.crt to serve and give the client
WALGATE_CLIENT_CERT=DIR/client.crt WALGATE_CLIENT_KEY=DIR/client.key.`,
	Exits: commonExits,
}

type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }

func runCert(args []string, stdout, stderr io.Writer) error {
	_, args, err := subVerb(args, []string{"init"}, certHelp, stdout, stderr)
	if err != nil {
		return err
	}
	fs := cli.NewFlags("walgate cert init")
	var hosts hostList
	fs.Var(&hosts, "host", "extra DNS name or IP address for the server certificate (repeatable)")
	days := fs.Int("days", 365, "validity in days")
	pos, err := parseArgs(fs, certHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("cert init needs one directory, got %q", pos)
	}
	dir := pos[0]
	all := []string{"localhost", "127.0.0.1", "::1"}
	if hn, err := os.Hostname(); err == nil && hn != "" && hn != "localhost" {
		all = append(all, hn)
	}
	all = append(all, hosts...)
	p, err := certs.InitTrialPKI(dir, all, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA:     %s (trust it on hosts: WALGATE_CA_FILE)\nserver: %s, %s (for %s)\nclient: %s, %s\n",
		p.CACert, p.ServerCert, p.ServerKey, strings.Join(all, ", "), p.ClientCert, p.ClientKey)
	return nil
}
