package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/cmd/internal/cpuprofile"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
)

var serveHelp = cli.Help{
	Usage: "walgate serve (--config FILE | --data DIR) [--listen ADDR] [--tls-cert FILE --tls-key FILE]",
	Text: `Run the gateway.

With --data alone it runs on embedded defaults: catalog and an fs store under
DIR, plain HTTP on 127.0.0.1:7480. --config FILE reads a YAML config (see
configs/walgate.yaml); flags given on the command line override it.
SIGINT or SIGTERM stops it gracefully: running requests finish first.
The config is parsed strictly, as 'walgate config check' does: an unknown
or misspelt key stops the start with its line and the key it meant.`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "stopped by SIGINT or SIGTERM"}, exitFailure, exitUsage},
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate serve")
	configPath := fs.String("config", "", "YAML config file")
	fs.StringVar(configPath, "c", "", "short for --config")
	data := fs.String("data", "", "data directory: catalog and default fs store")
	listen := fs.String("listen", "", "address to serve on (default 127.0.0.1:7480)")
	cert := fs.String("tls-cert", "", "PEM server certificate: serve HTTPS")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	clientCA := fs.String("tls-client-ca", "", "PEM CA bundle: require client certificates it signed")
	insecure := fs.Bool("allow-insecure-http", false, "allow plain HTTP on a non-loopback address")
	logFormat := fs.String("log-format", "", "text or json")
	pos, err := parseArgs(fs, serveHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("serve takes no arguments, got %q", pos)
	}
	var cfg gateway.Config
	if *configPath != "" {
		if cfg, err = loadConfig(*configPath); err != nil {
			return err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Data, *data)
	set(&cfg.Listen, *listen)
	set(&cfg.TLS.Cert, *cert)
	set(&cfg.TLS.Key, *key)
	set(&cfg.TLS.ClientCA, *clientCA)
	set(&cfg.Log.Format, *logFormat)
	if *insecure {
		cfg.AllowInsecureHTTP = true
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	log := newLogger(cfg.Log, stderr)
	// WALGATE_CPUPROFILE=PATH: a CPU profile of the whole run in PATH.PID,
	// written at shutdown (performance work; off by default).
	defer cpuprofile.Start(os.Getenv("WALGATE_CPUPROFILE"))()
	srv, err := gateway.Open(cfg, log, nil)
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	log.Info("walgate serving", "url", fmt.Sprintf("%s://%s", scheme, ln.Addr()), "data", cfg.Data,
		"backends", backendNames(cfg), "groups", len(cfg.Groups), "mtls", cfg.TLS.ClientCA != "", "version", version())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down: waiting for running requests")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	return err
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// backendNames lists the configured backends for the start-up log line.
func backendNames(cfg gateway.Config) string {
	names := make([]string, 0, len(cfg.Backends))
	for _, b := range cfg.Backends {
		names = append(names, b.Name+" ("+b.Type+")")
	}
	return strings.Join(names, ", ")
}
