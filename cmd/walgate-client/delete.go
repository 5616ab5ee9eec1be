package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"strconv"
	"strings"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/protocol"
)

var deleteHelp = cli.Help{
	Usage: `walgate-client delete retain [FULL] N [--confirm] [--json]
       walgate-client delete before NAME [--confirm] [--json]`,
	Text: `Delete this cluster's older backups, and the WAL only they needed, on every
backend of the gateway. 'retain N' keeps the newest N backups; 'retain FULL
N' the newest N full backups with the deltas built on them; 'before NAME'
keeps backup NAME and every later one. WAL older than the oldest kept
backup's start is deleted per timeline; timeline history files, permanent
backups and the WAL they need, and the newest full backup always stay.

Without --confirm nothing is deleted: the gateway says what would be. The
gateway refuses (exit 5, nothing deleted) while copies of the cluster are
still to be replicated between its backends, or when a backend does not
hold a backup the catalog says it holds.

WALGATE_TOKEN must be a token of this cluster with the admin scope
('walgate token add --scope admin'); database hosts' tokens (push, fetch)
are refused (exit 3).`,
	Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitConflict),
}

func runDelete(ctx context.Context, c *client.Client, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate-client delete")
	confirm := fs.Bool("confirm", false, "really delete (without it: say what would be deleted)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	words, err := cli.Parse(fs, deleteHelp, args, stdout)
	if err != nil {
		return err
	}
	var req protocol.DeleteRequest
	switch {
	case len(words) >= 2 && words[0] == "retain":
		rest := words[1:]
		if strings.EqualFold(rest[0], "FULL") {
			req.Full, rest = true, rest[1:]
		}
		if len(rest) != 1 {
			return usageError("delete retain takes a count: delete retain [FULL] N")
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 {
			return usageError("delete retain %s: want a whole number of backups, 1 or more", rest[0])
		}
		req.Retain = n
	case len(words) == 2 && words[0] == "before":
		if err := protocol.ValidateBackupName(words[1]); err != nil {
			return usageError("delete before %s: %v (see backup-list)", words[1], err)
		}
		req.Before = words[1]
	default:
		return usageError("say what to keep: delete retain [FULL] N, or delete before NAME (see delete --help)")
	}
	req.Confirm = *confirm
	res, err := c.Delete(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	verb := "would delete"
	if res.Applied {
		verb = "deleted"
	}
	fmt.Fprintf(stdout, "Cluster %s: %s %d backups (%s) and %d WAL files (%s).\n", res.Cluster, verb, len(res.Backups),
		mib(res.BackupBytes), res.WALFiles, mib(res.WALBytes))
	for _, b := range res.Backups {
		fmt.Fprintf(stdout, "  %s %s\n", verb, b)
	}
	for _, r := range res.Retained {
		fmt.Fprintf(stdout, "  keeps   %s: %s\n", r.Name, strings.Join(r.Reasons, "; "))
	}
	if len(res.WALKeptFrom) > 0 {
		fmt.Fprintf(stdout, "WAL kept: %s\n", strings.Join(res.WALKeptFrom, ", "))
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if res.RefusedBecause != "" {
		fmt.Fprintf(stdout, "The gateway would refuse this deletion now: %s\n", res.RefusedBecause)
	}
	if !res.Applied && len(res.Backups)+res.WALFiles > 0 {
		fmt.Fprintln(stdout, "Nothing was deleted: add --confirm to delete.")
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
