package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client/pgctl"
)

// Recovery says how a cluster made from a base backup gets its WAL and
// where it stops (pgctl.Recovery). RestoreCommand is required, e.g. "cp
// /archive/%f %p" or "/path/walgate-client wal-fetch %f %p"; it must fail
// (non-zero exit) for a missing file. Empty fields leave PostgreSQL's
// defaults: recover to the end of the archive on the latest timeline; when
// a target is set, pause there.
type Recovery = pgctl.Recovery

// recoveryLines renders the recovery settings for postgresql.conf.
func recoveryLines(r Recovery) ([]string, error) {
	if r.RestoreCommand == "" {
		return nil, fmt.Errorf("pgtest: Recovery.RestoreCommand is empty")
	}
	settings, err := r.Settings()
	if err != nil {
		return nil, fmt.Errorf("pgtest: Recovery: %w", err)
	}
	lines := make([]string, 0, len(settings))
	for _, kv := range settings {
		lines = append(lines, kv[0]+" = "+QuoteConf(kv[1]))
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
	lines, err := recoveryLines(rec)
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
		if err := c.owner.Chown(p); err != nil {
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
	lines, err := recoveryLines(rec)
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
		st, err := c.recoveryState(qctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case !st.InRecovery:
			return RecoveryPromoted, nil
		case st.Paused():
			return RecoveryPaused, nil
		default:
			last = "in recovery, replay " + st.Pause
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("pgtest: cluster %s: recovery did not end: %w (last state: %s)%s",
				c.Dir, ctx.Err(), last, section("server log", c.LogTail(40)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recoveryState asks the server where its recovery stands.
func (c *Cluster) recoveryState(ctx context.Context) (pgctl.RecoveryState, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return pgctl.RecoveryState{}, err
	}
	defer conn.Close(context.Background())
	st, err := pgctl.ReadRecoveryState(ctx, conn)
	if err != nil {
		return st, fmt.Errorf("pgtest: port %d: reading the recovery state: %w", c.Port, err)
	}
	return st, nil
}
