package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"text/tabwriter"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/protocol"
)

// runBackupList prints the cluster's committed backups, oldest first: a
// table, or with --json the gateway's summaries as a JSON array.
func runBackupList(ctx context.Context, c *client.Client, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("walgate-client backup-list")
	asJSON := fs.Bool("json", false, "print the backups as JSON (docs/json.md)")
	pos, err := cli.Parse(fs, backupListHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("backup-list takes no arguments (only --json)")
	}
	list, err := c.ListBackups(ctx)
	if err != nil {
		return err
	}
	if list == nil {
		list = []protocol.BackupSummary{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no committed backups for cluster %s\n", c.Config().Cluster)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPARENT\tDEPTH\tSTART TIME\tFINISH TIME\tSTART LSN\tFINISH LSN\tTL\tDATA SIZE\tSTORED\tPG")
	for _, b := range list {
		parent := "-"
		if b.DeltaFrom != "" {
			parent = b.DeltaFrom
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\n",
			b.Name, b.Kind, parent, b.DeltaCount, b.StartTime.UTC().Format(time.RFC3339), b.FinishTime.UTC().Format(time.RFC3339),
			lsnText(b.StartLSN), lsnText(b.FinishLSN), b.Timeline,
			humanBytes(b.UncompressedSize), humanBytes(b.StoredSize), b.PgVersion/10000)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range list {
		if b.Unrestorable != "" {
			fmt.Fprintf(stdout, "%s CANNOT be restored: %s\n", b.Name, b.Unrestorable)
		}
	}
	return nil
}

// humanBytes formats a size with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
