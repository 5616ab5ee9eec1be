package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

var statusHelp = cli.Help{
	Usage: "walgate status (--data DIR | --config FILE) [--json] [--backends | --gateways | --tokens] [--fail-on warning|critical]",
	Text: `The fleet table, one line per cluster: its health (ok, warning, critical), the newest archived WAL segment and its
age, missing WAL (lost / delayed segments), the newest backup, the delta
chain length, the stored bytes, the recoverable window and the last restore
drill; below the table, the reason for every cluster that is not ok and what
to do. Then one line per backend: its groups, the objects and bytes waiting
for replication to it, the age of the oldest, and its last error.
Then the gateways that serve the catalog, one line each: alive (a
heartbeat within the last 15 s), down (its heartbeats stopped without a
clean shutdown: killed, crashed or cut off from the catalog; a warning)
or stopped (shut down cleanly), when it was last seen, its address and
version; with --gateways (and --json) only the gateways.
Below all, the tokens that expire within 14 days and have no successor
yet, with the command that rotates them; with --tokens (and --json) only
those tokens.
Asks the running gateway (through its admin socket), or reads the catalog
when the gateway is stopped (pass --config so the backends and groups are
known).

For scripts and monitoring, --fail-on LEVEL exits 3 when any cluster is at
LEVEL or worse (warning: warning or critical; critical: critical only),
after printing the same output; a gateway that is down counts as a
warning. Without --fail-on the exit code says only
whether the status could be read (0), so existing scripts keep working.
--json prints the schema documented in docs/json.md.`,
	Exits: []cli.ExitCode{exitSuccess, exitFailure, exitUsage,
		{Code: 3, Meaning: "--fail-on: some cluster (or, for warning, some gateway) is at the given level or worse"}},
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate status")
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory and health thresholds)")
	asJSON := fs.Bool("json", false, "print JSON (the clusters; with --backends, the backends)")
	onlyBackends := fs.Bool("backends", false, "show only the backends: replication pending per backend, oldest pending, last error")
	onlyTokens := fs.Bool("tokens", false, "show only the tokens that expire within 14 days and have no successor")
	onlyGateways := fs.Bool("gateways", false, "show only the gateways: alive, down or stopped, last seen, address, version")
	failOn := fs.String("fail-on", "", "exit 3 when a cluster is at `LEVEL` (warning or critical) or worse")
	pos, err := parseArgs(fs, statusHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("status takes no arguments, got %q", pos)
	}
	switch *failOn {
	case "", string(health.Warning), string(health.Critical):
	default:
		return usageErr("--fail-on %q: want warning or critical", *failOn)
	}
	dir, err := dataDir(*data, *configPath)
	if err != nil {
		return err
	}
	cfg := gateway.Config{Data: dir}
	if *configPath != "" {
		if cfg, err = loadConfig(*configPath); err != nil {
			return err
		}
		cfg.Data = dir
	}
	var st []gateway.ClusterStatus
	var bs []stores.BackendStatus
	var tokens []index.Token
	var gws []fleet.GatewayStatus
	var gwErr error // the gateways could not be read (the rest is shown)
	err = withCatalog(catalogSource{data: *data, config: *configPath}, func(a *admin.Client) error {
		if st, err = a.Status(); err != nil {
			return err
		}
		if tokens, err = a.ListTokens(); err != nil {
			return err
		}
		gws, gwErr = a.Gateways()
		bs, err = a.Backends()
		return err
	}, func(cat index.Interface) error {
		if st, err = fleet.Status(cat, cfg); err != nil {
			return err
		}
		if tokens, err = cat.ListTokens(); err != nil {
			return err
		}
		gws, gwErr = fleet.Gateways(cat)
		bs, err = stores.BackendsStatus(cat, cfg, nil)
		return err
	})
	if err != nil {
		return err
	}
	if *onlyGateways {
		if gwErr != nil {
			return fmt.Errorf("reading the gateways: %w", gwErr)
		}
		if *asJSON {
			if gws == nil {
				gws = []fleet.GatewayStatus{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(gws); err != nil {
				return err
			}
		} else {
			printGateways(stdout, gws)
		}
		return failOnLevel(st, gws, health.Status(*failOn))
	}
	expiring := admin.ExpiringTokens(tokens, time.Now(), admin.ExpiryWarning)
	if *onlyTokens {
		if *asJSON {
			if expiring == nil {
				expiring = []index.Token{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(expiring)
		}
		printExpiring(stdout, expiring)
		return nil
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if *onlyBackends {
			if bs == nil {
				bs = []stores.BackendStatus{}
			}
			err = enc.Encode(bs)
		} else {
			if st == nil {
				st = []gateway.ClusterStatus{}
			}
			err = enc.Encode(st)
		}
		if err != nil {
			return err
		}
	} else {
		if !*onlyBackends {
			printFleet(stdout, st, isTTY(stdout))
			fmt.Fprintln(stdout)
		}
		printBackends(stdout, bs)
		if !*onlyBackends {
			fmt.Fprintln(stdout)
			if gwErr != nil {
				fmt.Fprintf(stdout, "gateways: could not be read: %v\n", gwErr)
			} else {
				printGateways(stdout, gws)
			}
		}
		if len(expiring) > 0 && !*onlyBackends {
			fmt.Fprintln(stdout)
			printExpiring(stdout, expiring)
		}
	}
	return failOnLevel(st, gws, health.Status(*failOn))
}

// failOnLevel is --fail-on: an exit-3 error naming the clusters at level
// or worse (and, at warning, the gateways that are down), nil when there
// are none or level is empty.
func failOnLevel(st []gateway.ClusterStatus, gws []fleet.GatewayStatus, level health.Status) error {
	if level == "" {
		return nil
	}
	var bad []string
	for _, c := range st {
		if c.Status == health.Critical || (level == health.Warning && c.Status == health.Warning) {
			bad = append(bad, c.Cluster+" "+string(c.Status))
		}
	}
	for _, g := range gws {
		if level == health.Warning && g.State == fleet.GatewayDown {
			bad = append(bad, "gateway "+g.ID+" down")
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &exitError{code: 3, err: fmt.Errorf("--fail-on %s: %s", level, strings.Join(bad, ", "))}
}

// printExpiring lists the tokens close to expiry and how to rotate them.
func printExpiring(w io.Writer, list []index.Token) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no token expires within 14 days")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPIRING TOKEN\tCLUSTER\tSCOPES\tEXPIRES\tIN\tCOMMENT")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, listCluster(t), joinScopes(t.Scopes), t.Expires.UTC().Format(time.RFC3339),
			time.Until(t.Expires).Round(time.Minute), t.Comment)
	}
	tw.Flush()
	fmt.Fprintln(w, "rotate each before it expires: walgate token rotate ID (the old one keeps working for a day)")
}

// printGateways prints the fleet's gateways and a warning line for each
// one that is down.
func printGateways(w io.Writer, gws []fleet.GatewayStatus) {
	if len(gws) == 0 {
		fmt.Fprintln(w, "no gateway has registered in this catalog yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tSTATE\tLAST SEEN\tADDRESS\tVERSION\tREADY\tSTARTED")
	for _, g := range gws {
		ready := "no"
		if g.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\t%s\t%s\n", g.ID, strings.ToUpper(g.State), secondsAgo(g.LastSeenAgo), g.Address, g.Version,
			ready, g.Started.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	for _, g := range gws {
		if g.State == fleet.GatewayDown {
			fmt.Fprintf(w, "gateway %s: warning: down, no heartbeat since %s (%s ago): it was killed, crashed or lost the catalog; check the process on %s and its log\n",
				g.ID, g.LastSeen.UTC().Format(time.RFC3339), secondsAgo(g.LastSeenAgo), g.Host)
		}
	}
}

// secondsAgo formats an age in seconds as a duration.
func secondsAgo(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}

// printBackends prints each backend's replication state.
func printBackends(w io.Writer, bs []stores.BackendStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND	TYPE	GROUPS	PENDING	PENDING BYTES	OLDEST PENDING	LAST ERROR")
	for _, b := range bs {
		oldest := "-"
		if !b.OldestPending.IsZero() {
			oldest = ago(b.OldestPending) + " ago"
		}
		last := "-"
		if b.LastError != "" {
			msg := b.LastError
			if len(msg) > 100 {
				msg = msg[:100] + "..."
			}
			last = fmt.Sprintf("%s ago: %s", ago(b.LastErrorAt), msg)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f MiB\t%s\t%s\n", b.Name, b.Type, strings.Join(b.Groups, ","), b.PendingObjects,
			float64(b.PendingBytes)/(1<<20), oldest, last)
	}
	tw.Flush()
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printFleet writes the fleet table and the reasons behind every status
// that is not ok.
func printFleet(w io.Writer, st []gateway.ClusterStatus, color bool) {
	if len(st) == 0 {
		fmt.Fprintln(w, "no clusters yet: add a token with 'walgate token add --cluster NAME' and point archive_command at walgate-client")
		return
	}
	paint := func(s health.Status) string {
		text := strings.ToUpper(string(s))
		if !color {
			return text
		}
		switch s {
		case health.Critical:
			return "\x1b[31m" + text + "\x1b[0m"
		case health.Warning:
			return "\x1b[33m" + text + "\x1b[0m"
		}
		return "\x1b[32m" + text + "\x1b[0m"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tSTATUS\tLAST WAL\tAGE\tMISSING WAL\tLAST BACKUP\tCHAIN\tSTORED\tRECOVERABLE WINDOW\tLAST DRILL")
	for _, c := range st {
		last, age := "-", "-"
		if c.LastSegment != "" {
			last, age = c.LastSegment, ago(c.LastPush)
		}
		missing := "none"
		if c.LostSegments+c.Delayed > 0 {
			missing = fmt.Sprintf("%d lost, %d delayed", c.LostSegments, c.Delayed)
		}
		lb := "-"
		if c.LastBackup != "" {
			lb = fmt.Sprintf("%s (%s ago)", c.LastBackup, ago(c.LastBackupAt))
		}
		window := "-"
		if !c.WindowStart.IsZero() {
			window = c.WindowStart.UTC().Format("01-02 15:04") + " .. " + c.WindowEnd.UTC().Format("01-02 15:04") + " UTC"
		}
		ld := "never"
		if c.LastDrill != nil {
			verdict := "FAILED"
			if c.LastDrill.Passed {
				verdict = "passed"
			}
			ld = fmt.Sprintf("%s %s ago", verdict, ago(c.LastDrill.Received))
		}
		// The status column is padded before colouring so the table stays
		// aligned.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.1f MiB\t%s\t%s\n", c.Cluster, paint(c.Status)+strings.Repeat(" ", 8-len(c.Status)),
			last, age, missing, lb, c.ChainLength, float64(c.StoredBytes)/(1<<20), window, ld)
	}
	tw.Flush()
	for _, c := range st {
		for _, r := range c.Reasons {
			fmt.Fprintf(w, "%s: %s\n", c.Cluster, r)
		}
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
