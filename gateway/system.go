package gateway

import (
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgname"
)

// A cluster name belongs to one PostgreSQL system: the first system
// identifier a WAL push (from the segment's page header, read by the
// client) or a backup commit (from the sentinel) carries is recorded in
// the catalog, and pushes and commits of another system are refused. A
// server after pg_upgrade or a new initdb is a new system, whose WAL
// names start again and would mix with the old system's history under one
// name. An unknown identifier (a history file, a WAL-G client) is never a
// mismatch.

// systemHeader reads Walgate-System-Identifier of a request: 0 when absent.
// On a WAL push it goes only with a segment or partial segment.
func systemHeader(c *fiber.Ctx, walName string) (uint64, error) {
	v := c.Get(protocol.HeaderSystemIdentifier)
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, apiErr(protocol.CodeBadRequest, "header %s must be a PostgreSQL system identifier (a non-zero decimal number)", protocol.HeaderSystemIdentifier)
	}
	if walName != "" {
		if f, _ := pgname.ParseWALFile(walName); f.Kind != pgname.Segment && f.Kind != pgname.Partial {
			return 0, apiErr(protocol.CodeBadRequest, "header %s goes only with a WAL segment (its page header names the system)", protocol.HeaderSystemIdentifier)
		}
	}
	return id, nil
}

// claimSystem checks that id (0: unknown, always accepted) is the system
// of cluster, recording it when the cluster has none recorded yet; what
// names the object that carries it (e.g. "WAL 0000…").
func (s *Server) claimSystem(cluster string, id uint64, what string) error {
	if id == 0 {
		return nil
	}
	rec, err := s.catalog.ClaimSystem(cluster, index.ClusterSystem{SystemIdentifier: id, Since: time.Now().UTC(), Source: what})
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	if rec.SystemIdentifier != id {
		return systemConflict(cluster, rec, id, what)
	}
	return nil
}

// checkSystem is claimSystem without recording: for a backup's begin,
// which stores nothing yet.
func (s *Server) checkSystem(cluster string, id uint64, what string) error {
	if id == 0 {
		return nil
	}
	rec, err := s.catalog.System(cluster)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return nil
	case err != nil:
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	case rec.SystemIdentifier != id:
		return systemConflict(cluster, rec, id, what)
	}
	return nil
}

func systemConflict(cluster string, rec index.ClusterSystem, id uint64, what string) error {
	return apiErr(protocol.CodeConflict,
		"%s is of PostgreSQL system %d, but cluster name %s belongs to system %d (since %s, %s); nothing was stored. "+
			"A server after pg_upgrade or a new initdb is a new system: archive it under a new cluster name (walgate token add NEWNAME, then set the new token in its archive_command and backup environment), and keep %s for the old system's history",
		what, id, cluster, rec.SystemIdentifier, rec.Since.Format(time.RFC3339), rec.Source, cluster)
}
