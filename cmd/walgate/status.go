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

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/index"
)

const statusHelp = `walgate status --data DIR [--json]: the fleet table, one line per cluster:
its health (ok, warning, critical), the newest archived WAL segment and its
age, missing WAL (lost / delayed segments), the newest backup, the delta
chain length, the stored bytes, the recoverable window and the last restore
drill; below the table, the reason for every cluster that is not ok and what
to do. Asks the running gateway (through its admin socket), or reads the
catalog when the gateway is stopped.`

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("walgate status", statusHelp, stderr)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory and health thresholds)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := dataDir(*data, *configPath)
	if err != nil {
		return err
	}
	policy := health.DefaultPolicy()
	if *configPath != "" {
		if cfg, err := gateway.LoadConfig(*configPath); err == nil {
			policy = cfg.Policy()
		}
	}
	var st []gateway.ClusterStatus
	err = withCatalog(dir, func(a *gateway.AdminClient) error {
		st, err = a.Status()
		return err
	}, func(cat *index.Catalog) error {
		st, err = gateway.Status(cat, policy, "local")
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if st == nil {
			st = []gateway.ClusterStatus{}
		}
		return enc.Encode(st)
	}
	printFleet(stdout, st, isTTY(stdout))
	return nil
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
