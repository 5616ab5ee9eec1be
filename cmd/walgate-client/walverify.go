package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"time"

	"github.com/walgate/walgate/client"
)

var walVerifyHelp = cli.Help{
	Usage: "walgate-client wal-verify [--json] [--no-db]",
	Text: `Can the archive restore the newest backup to now?

Asks the gateway for the cluster's archive health: missing WAL segments
between the oldest backup's start and the newest archived segment, per
timeline (delayed: newer segments arrived recently, it may still come; lost:
recovery cannot pass it), whether archiving has stalled, and whether the
newest backup recovers to the newest archived segment. Unless --no-db, it
also asks the local PostgreSQL (PG* variables) where it is writing now and
which segments still wait for archive_command (still expected).

It also lists WAL files of which every stored copy failed its checks, and
says when the newest backup cannot be restored because a link of its delta
chain or one of its objects is missing or damaged on every store (as far as
the gateway found, from reads, repairs and drills).

--json prints the schema documented in docs/json.md.`,
	Exits: exits(exitOK, exitUnavailable, exitUsage, exitAuth, exitWALVerify),
}

// walVerifyFailed makes wal-verify exit 8.
type walVerifyFailed struct{ msg string }

func (e *walVerifyFailed) Error() string { return e.msg }

func runWALVerify(ctx context.Context, c *client.Client, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate-client wal-verify")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noDB := fs.Bool("no-db", false, "do not connect to the local PostgreSQL")
	pos, err := cli.Parse(fs, walVerifyHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("wal-verify takes no arguments")
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	var host *client.HostWAL
	var hostErr error
	if !*noDB {
		hw, err := client.ReadHostWAL(ctx, "")
		if err != nil {
			hostErr = err
		} else {
			host = &hw
		}
	}
	ok := h.RestorableToNow && h.LostSegments == 0 && !h.Stalled && len(h.DamagedWAL) == 0 && h.NewestBackupUnrestorable == ""
	if *asJSON {
		out := struct {
			Archive any    `json:"archive"`
			Host    any    `json:"host,omitempty"`
			HostErr string `json:"host_error,omitempty"`
			OK      bool   `json:"ok"`
		}{Archive: h, OK: ok}
		if host != nil {
			out.Host = host
		}
		if hostErr != nil {
			out.HostErr = hostErr.Error()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "cluster %s: %s\n", h.Cluster, h.Status)
		if h.LastSegment != "" {
			fmt.Fprintf(stdout, "  newest archived WAL: %s, %s ago\n", h.LastSegment, time.Since(h.LastPush).Round(time.Second))
		} else {
			fmt.Fprintln(stdout, "  no WAL archived yet")
		}
		if host != nil {
			if host.Current != "" {
				fmt.Fprintf(stdout, "  PostgreSQL is writing: %s\n", host.Current)
			}
			if len(host.Pending) > 0 {
				fmt.Fprintf(stdout, "  still expected (waiting for archive_command): %d segments, %s .. %s\n", len(host.Pending), host.Pending[0], host.Pending[len(host.Pending)-1])
			}
			if host.FailedCount > 0 {
				fmt.Fprintf(stdout, "  archive_command has failed %d times (last: %s); see the server log\n", host.FailedCount, host.LastFailed)
			}
		} else if hostErr != nil {
			fmt.Fprintf(stdout, "  (local PostgreSQL not consulted: %v)\n", hostErr)
		}
		for _, g := range h.Gaps {
			fmt.Fprintf(stdout, "  missing (%s): %s .. %s, %d segments on timeline %d\n", g.Class, g.From, g.To, g.Count, g.Timeline)
		}
		for _, name := range h.DamagedWAL {
			fmt.Fprintf(stdout, "  damaged: every stored copy of %s fails its checks; recovery cannot pass it\n", name)
		}
		if h.LastBackup != "" {
			verdict := "restores to the newest archived WAL"
			switch {
			case h.NewestBackupUnrestorable != "":
				verdict = "CANNOT be restored: " + h.NewestBackupUnrestorable
			case !h.RestorableToNow || len(h.DamagedWAL) > 0:
				verdict = "does NOT restore to the newest archived WAL"
			}
			fmt.Fprintf(stdout, "  newest backup %s (chain length %d) %s\n", h.LastBackup, h.ChainLength, verdict)
		}
		if !h.WindowStart.IsZero() {
			fmt.Fprintf(stdout, "  recoverable window: %s .. %s\n", h.WindowStart.UTC().Format(time.RFC3339), h.WindowEnd.UTC().Format(time.RFC3339))
		}
		for _, r := range h.Reasons {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
	}
	if !ok {
		return &walVerifyFailed{msg: "the archive cannot restore the newest backup to now (see the report above)"}
	}
	return nil
}
