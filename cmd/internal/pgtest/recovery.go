package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Recovery says how a cluster made from a base backup gets its WAL and
// where it stops. Empty fields leave PostgreSQL's defaults: recover to the
// end of the archive on the latest timeline; when a target is set, pause
// there.
type Recovery struct {
	// RestoreCommand is required, e.g. "cp /archive/%f %p" or
	// "/path/walgate-client restore %f %p". It runs as the server user with
	// the cluster's Env; it must fail (non-zero exit) for a missing file.
	RestoreCommand string

	// At most one target, as for recovery_target, recovery_target_name,
	// _time, _xid and _lsn. Target may only be "immediate".
	Target     string
	TargetName string
	TargetTime string // e.g. "2026-01-02 03:04:05.123456+00"
	TargetXID  string
	TargetLSN  string

	// TargetExclusive stops just before the target instead of just after
	// (recovery_target_inclusive = off).
	TargetExclusive bool

	// TargetTimeline is recovery_target_timeline: "latest", "current" or
	// a number.
	TargetTimeline string

	// TargetAction is recovery_target_action: "pause", "promote" or
	// "shutdown".
	TargetAction string
}

// lines renders the recovery settings for postgresql.conf.
func (r Recovery) lines() ([]string, error) {
	if r.RestoreCommand == "" {
		return nil, fmt.Errorf("pgtest: Recovery.RestoreCommand is empty")
	}
	lines := []string{"restore_command = " + QuoteConf(r.RestoreCommand)}
	targets := 0
	for _, kv := range [][2]string{
		{"recovery_target", r.Target},
		{"recovery_target_name", r.TargetName},
		{"recovery_target_time", r.TargetTime},
		{"recovery_target_xid", r.TargetXID},
		{"recovery_target_lsn", r.TargetLSN},
	} {
		if kv[1] != "" {
			targets++
			lines = append(lines, kv[0]+" = "+QuoteConf(kv[1]))
		}
	}
	if targets > 1 {
		return nil, fmt.Errorf("pgtest: Recovery sets %d targets; PostgreSQL allows one", targets)
	}
	if r.TargetExclusive {
		lines = append(lines, "recovery_target_inclusive = off")
	}
	if r.TargetTimeline != "" {
		lines = append(lines, "recovery_target_timeline = "+QuoteConf(r.TargetTimeline))
	}
	if r.TargetAction != "" {
		lines = append(lines, "recovery_target_action = "+QuoteConf(r.TargetAction))
	}
	return lines, nil
}

// NewFromBackup is CreateFromBackup for a test: the cluster is started (not
// waited for; call WaitRecoveryEnd), stopped and removed at cleanup, and its
// log tail is logged if the test failed.
func NewFromBackup(t testing.TB, backupDir string, rec Recovery, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := CreateFromBackup(ctx, backupDir, "", rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	registerCleanup(t, c)
	return c
}

// CreateFromBackup makes a cluster in dir ("" = a fresh temporary
// directory) from a copy of the plain-format base backup in backupDir,
// which is left untouched and may be used again. It writes recovery.signal
// and the settings of rec, gives the cluster its own port and socket
// directory, turns archive_mode off (opts.Conf may turn it back on), and
// starts it unless opts.NoStart; recovery then runs in the background.
// opts.DataChecksums and opts.WALSegmentSizeMB are ignored: the backup
// decides them. Settings from ALTER SYSTEM in the backup still apply.
func CreateFromBackup(ctx context.Context, backupDir, dir string, rec Recovery, opts Options) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	lines, err := rec.lines()
	if err != nil {
		return nil, err
	}
	major, err := majorOfDataDir(backupDir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s is not a plain-format base backup: %w", backupDir, err)
	}
	if opts.Major != 0 && opts.Major != major {
		return nil, fmt.Errorf("pgtest: the base backup in %s is of PostgreSQL %d, not %d", backupDir, major, opts.Major)
	}
	opts.Major = major
	c, cleanup, err := newCluster(dir, opts)
	if err != nil {
		return nil, err
	}
	c.recovery = lines
	if err := c.prepareRecovery(backupDir); err != nil {
		cleanup()
		return nil, err
	}
	if !opts.NoStart {
		if err := c.Start(ctx); err != nil {
			cleanup()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) prepareRecovery(backupDir string) error {
	if err := copyTree(c.owner, backupDir, c.DataDir); err != nil {
		return fmt.Errorf("pgtest: copy base backup %s: %w", backupDir, err)
	}
	// PostgreSQL insists on 0700 or 0750 for the data directory.
	if err := os.Chmod(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for _, name := range []string{"postmaster.pid", "postmaster.opts", "standby.signal"} {
		if err := os.Remove(filepath.Join(c.DataDir, name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	for _, sub := range []string{"pg_wal", "pg_wal/archive_status"} {
		p := filepath.Join(c.DataDir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err := c.owner.chown(p); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := c.writeServerFile(filepath.Join(c.DataDir, "recovery.signal"), "", 0o600); err != nil {
		return err
	}
	if err := c.ensureInclude(); err != nil {
		return err
	}
	return c.writeConf()
}

// SetRecovery replaces the recovery settings of a cluster made from a base
// backup and not yet promoted, for its next Start: after a shutdown at a
// target, say, to move the target further or to pause there instead.
func (c *Cluster) SetRecovery(rec Recovery) error {
	lines, err := rec.lines()
	if err != nil {
		return err
	}
	if len(c.recovery) == 0 {
		return fmt.Errorf("pgtest: SetRecovery on cluster %s, which was not made from a base backup", c.Dir)
	}
	c.recovery = lines
	return c.writeConf()
}

// RecoveryOutcome is how archive recovery ended.
type RecoveryOutcome string

const (
	RecoveryPromoted RecoveryOutcome = "promoted" // out of recovery, read-write
	RecoveryPaused   RecoveryOutcome = "paused"   // paused at the target, read-only
	RecoveryShutdown RecoveryOutcome = "shutdown" // stopped at the target (recovery_target_action = shutdown)
)

// WaitRecoveryEnd waits until the server leaves recovery, pauses at its
// target, or shuts down at its target. If the server dies otherwise (WAL
// missing from the archive, target not reached, ...) or ctx ends, the error
// carries the last state seen and the server log tail.
func (c *Cluster) WaitRecoveryEnd(ctx context.Context) (RecoveryOutcome, error) {
	var last string
	for {
		if !c.Running() {
			log := tailLines(c.logSince(c.startLog), 40)
			if strings.Contains(log, "shutdown at recovery target") {
				return RecoveryShutdown, nil
			}
			return "", fmt.Errorf("pgtest: cluster %s stopped during recovery%s", c.Dir, section("server log", log))
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		state, err := c.QueryString(qctx, c.recoveryStateQuery())
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case state == "promoted":
			return RecoveryPromoted, nil
		case state == "in recovery, replay paused":
			return RecoveryPaused, nil
		default:
			last = state
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("pgtest: cluster %s: recovery did not end: %w (last state: %s)%s",
				c.Dir, ctx.Err(), last, section("server log", c.LogTail(40)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
