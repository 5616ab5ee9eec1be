package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway/protocol"
)

var walVerifyHelp = cli.Help{
	Usage: "walgate-client wal-verify [--json] [--no-db] | wal-verify --keys [--json]",
	Text: `Can the archive restore the newest backup to now? With --keys: which
encryption keys does the archive still need?

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

With --keys, it reports instead the WAL files and backups sealed with each
key, by fingerprint (a keyed hash that reveals nothing about the key), and
for each key of WALGATE_ENCRYPTION_OLD_KEYS how many objects still need it
and which. A key may be retired once nothing needs it. Objects that record
no key (WAL-G's, and walgate's from before key fingerprints) are counted
apart: only decrypting them would tell which key they need; --keys exits 0.

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
	keys := fs.Bool("keys", false, "report which encryption keys the archive's objects need")
	pos, err := cli.Parse(fs, walVerifyHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("wal-verify takes no arguments")
	}
	if *keys {
		return runWALVerifyKeys(ctx, c, *asJSON, stdout)
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

// keyReport is wal-verify --keys's JSON.
type keyReport struct {
	Cluster string          `json:"cluster"`
	Keys    []keyReportLine `json:"keys"`
	// OldKeys lists, per key of WALGATE_ENCRYPTION_OLD_KEYS, what still
	// needs it.
	OldKeys []oldKeyNeed `json:"old_keys"`
	// Unrecorded counts encrypted objects that name no key.
	UnrecordedWAL     int `json:"unrecorded_wal"`
	UnrecordedBackups int `json:"unrecorded_backups"`
}

type keyReportLine struct {
	protocol.KeyUse
	Role string `json:"role,omitempty"` // current, old N, "" (not configured)
}

type oldKeyNeed struct {
	Fingerprint string   `json:"fingerprint"`
	WAL         int      `json:"wal"`
	FirstWAL    string   `json:"first_wal,omitempty"`
	LastWAL     string   `json:"last_wal,omitempty"`
	Backups     []string `json:"backups"`
}

func runWALVerifyKeys(ctx context.Context, c *client.Client, asJSON bool, stdout io.Writer) error {
	u, err := c.KeyUsage(ctx)
	if err != nil {
		return err
	}
	rep := keyReport{Cluster: u.Cluster, Keys: []keyReportLine{}, OldKeys: []oldKeyNeed{}}
	byFP := map[string]protocol.KeyUse{}
	for _, k := range u.Keys {
		line := keyReportLine{KeyUse: k}
		switch {
		case k.Encryption != protocol.EncryptionLibsodium:
		case k.Fingerprint == "":
			rep.UnrecordedWAL, rep.UnrecordedBackups = k.WAL, len(k.Backups)
		default:
			line.Role = c.KeyRole(k.Fingerprint)
			byFP[k.Fingerprint] = k
		}
		rep.Keys = append(rep.Keys, line)
	}
	for _, fp := range c.OldKeyFingerprints() {
		k := byFP[fp]
		rep.OldKeys = append(rep.OldKeys, oldKeyNeed{Fingerprint: fp, WAL: k.WAL, FirstWAL: k.FirstWAL, LastWAL: k.LastWAL, Backups: append([]string{}, k.Backups...)})
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "cluster %s: objects by encryption key\n", rep.Cluster)
	for _, k := range rep.Keys {
		what := "unencrypted"
		switch {
		case k.Encryption != protocol.EncryptionLibsodium:
		case k.Fingerprint == "":
			what = "encrypted, key not recorded (WAL-G's or older walgate objects)"
		case k.Role == "current":
			what = "key " + k.Fingerprint + " (WALGATE_ENCRYPTION_KEY)"
		case k.Role != "":
			what = "key " + k.Fingerprint + " (WALGATE_ENCRYPTION_OLD_KEYS, " + k.Role + ")"
		default:
			what = "key " + k.Fingerprint + " (NOT configured on this host)"
		}
		fmt.Fprintf(stdout, "  %s: %s\n", what, useSummary(k.WAL, k.FirstWAL, k.LastWAL, k.Backups))
	}
	for i, o := range rep.OldKeys {
		if o.WAL == 0 && len(o.Backups) == 0 {
			fmt.Fprintf(stdout, "  old key %d (%s): no object records it; it may be retired", i+1, o.Fingerprint)
			if rep.UnrecordedWAL+rep.UnrecordedBackups > 0 {
				fmt.Fprintf(stdout, " unless the objects that record no key need it")
			}
			fmt.Fprintln(stdout)
			continue
		}
		fmt.Fprintf(stdout, "  old key %d (%s): still needed by %s\n", i+1, o.Fingerprint, useSummary(o.WAL, o.FirstWAL, o.LastWAL, o.Backups))
	}
	return nil
}

// useSummary says "N WAL files (first .. last), M backups (names)".
func useSummary(wal int, first, last string, backups []string) string {
	s := fmt.Sprintf("%d WAL files", wal)
	if wal > 0 {
		s += fmt.Sprintf(" (%s .. %s)", first, last)
	}
	s += fmt.Sprintf(", %d backups", len(backups))
	if len(backups) > 0 {
		s += " (" + strings.Join(backups, ", ") + ")"
	}
	return s
}
