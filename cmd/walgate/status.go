package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/index"
)

const statusHelp = `walgate status --data DIR [--json]: one line per cluster: archived WAL,
the newest segment and when it arrived, committed backups and the latest,
backups still uploading, and the last restore drill with its result.`

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("walgate status", statusHelp, stderr)
	data := fs.String("data", "", "the gateway's data directory")
	configPath := fs.String("config", "", "YAML config (for its data directory)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := dataDir(*data, *configPath)
	if err != nil {
		return err
	}
	var st []gateway.ClusterStatus
	err = withCatalog(dir, func(a *gateway.AdminClient) error {
		st, err = a.Status()
		return err
	}, func(cat *index.Catalog) error {
		st, err = gateway.Status(cat)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tWAL\tSTORED\tLAST WAL\tAGE\tBACKUPS\tLAST BACKUP\tUPLOADING\tLAST DRILL")
	for _, c := range st {
		last, age := "-", "-"
		if c.LastWAL != "" {
			last, age = c.LastWAL, ago(c.LastWALAt)
		}
		lb := "-"
		if c.LastBackup != nil {
			lb = fmt.Sprintf("%s (%s ago)", c.LastBackup.Name, ago(c.LastBackup.FinishTime))
		}
		ld := "never"
		if c.LastDrill != nil {
			verdict := "FAILED"
			if c.LastDrill.Passed {
				verdict = "passed"
			}
			ld = fmt.Sprintf("%s %s ago (%s)", verdict, ago(c.LastDrill.Finished), c.LastDrill.Backup)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f MiB\t%s\t%s\t%d\t%s\t%d\t%s\n", c.Cluster, c.WALFiles, float64(c.WALBytes)/(1<<20), last, age,
			c.Backups, lb, c.OpenBackups, ld)
	}
	return tw.Flush()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
