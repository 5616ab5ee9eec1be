package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/walgate/walgate/index/pgname"
)

// archiveEnd is the newest segment the archive held when a drill began,
// on the newest timeline: a recovery without a target must replay into it.
type archiveEnd struct {
	segment pgname.WALFile
}

// readArchiveEnd asks the gateway for the newest archived segment. ""
// (nothing archived yet) gives a zero archiveEnd, which checks nothing.
func (d *drill) readArchiveEnd(ctx context.Context) (archiveEnd, error) {
	h, err := d.c.Health(ctx)
	if err != nil {
		return archiveEnd{}, fmt.Errorf("asking the gateway for the newest archived WAL failed: %w", err)
	}
	if h.LastSegment == "" {
		return archiveEnd{}, nil
	}
	f, err := pgname.ParseWALFile(h.LastSegment)
	if err != nil {
		return archiveEnd{}, fmt.Errorf("the gateway names %q as the newest segment: %w", h.LastSegment, err)
	}
	return archiveEnd{segment: f}, nil
}

// checkRecoveredToEnd fails a drill whose recovery ended early: on an
// older timeline than the archive's newest, or in a segment before the
// newest one archived when the drill began. Recovery then stopped at a file
// it could not get, and a real restore would lose what follows.
func (d *drill) checkRecoveredToEnd(ctx context.Context, end archiveEnd) error {
	if end.segment.Name == "" {
		return nil
	}
	conn, err := d.connect(ctx, "postgres", nil)
	if err != nil {
		return fmt.Errorf("connecting after recovery failed: %w", err)
	}
	defer conn.Close(context.Background())
	var seg string
	var tli uint32
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_last_wal_replay_lsn()), (SELECT timeline_id FROM pg_control_checkpoint())`).Scan(&seg, &tli); err != nil {
		return fmt.Errorf("reading where recovery ended failed: %w", err)
	}
	// The promotion made a new timeline; its history file names the
	// timeline recovery replayed.
	on := pgname.Timeline(tli)
	if hist, err := os.ReadFile(filepath.Join(d.data, "pg_wal", fmt.Sprintf("%08X.history", tli))); err == nil {
		if es, err := pgname.ParseHistory(string(hist), pgname.Timeline(tli)); err == nil && len(es) > 0 {
			on = es[len(es)-1].Parent
		}
	}
	newest := end.segment
	switch {
	case on < newest.Timeline:
		return fmt.Errorf("recovery ended early: it replayed timeline %d, but the archive holds timeline %d (up to %s); a timeline history file could not be restored (the server log says which)",
			on, newest.Timeline, newest.Name)
	case on == newest.Timeline && strings.Compare(seg[8:], newest.Name[8:]) < 0:
		return fmt.Errorf("recovery ended early: it replayed up to %s (segment %08X%s), but the archive holds WAL up to %s; the next segment is missing from the archive or could not be restored (wal-verify and the server log say which)",
			d.rep.RecoveryEndLSN, uint32(on), seg[8:], newest.Name)
	}
	return nil
}
