package pgctl

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// QuoteConf quotes a value for postgresql.conf: single quotes doubled,
// backslashes escaped (the configuration parser reads C-like escapes).
func QuoteConf(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Recovery says how a server started from a base backup gets its WAL and
// where it stops. Empty fields leave PostgreSQL's defaults: recover to the
// end of the archive on the latest timeline.
type Recovery struct {
	// RestoreCommand, e.g. "walgate-client wal-fetch %f %p". It runs as
	// the server's account with the server's environment.
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

// Settings are the recovery settings as name and value, in the order
// they are written.
func (r Recovery) Settings() ([][2]string, error) {
	var out [][2]string
	if r.RestoreCommand != "" {
		out = append(out, [2]string{"restore_command", r.RestoreCommand})
	}
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
			out = append(out, kv)
		}
	}
	if targets > 1 {
		return nil, fmt.Errorf("%d recovery targets; PostgreSQL allows one", targets)
	}
	if r.TargetExclusive {
		out = append(out, [2]string{"recovery_target_inclusive", "off"})
	}
	if r.TargetTimeline != "" {
		out = append(out, [2]string{"recovery_target_timeline", r.TargetTimeline})
	}
	if r.TargetAction != "" {
		out = append(out, [2]string{"recovery_target_action", r.TargetAction})
	}
	return out, nil
}

// AppendAutoConf appends settings to dir/postgresql.auto.conf (created if
// missing) under a comment line; there they win over postgresql.conf, and
// later lines over earlier ones. With fsync the file is synced.
func AppendAutoConf(dir, comment string, settings [][2]string, fsync bool) error {
	path := filepath.Join(dir, "postgresql.auto.conf")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var b strings.Builder
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "# %s, %s\n", comment, time.Now().UTC().Format(time.RFC3339))
	for _, kv := range settings {
		if strings.ContainsAny(kv[0]+kv[1], "\n\r") {
			return fmt.Errorf("setting %s: line breaks are not allowed", kv[0])
		}
		fmt.Fprintf(&b, "%s = %s\n", kv[0], QuoteConf(kv[1]))
	}
	return writeSynced(path, os.O_APPEND, []byte(b.String()), fsync)
}

// StartRecovery makes the data directory in dir start in archive
// recovery: settings appended to postgresql.auto.conf, recovery.signal
// written. A standby.signal from the backup is removed: with it, the
// server would stay a standby and never finish recovery.
func StartRecovery(dir, comment string, settings [][2]string, fsync bool) error {
	if err := AppendAutoConf(dir, comment, settings, fsync); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "standby.signal")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return WriteFile(filepath.Join(dir, "recovery.signal"), nil, fsync)
}

// WriteFile writes a file of the data directory (mode 0600, replacing
// it), synced with fsync.
func WriteFile(path string, data []byte, fsync bool) error {
	return writeSynced(path, os.O_TRUNC, data, fsync)
}

// writeSynced writes data to path (created with mode 0600, opened with
// flag besides), synced with fsync.
func writeSynced(path string, flag int, data []byte, fsync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
