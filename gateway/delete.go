package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// postDelete is POST /v1/clusters/{cluster}/delete: a one-off retention
// deletion through the lifecycle planner and its guard rails, for a token
// of the cluster with the admin scope. Database hosts' tokens (push,
// fetch) are refused.
func (s *Server) postDelete(c *fiber.Ctx) error {
	cluster, err := s.clusterRequest(c, index.ScopeAdmin)
	if err != nil {
		return err
	}
	var req protocol.DeleteRequest
	if err := readJSONBody(c, 64<<10, &req); err != nil {
		return err
	}
	var pol lifecycle.Policy
	switch {
	case req.Retain > 0 && req.Before == "":
		if req.Full {
			pol.RetainFull = req.Retain
		} else {
			pol.RetainBackups = req.Retain
		}
	case req.Retain == 0 && req.Before != "" && !req.Full:
		if err := protocol.ValidateBackupName(req.Before); err != nil {
			return apiErr(protocol.CodeInvalidName, "%v", err)
		}
		if _, err := s.committedBackup(cluster, req.Before); err != nil {
			return err
		}
		pol.KeepFrom = req.Before
	default:
		return apiErr(protocol.CodeBadRequest, "say either retain (a count of at least 1, with full for full backups) or before (a backup name)")
	}
	res, err := s.Lifecycle(context.Background(), apply.Options{Cluster: cluster, Apply: req.Confirm, Retention: &pol}, time.Now())
	if errors.Is(err, apply.ErrBusy) {
		return apiErr(protocol.CodeUnavailable, "%v", err)
	}
	if err != nil && len(res.Plan.Clusters) == 0 {
		return &apiError{Code: protocol.CodeUnavailable, Message: "planning the deletion failed", Err: err}
	}
	cp := res.Plan.Clusters[0]
	if cp.Error != "" {
		return &apiError{Code: protocol.CodeUnavailable, Message: "planning the deletion failed: " + cp.Error, Err: err}
	}
	out := protocol.DeleteResult{Cluster: cluster, Applied: req.Confirm && !cp.Refused, Backups: cp.DeletedBackups,
		WALFiles: cp.WALDeleted, WALBytes: cp.WALDeletedBytes, Warnings: cp.Warnings, Errors: res.Done.Errors,
		ObjectsDeleted: res.Done.Deleted}
	if out.Backups == nil {
		out.Backups = []string{}
	}
	for _, r := range cp.Retained {
		out.Retained = append(out.Retained, protocol.RetainedBackup{Name: r.Name, Reasons: r.Reasons})
	}
	for _, t := range slices.Sorted(maps.Keys(cp.WALKeptFrom)) {
		switch from := cp.WALKeptFrom[t]; from {
		case "":
			out.WALKeptFrom = append(out.WALKeptFrom, fmt.Sprintf("timeline %d: all", t))
		case "none":
			out.WALKeptFrom = append(out.WALKeptFrom, fmt.Sprintf("timeline %d: none", t))
		default:
			out.WALKeptFrom = append(out.WALKeptFrom, fmt.Sprintf("timeline %d: from %s", t, from))
		}
	}
	for _, name := range cp.DeletedBackups {
		if b, err := s.catalog.Backup(cluster, name); err == nil {
			out.BackupBytes += b.StoredSize() * int64(len(b.Holders()))
		}
	}
	for _, r := range res.Plan.Refusals {
		out.RefusedBecause = r.Reason
	}
	tok, _ := c.Locals(localToken).(string)
	s.log.Info("retention deletion requested", "cluster", cluster, "token", tok, "retain", req.Retain, "full", req.Full,
		"before", req.Before, "confirm", req.Confirm, "backups", len(out.Backups), "wal_files", out.WALFiles, "refused", out.RefusedBecause)
	var refusal error
	switch {
	case req.Confirm && out.RefusedBecause != "":
		refusal = apiErr(protocol.CodeConflict, "nothing was deleted: %s", out.RefusedBecause)
	case req.Confirm && res.Done.Failures > 0:
		refusal = apiErr(protocol.CodeUnavailable, "%d deletions failed (the first: %s); what failed stays and the next run finishes it", res.Done.Failures, res.Done.Errors[0])
	}
	if req.Confirm {
		s.auditAct(c, "delete", fmt.Sprintf("%s: %d backups, %d WAL files", cluster, len(out.Backups), out.WALFiles), refusal)
	}
	if refusal != nil {
		return refusal
	}
	return c.JSON(out)
}
