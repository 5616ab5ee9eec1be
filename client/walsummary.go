package client

import (
	"context"
	"fmt"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/index/pgname"
)

// summaryWait bounds the wait for PostgreSQL's WAL summarizer to reach a
// backup's start.
const summaryWait = 30 * time.Second

// summaryChanges reads, from the WAL summaries of PostgreSQL 17 and later
// (summarize_wal = on), the blocks changed on timeline tli between from
// (the parent backup's start) and to (this backup's start), as
// PostgreSQL's own incremental backups do. Unlike a scan of page LSNs,
// this reads no unchanged page and sees the files CREATE DATABASE ...
// STRATEGY FILE_COPY copies with their template's old page LSNs. A nil
// result with a reason means the summaries cannot serve (off, not kept
// back to the parent, another timeline, the summarizer behind) and the
// page scan is due.
func summaryChanges(ctx context.Context, sess *backupSession, parentTLI uint32, from, to pgname.LSN) (*basebackup.BlockChanges, string, error) {
	if pgMajor(sess.pgVersion) < 17 {
		return nil, "", nil
	}
	conn := sess.conn
	var on string
	if err := conn.QueryRow(ctx, `SELECT current_setting('summarize_wal')`).Scan(&on); err != nil {
		return nil, "", fmt.Errorf("reading summarize_wal: %w", err)
	}
	if on != "on" {
		return nil, "", nil
	}
	w, err := pgname.ParseWALFile(sess.startWAL)
	if err != nil {
		return nil, "", err
	}
	tli := uint32(w.Timeline)
	if parentTLI != tli {
		return nil, fmt.Sprintf("the parent backup is on timeline %d, this one on %d", parentTLI, tli), nil
	}
	// pg_backup_start's checkpoint ends a summary at its redo point, the
	// backup's start; wait for the summarizer to write it.
	deadline := time.Now().Add(summaryWait)
	for {
		var summarized string
		if err := conn.QueryRow(ctx, `SELECT summarized_lsn::text FROM pg_get_wal_summarizer_state()`).Scan(&summarized); err != nil {
			return nil, "", fmt.Errorf("reading the WAL summarizer's state: %w", err)
		}
		lsn, err := pgname.ParseLSN(summarized)
		if err != nil {
			return nil, "", err
		}
		if lsn >= to {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Sprintf("the WAL summarizer reached only %s after %s, not this backup's start %s", lsn, summaryWait, to), nil
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The summaries that overlap from..to on the timeline.
	const overlap = `s.tli = $1 AND s.end_lsn > $2::pg_lsn AND s.start_lsn < $3::pg_lsn`
	rows, err := conn.Query(ctx, `SELECT s.start_lsn::text, s.end_lsn::text FROM pg_available_wal_summaries() s
		WHERE `+overlap+` ORDER BY s.start_lsn`, tli, from.String(), to.String())
	if err != nil {
		return nil, "", fmt.Errorf("listing WAL summaries: %w", err)
	}
	covered, first := from, true
	for rows.Next() {
		var s, e string
		if err := rows.Scan(&s, &e); err != nil {
			rows.Close()
			return nil, "", err
		}
		start, err1 := pgname.ParseLSN(s)
		end, err2 := pgname.ParseLSN(e)
		if err1 != nil || err2 != nil {
			rows.Close()
			return nil, "", fmt.Errorf("WAL summary %s-%s: bad LSN", s, e)
		}
		if start > covered {
			rows.Close()
			if first {
				return nil, fmt.Sprintf("the WAL summaries kept begin at %s, after the parent backup's start %s (summarize_wal was off, or wal_summary_keep_time removed them)", start, from), nil
			}
			return nil, fmt.Sprintf("the WAL summaries kept have a gap from %s to %s", covered, start), nil
		}
		covered, first = max(covered, end), false
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing WAL summaries: %w", err)
	}
	if covered < to {
		return nil, fmt.Sprintf("the WAL summaries kept end at %s, before this backup's start %s", covered, to), nil
	}
	changes := basebackup.NewBlockChanges()
	rows, err = conn.Query(ctx, `SELECT c.relfilenode::bigint, c.reltablespace::bigint, c.reldatabase::bigint,
		c.relforknumber::int, c.relblocknumber::bigint, c.is_limit_block
		FROM pg_available_wal_summaries() s, pg_wal_summary_contents(s.tli, s.start_lsn, s.end_lsn) c
		WHERE `+overlap, tli, from.String(), to.String())
	if err != nil {
		return nil, "", fmt.Errorf("reading WAL summaries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rel, spc, db, block int64
		var fork int
		var limit bool
		if err := rows.Scan(&rel, &spc, &db, &fork, &block, &limit); err != nil {
			return nil, "", fmt.Errorf("reading WAL summaries: %w", err)
		}
		changes.Add(uint32(rel), uint32(spc), uint32(db), fork, uint32(block), limit)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading WAL summaries: %w", err)
	}
	return changes, "", nil
}
