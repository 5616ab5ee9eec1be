package client

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/protocol"
)

// deltaBase is what a delta backup is built on.
type deltaBase struct {
	parent   protocol.BackupSummary
	fullName string               // the full backup at the root of the chain
	depth    int                  // this backup's DeltaCount
	files    map[string]bool      // regular files the parent holds
	mtimes   map[string]time.Time // their modification times, as the parent recorded them
}

// chooseParent picks the backup a delta would be taken from, before the
// backup starts. nil means a full backup, with the reason when a delta was
// configured or asked for.
func (c *Client) chooseParent(ctx context.Context, opts BackupPushOptions) (*protocol.BackupSummary, string, error) {
	switch {
	case opts.Mode == BackupFull:
		return nil, "", nil
	case opts.Mode == BackupAuto && opts.DeltaMaxSteps <= 0:
		return nil, "", nil
	}
	list, err := c.ListBackups(ctx)
	if err != nil {
		return nil, "", err
	}
	var parent *protocol.BackupSummary
	for i := range list {
		b := &list[i]
		if opts.DeltaOrigin == DeltaFromLatestFull && b.Kind != "full" {
			continue
		}
		if parent == nil || b.FinishTime.After(parent.FinishTime) {
			parent = b
		}
	}
	if parent == nil {
		why := "no earlier backup"
		if opts.DeltaOrigin == DeltaFromLatestFull {
			why = "no earlier full backup"
		}
		if opts.Mode == BackupDelta {
			return nil, "", &Error{Kind: ErrRejected, Op: "backup-push", Message: "cannot take a delta backup: " + why + " in the archive of cluster " + c.cfg.Cluster + "; run without --delta for a full backup"}
		}
		return nil, why, nil
	}
	if opts.Mode == BackupAuto && parent.DeltaCount+1 > opts.DeltaMaxSteps {
		return nil, fmt.Sprintf("the chain from %s already has %d delta(s), the most WALGATE_DELTA_MAX_STEPS=%d allows", parent.Name, parent.DeltaCount, opts.DeltaMaxSteps), nil
	}
	return parent, "", nil
}

// loadDeltaBase checks that parent can serve as the base of the backup
// that sess started and reads its file list. A nil base, with the reason,
// means the parent cannot be used and a full backup is due.
func (c *Client) loadDeltaBase(ctx context.Context, parent protocol.BackupSummary, sess *backupSession) (*deltaBase, string, error) {
	if parent.SystemIdentifier != 0 && parent.SystemIdentifier != sess.sysID {
		return nil, fmt.Sprintf("the latest backup %s is of another database system (system identifier %d, this server has %d)", parent.Name, parent.SystemIdentifier, sess.sysID), nil
	}
	if parent.FinishLSN > uint64(sess.startLSN) {
		return nil, fmt.Sprintf("the latest backup %s ends at %s, after this backup's start %s (was the cluster restored from an older backup?)", parent.Name, basebackup.LSN(parent.FinishLSN), sess.startLSN), nil
	}
	d, err := c.Backup(ctx, parent.Name)
	if err != nil {
		return nil, "", err
	}
	want, ok := d.Files["files_metadata.json"]
	if !ok {
		return nil, fmt.Sprintf("the latest backup %s has no files_metadata.json", parent.Name), nil
	}
	body, err := c.OpenBackupFile(ctx, parent.Name, "files_metadata.json", want)
	if err != nil {
		return nil, "", err
	}
	fm, err := basebackup.ParseFilesMetadata(body)
	if err == nil {
		_, err = io.Copy(io.Discard, body) // the size and hash check at the end
	}
	body.Close()
	if err != nil {
		return nil, "", &Error{Kind: ErrIntegrity, Op: "backup-push", Message: "reading files_metadata.json of " + parent.Name + " failed", Err: err}
	}
	b := &deltaBase{parent: parent, fullName: parent.DeltaFullName, depth: parent.DeltaCount + 1, files: make(map[string]bool, len(fm.Files))}
	if parent.Kind == "full" || b.fullName == "" {
		b.fullName, b.depth = parent.Name, 1
	}
	for m := range fm.Files {
		b.files[m] = true
	}
	b.mtimes = parentMTimes(fm)
	return b, "", nil
}

// corruptText summarises page checksum failures for a message.
func corruptText(corrupt map[string]basebackup.CorruptBlocks) string {
	members := make([]string, 0, len(corrupt))
	pages := 0
	for m, cb := range corrupt {
		members = append(members, m)
		pages += cb.CorruptBlocksCount
	}
	sort.Strings(members)
	var parts []string
	for _, m := range members[:min(5, len(members))] {
		parts = append(parts, fmt.Sprintf("%s blocks %v", m, corrupt[m].SomeCorruptBlocks))
	}
	more := ""
	if len(members) > 5 {
		more = fmt.Sprintf(" and %d more files", len(members)-5)
	}
	return fmt.Sprintf("%d page(s) in %d file(s): %s%s", pages, len(members), strings.Join(parts, "; "), more)
}
