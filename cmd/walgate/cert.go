package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/walgate/walgate/gateway/certs"
)

const certHelp = `walgate cert init DIR [--host NAME]...: make a private CA, a server
certificate and a client certificate under DIR, for trials and tests.

The server certificate names localhost, 127.0.0.1, ::1, this machine's host
name and every --host. Then:
  walgate serve --data D --tls-cert DIR/server.crt --tls-key DIR/server.key
  WALGATE_CA_FILE=DIR/ca.crt walgate-client ...
For mutual TLS add --tls-client-ca DIR/ca.crt to serve and give the client
WALGATE_CLIENT_CERT=DIR/client.crt WALGATE_CLIENT_KEY=DIR/client.key.`

type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }

func runCert(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprintln(stderr, certHelp)
		return usageErr("cert needs the sub-verb init")
	}
	fs := newFlags("walgate cert init", certHelp, stderr)
	var hosts hostList
	fs.Var(&hosts, "host", "extra DNS name or IP address for the server certificate (repeatable)")
	days := fs.Int("days", 365, "validity in days")
	// Accept DIR before or after the flags.
	rest := args[1:]
	var dir string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		dir, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		return usageErr("cert init needs a directory")
	}
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
