package client

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/gateway/protocol"
)

// Health asks the gateway for the cluster's health (wal-verify).
func (c *Client) Health(ctx context.Context) (protocol.ClusterHealth, error) {
	var h protocol.ClusterHealth
	resp, err := c.do(ctx, request{op: "wal-verify", method: http.MethodGet, path: protocol.HealthPath(c.cfg.Cluster)})
	if err != nil {
		return h, err
	}
	return h, decodeJSON(resp, "wal-verify", &h)
}

// HostWAL is what the database host knows that the gateway cannot.
type HostWAL struct {
	// Current is the segment PostgreSQL is writing now.
	Current string `json:"current"`
	// Pending are the segments waiting for archive_command (their .ready
	// files in pg_wal/archive_status), sorted.
	Pending []string `json:"pending"`
	// FailedCount, LastFailed: pg_stat_archiver's failures.
	FailedCount int64  `json:"failed_count"`
	LastFailed  string `json:"last_failed,omitempty"`
}

// ReadHostWAL asks the local PostgreSQL (connString, or the PG* variables)
// for its WAL position and archiver state, and lists the segments still
// waiting to be archived in its pg_wal/archive_status.
func ReadHostWAL(ctx context.Context, connString string) (HostWAL, error) {
	var h HostWAL
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return h, fmt.Errorf("connecting to PostgreSQL (set PGHOST, PGPORT, PGUSER as for psql): %w", err)
	}
	defer conn.Close(context.Background())
	var dataDir string
	var inRecovery bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('data_directory')`).Scan(&inRecovery, &dataDir); err != nil {
		return h, err
	}
	if !inRecovery {
		if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`).Scan(&h.Current); err != nil {
			return h, err
		}
	}
	var lastFailed *string
	if err := conn.QueryRow(ctx, `SELECT failed_count, last_failed_wal FROM pg_stat_archiver`).Scan(&h.FailedCount, &lastFailed); err != nil {
		return h, err
	}
	if lastFailed != nil {
		h.LastFailed = *lastFailed
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "pg_wal", "archive_status"))
	if err == nil {
		for _, e := range entries {
			if name, ok := strings.CutSuffix(e.Name(), ".ready"); ok && len(name) == 24 {
				h.Pending = append(h.Pending, name)
			}
		}
		sort.Strings(h.Pending)
	}
	return h, nil
}

// KeyUsage asks the gateway which keys the cluster's archive is sealed
// with (wal-verify --keys).
func (c *Client) KeyUsage(ctx context.Context) (protocol.KeyUsage, error) {
	var u protocol.KeyUsage
	resp, err := c.do(ctx, request{op: "wal-verify --keys", method: http.MethodGet, path: protocol.KeysPath(c.cfg.Cluster)})
	if err != nil {
		return u, err
	}
	return u, decodeJSON(resp, "wal-verify --keys", &u)
}

// KeyRole says what a key fingerprint is to this client: "current"
// (WALGATE_ENCRYPTION_KEY), "old N" (the Nth of
// WALGATE_ENCRYPTION_OLD_KEYS), or "" (not configured here).
func (c *Client) KeyRole(fingerprint string) string {
	if c.cfg.Key != nil && c.cfg.Key.Fingerprint() == fingerprint {
		return "current"
	}
	for i, k := range c.cfg.OldKeys {
		if k.Fingerprint() == fingerprint {
			return fmt.Sprintf("old %d", i+1)
		}
	}
	return ""
}

// OldKeyFingerprints lists the fingerprints of WALGATE_ENCRYPTION_OLD_KEYS
// in order.
func (c *Client) OldKeyFingerprints() []string {
	out := make([]string, len(c.cfg.OldKeys))
	for i, k := range c.cfg.OldKeys {
		out[i] = k.Fingerprint()
	}
	return out
}
