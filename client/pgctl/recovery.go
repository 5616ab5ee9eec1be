package pgctl

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RecoveryState is what a running server says of its archive recovery.
type RecoveryState struct {
	InRecovery bool
	// Pause is "not paused", "pause requested" or "paused"
	// (pg_get_wal_replay_pause_state); PostgreSQL 13 knows only "paused"
	// and "not paused".
	Pause string
	// ReplayLSN is the last WAL location replayed, "" before any.
	ReplayLSN string
}

// PauseRequested reports a recovery paused or about to pause (what
// pg_is_wal_replay_paused answers).
func (s RecoveryState) PauseRequested() bool { return s.InRecovery && s.Pause != "not paused" }

// Paused reports a recovery that stands still at a pause.
func (s RecoveryState) Paused() bool { return s.InRecovery && s.Pause == "paused" }

// ReadRecoveryState asks the server on conn where its recovery stands.
func ReadRecoveryState(ctx context.Context, conn *pgx.Conn) (RecoveryState, error) {
	pause := `CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END`
	if major, err := serverMajor(conn); err != nil {
		return RecoveryState{}, err
	} else if major >= 14 {
		pause = `pg_get_wal_replay_pause_state()`
	}
	var s RecoveryState
	var pauseState, lsn *string
	err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN `+pause+
		` ELSE 'not paused' END, pg_last_wal_replay_lsn()::text`).Scan(&s.InRecovery, &pauseState, &lsn)
	if err != nil {
		return RecoveryState{}, err
	}
	if pauseState != nil {
		s.Pause = *pauseState
	}
	if lsn != nil {
		s.ReplayLSN = *lsn
	}
	return s, nil
}

// serverMajor is the major version the server reported at connection.
func serverMajor(conn *pgx.Conn) (int, error) {
	v := conn.PgConn().ParameterStatus("server_version")
	digits, _, _ := strings.Cut(v, ".")
	digits, _, _ = strings.Cut(digits, " ")
	major, err := strconv.Atoi(digits)
	if err != nil {
		return 0, fmt.Errorf("the server reports an unexpected version %q", v)
	}
	return major, nil
}
