package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/lifecycle/apply"
)

// A base backup is a session: begin, upload its objects (in any order, in
// parallel), commit with the sentinel. Until the commit it is invisible to
// list and fetch; an aborted or abandoned session's objects are deleted.
// Objects go to WAL-G's layout:
//   <cluster>/basebackups_005/<name>/<file>
//   <cluster>/basebackups_005/<name>_backup_stop_sentinel.json   (last)

// sessions tracks uploads in flight per backup so that the janitor never
// removes a session that is still receiving data.
type sessions struct {
	mu       sync.Mutex
	inflight map[string]int
}

func (s *sessions) enter(cluster, name string) func() {
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = map[string]int{}
	}
	k := cluster + "/" + name
	s.inflight[k]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.inflight[k]--
		if s.inflight[k] == 0 {
			delete(s.inflight, k)
		}
		s.mu.Unlock()
	}
}

func backupTarget(c *fiber.Ctx) (cluster, name string, err error) {
	cluster, name = c.Params("cluster"), c.Params("name")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return "", "", apiErr(protocol.CodeInvalidName, "%v", err)
	}
	if name != protocol.Latest || c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
		if err := protocol.ValidateBackupName(name); err != nil {
			return "", "", apiErr(protocol.CodeInvalidName, "%v", err)
		}
	}
	return cluster, name, nil
}

// backupRequest checks a backup route's parameters (and, with withFile,
// the object name) and the token's right to act on the cluster.
func (s *Server) backupRequest(c *fiber.Ctx, scope index.Scope, withFile bool) (cluster, name, file string, tok index.Token, err error) {
	if cluster, name, err = backupTarget(c); err != nil {
		return
	}
	if withFile {
		file = c.Params("*")
		if verr := protocol.ValidateBackupFile(file); verr != nil {
			err = apiErr(protocol.CodeInvalidName, "%v", verr)
			return
		}
	}
	tok, err = s.authorize(c, cluster, scope)
	return
}

// clusterRequest checks a cluster route's parameter and the token's right
// to act on it.
func (s *Server) clusterRequest(c *fiber.Ctx, scope index.Scope) (string, error) {
	cluster := c.Params("cluster")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return "", apiErr(protocol.CodeInvalidName, "%v", err)
	}
	_, err := s.authorize(c, cluster, scope)
	return cluster, err
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openSession loads an open backup and checks the request's session.
func (s *Server) openSession(c *fiber.Ctx, cluster, name string) (index.Backup, error) {
	b, err := s.catalog.Backup(cluster, name)
	if errors.Is(err, index.ErrNotFound) {
		return b, apiErr(protocol.CodeNotFound, "no backup %s is being uploaded for cluster %s (begin it first, or it was aborted or abandoned)", name, cluster)
	}
	if err != nil {
		return b, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	if b.State != index.BackupOpen {
		return b, apiErr(protocol.CodeConflict, "backup %s is already committed", name)
	}
	if c.Get(protocol.HeaderBackupSession) != b.Session {
		return b, apiErr(protocol.CodeConflict, "backup %s belongs to another upload session", name)
	}
	return b, nil
}

// beginBackup is POST /v1/clusters/{cluster}/backups/{name}.
func (s *Server) beginBackup(c *fiber.Ctx) error {
	cluster, name, _, tok, err := s.backupRequest(c, index.ScopePush, false)
	if err != nil {
		return err
	}
	if id, err := systemHeader(c, ""); err != nil {
		return err
	} else if err := s.checkSystem(cluster, id, "backup "+name); err != nil {
		return err
	}
	g, err := s.stores.GroupFor(cluster)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: err.Error(), Err: err}
	}
	now := time.Now().UTC()
	b := index.Backup{Name: name, State: index.BackupOpen, Session: newSessionID(), Backend: g.Primary(),
		Begun: now, LastActivity: now, Files: map[string]index.BackupFile{}, TokenID: tok.ID}
	if err := s.catalog.BeginBackup(cluster, b); errors.Is(err, index.ErrExists) {
		return apiErr(protocol.CodeConflict, "a backup named %s exists for cluster %s (committed or still uploading); backup names come from the start WAL position and cannot repeat", name, cluster)
	} else if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	s.log.Info("backup begun", "cluster", cluster, "backup", name, "token", tok.ID)
	c.Status(fiber.StatusCreated)
	return c.JSON(protocol.BeginBackupResult{Name: name, Session: b.Session})
}

// putBackupFile is PUT /v1/clusters/{cluster}/backups/{name}/files/{file}.
// The body may be chunked (length unknown); when Walgate-Content-Sha256
// is sent it is checked. The answer carries the SHA-256 and size stored,
// which the client compares and quotes again at commit.
func (s *Server) putBackupFile(c *fiber.Ctx) error {
	cluster, name, file, _, err := s.backupRequest(c, index.ScopePush, true)
	if err != nil {
		return err
	}
	done := s.sessions.enter(cluster, name)
	defer done()
	b, err := s.openSession(c, cluster, name)
	if err != nil {
		return err
	}
	comp, enc := c.Get(protocol.HeaderCompression), c.Get(protocol.HeaderEncryption)
	if comp != protocol.FileCompression(file) {
		return apiErr(protocol.CodeBadRequest, "header %s is %q but the object name %s implies %s", protocol.HeaderCompression, comp, file, protocol.FileCompression(file))
	}
	if enc != protocol.EncryptionNone && enc != protocol.EncryptionLibsodium {
		return apiErr(protocol.CodeBadRequest, "header %s must be none or libsodium", protocol.HeaderEncryption)
	}
	if strings.HasSuffix(file, ".json") && enc != protocol.EncryptionNone {
		return apiErr(protocol.CodeBadRequest, "backup metadata (%s) is stored as plain JSON, as WAL-G does", file)
	}
	keyFP, err := keyFingerprintHeader(c, enc)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(file, ".json") {
		if err := s.checkEncryptionPolicy(cluster, file+" of "+name, enc); err != nil {
			return err
		}
	}
	body := &ingestReader{r: c.Context().RequestBodyStream(), conn: c.Context().Conn(), idle: s.cfg.Limits.IdleTimeout,
		declared: int64(c.Request().Header.ContentLength()), max: s.cfg.Limits.MaxBackupObjectBytes, hash: sha256.New()}
	if body.declared < 0 {
		body.declared = -1
	} else if body.declared > body.max {
		return apiErr(protocol.CodeTooLarge, "body of %d bytes exceeds limits.max_backup_object_bytes (%d)", body.declared, body.max)
	}
	if h := c.Get(protocol.HeaderContentSHA256); h != "" {
		if body.want, err = hex.DecodeString(h); err != nil || len(body.want) != sha256.Size {
			return apiErr(protocol.CodeBadRequest, "header %s must be the 64-hex SHA-256 of the body", protocol.HeaderContentSHA256)
		}
	}
	g, err := s.stores.GroupFor(cluster)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: err.Error(), Err: err}
	}
	key := layout.BackupKey(cluster, name, file)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := s.stores.PutObject(ctx, g, key, body, body.declared, backends.PutOptions{Metadata: layout.WithKeyFingerprint(layout.BackupFileMetadata(cluster, name, file, comp, enc), keyFP)})
	if err != nil {
		if body.err != nil {
			return body.failure(body.err)
		}
		return storeFailure(g.Name(), err, "abort the backup and retry")
	}
	c.Locals(localBytes, w.Info.Size)
	rec := index.BackupFile{Key: key, Size: w.Info.Size, SHA256: hex.EncodeToString(body.hash.Sum(nil)), Compression: comp, Encryption: enc, KeyFingerprint: keyFP, Backends: w.Held}
	err = s.catalog.UpdateBackup(cluster, name, func(cur *index.Backup) error {
		if cur.State != index.BackupOpen || cur.Session != b.Session {
			return apiErr(protocol.CodeConflict, "backup %s was committed or aborted during the upload", name)
		}
		cur.Files[file] = rec
		cur.LastActivity = time.Now().UTC()
		return nil
	})
	if err != nil {
		// The session is gone: the object belongs to nobody.
		s.stores.DeleteEverywhere(cluster, key, w.Held)
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		if errors.Is(err, index.ErrNotFound) {
			return apiErr(protocol.CodeNotFound, "backup %s was aborted or abandoned during the upload", name)
		}
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	c.Status(fiber.StatusCreated)
	return c.JSON(protocol.BackupFile{Size: rec.Size, SHA256: rec.SHA256, Compression: comp, Encryption: enc, KeyFingerprint: keyFP})
}

// commitBackup is POST /v1/clusters/{cluster}/backups/{name}/commit.
func (s *Server) commitBackup(c *fiber.Ctx) error {
	cluster, name, _, tok, err := s.backupRequest(c, index.ScopePush, false)
	if err != nil {
		return err
	}
	done := s.sessions.enter(cluster, name)
	defer done()
	b, err := s.openSession(c, cluster, name)
	if err != nil {
		return err
	}
	var req protocol.CommitBackup
	if err := readJSONBody(c, 16<<20, &req); err != nil {
		return err
	}
	var sf layout.Sentinel
	if err := json.Unmarshal(req.Sentinel, &sf); err != nil || sf.Check() != nil {
		return apiErr(protocol.CodeBadRequest, "the sentinel must be JSON with LSN, FinishLSN and FinishTime")
	}
	if err := s.checkDeltaLink(cluster, name, sf); err != nil {
		return err
	}
	if err := s.claimSystem(cluster, sf.SystemIdentifier, "backup "+name); err != nil {
		return err
	}
	if err := compareFiles(b.Files, req.Files); err != nil {
		return err
	}
	if _, ok := layout.FindFile(b.Files, layout.ControlFile); !ok {
		return apiErr(protocol.CodeBadRequest, "backup %s has no tar_partitions/pg_control.tar*: it cannot be restored", name)
	}
	g, err := s.stores.GroupFor(cluster)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: err.Error(), Err: err}
	}
	// The sentinel goes only where every part is: a backend shows a
	// backup only when all of it is there.
	complete := stores.CompleteHolders(g, b)
	if complete.Len() < g.Ack() {
		return apiErr(protocol.CodeUnavailable, "the parts of backup %s landed on different backends while one was failing, so no %d backends hold all of them: abort the backup and take it again", name, g.Ack())
	}
	key := layout.SentinelKey(cluster, name)
	sentinelMeta := layout.SentinelMetadata(cluster, name)
	sentinelSum := sha256.Sum256(req.Sentinel)
	w, err := s.stores.PutObject(context.Background(), complete, key, strings.NewReader(string(req.Sentinel)), int64(len(req.Sentinel)),
		backends.PutOptions{Metadata: sentinelMeta})
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "storing the sentinel failed; the backup is not committed", Err: err}
	}
	info := w.Info
	var committed index.Backup
	err = s.catalog.UpdateBackupCopies(cluster, name, func(cur *index.Backup) ([]index.Copy, error) {
		if cur.State != index.BackupOpen || cur.Session != b.Session {
			return nil, apiErr(protocol.CodeConflict, "backup %s was committed or aborted meanwhile", name)
		}
		cur.State = index.BackupCommitted
		cur.Backends = w.Held
		cur.Committed = time.Now().UTC()
		cur.SentinelKey, cur.SentinelSize = key, info.Size
		cur.Info = index.BackupInfoOf(name, sf)
		committed = *cur
		sentinel := index.Copy{Cluster: cluster, Kind: index.CopySentinel, Name: name, Key: key, Size: info.Size,
			SHA256: hex.EncodeToString(sentinelSum[:]), Metadata: sentinelMeta}
		return stores.BackupCopies(g, *cur, sentinel), nil
	})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		// The sentinel makes a backup visible to a rebuild: without the
		// commit it must go.
		s.removeUncommitted(cluster, key, w.Held, err)
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog commit failed; the backup is not committed", Err: err}
	}
	for _, b := range g.Names() {
		s.stores.Wake(b)
	}
	s.log.Info("backup committed", "cluster", cluster, "backup", name, "token", tok.ID, "objects", len(committed.Files), "bytes", committed.StoredSize())
	return c.JSON(fleet.BackupSummary(committed))
}

// checkDeltaLink refuses a commit whose name and sentinel disagree about
// the parent, or whose parent is not a committed backup of the cluster: a
// delta without its chain could never be restored.
func (s *Server) checkDeltaLink(cluster, name string, sf layout.Sentinel) error {
	_, nameParent, isDelta := strings.Cut(name, "_D_")
	switch {
	case !isDelta && sf.DeltaFrom == "":
		return nil
	case !isDelta:
		return apiErr(protocol.CodeBadRequest, "the sentinel names parent %s but the backup name %s has no _D_ part", sf.DeltaFrom, name)
	case sf.DeltaFrom == "":
		return apiErr(protocol.CodeBadRequest, "backup %s is named as a delta but its sentinel has no DeltaFrom", name)
	case !strings.HasPrefix(sf.DeltaFrom, layout.BackupPrefix+nameParent):
		return apiErr(protocol.CodeBadRequest, "backup %s is named as a delta of %s but its sentinel names parent %s", name, layout.BackupPrefix+nameParent, sf.DeltaFrom)
	case sf.DeltaFullName == "" || sf.DeltaCount < 1:
		return apiErr(protocol.CodeBadRequest, "the sentinel of delta %s lacks DeltaFullName or DeltaCount", name)
	}
	parent, err := s.catalog.Backup(cluster, sf.DeltaFrom)
	if errors.Is(err, index.ErrNotFound) || err == nil && parent.State != index.BackupCommitted {
		return apiErr(protocol.CodeConflict, "backup %s is a delta of %s, which is not a committed backup of cluster %s: take a full backup", name, sf.DeltaFrom, cluster)
	}
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	return nil
}

// compareFiles checks that the client's list of uploaded objects is the
// gateway's, hash for hash.
func compareFiles(have map[string]index.BackupFile, claimed map[string]protocol.BackupFile) error {
	var problems []string
	for f, c := range claimed {
		h, ok := have[f]
		switch {
		case !ok:
			problems = append(problems, f+": never received")
		case h.SHA256 != c.SHA256 || h.Size != c.Size:
			problems = append(problems, fmt.Sprintf("%s: received %d bytes with SHA-256 %.12s, client sent %d with %.12s", f, h.Size, h.SHA256, c.Size, c.SHA256))
		}
	}
	for f := range have {
		if _, ok := claimed[f]; !ok {
			problems = append(problems, f+": received but not in the commit")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return apiErr(protocol.CodeHashMismatch, "the commit does not match what was stored: %s", strings.Join(problems, "; "))
	}
	return nil
}

// readJSONBody decodes a small JSON body without buffering more than max.
func readJSONBody(c *fiber.Ctx, max int64, v any) error {
	r := c.Context().RequestBodyStream()
	if r == nil {
		return apiErr(protocol.CodeBadRequest, "a JSON body is required")
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return apiErr(protocol.CodeBadRequest, "reading the body: %v", err)
	}
	if int64(len(data)) > max {
		return apiErr(protocol.CodeTooLarge, "JSON body above %d bytes", max)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return apiErr(protocol.CodeBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}

// abortBackup is DELETE /v1/clusters/{cluster}/backups/{name} on an open
// backup: its objects are deleted. Committed backups are retention's.
func (s *Server) abortBackup(c *fiber.Ctx) error {
	cluster, name, _, tok, err := s.backupRequest(c, index.ScopePush, false)
	if err != nil {
		return err
	}
	b, err := s.openSession(c, cluster, name)
	if err != nil {
		return err
	}
	if err := s.removeBackup(cluster, b, "aborted by the client (token "+tok.ID+")"); err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "abort failed", Err: err}
	}
	c.Status(fiber.StatusNoContent)
	return nil
}

// removeBackup deletes an open backup: the catalog record first (so no
// upload can add to it), then its objects.
func (s *Server) removeBackup(cluster string, b index.Backup, why string) error {
	if err := s.catalog.DeleteBackup(cluster, b.Name); err != nil {
		return err
	}
	var errs []error
	for f, rec := range b.Files {
		if err := s.stores.DeleteEverywhere(cluster, rec.Key, rec.Holders(b.Backend)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
	}
	s.log.Info("backup removed", "cluster", cluster, "backup", b.Name, "objects", len(b.Files), "why", why)
	return errors.Join(errs...)
}

// sweepSessions removes open backups idle for longer than the session
// timeout and with no upload in flight.
func (s *Server) sweepSessions(now time.Time) {
	open, err := s.catalog.OpenBackups()
	if err != nil {
		s.log.Warn("listing open backups", "err", err)
		return
	}
	for cluster, list := range open {
		for _, b := range list {
			if now.Sub(b.LastActivity) < s.cfg.Limits.BackupSessionTimeout {
				continue
			}
			s.sessions.mu.Lock()
			busy := s.sessions.inflight[cluster+"/"+b.Name] > 0
			s.sessions.mu.Unlock()
			if busy {
				continue
			}
			if err := s.removeBackup(cluster, b, fmt.Sprintf("abandoned: no activity since %s", b.LastActivity.Format(time.RFC3339))); err != nil {
				s.log.Warn("removing abandoned backup", "cluster", cluster, "backup", b.Name, "err", err)
			}
		}
	}
}

// janitor sweeps abandoned sessions until ctx ends, on one gateway of a
// fleet at a time (the "janitor" lease).
func (s *Server) janitor(ctx context.Context) {
	every := max(min(s.cfg.Limits.BackupSessionTimeout/4, time.Minute), 100*time.Millisecond)
	runEvery(ctx, every, func(now time.Time) {
		if s.holdsDuty("janitor", 3*every) {
			s.sweepSessions(now)
		}
	})
}

// lifecycleLoop runs the lifecycle on the configured interval until ctx
// ends, on one gateway of a fleet at a time (the "lifecycle" lease); dry
// runs only log what they would do.
func (s *Server) lifecycleLoop(ctx context.Context) {
	if s.cfg.Lifecycle.Interval <= 0 {
		return
	}
	runEvery(ctx, s.cfg.Lifecycle.Interval, func(now time.Time) {
		if !s.holdsDuty("lifecycle", 3*s.cfg.Lifecycle.Interval) {
			return
		}
		res, err := s.Lifecycle(ctx, apply.Options{Apply: s.cfg.Lifecycle.Apply}, now)
		apply.Log(s.log, res, err)
	})
}

// holdsDuty takes or renews this gateway's lease on a shared duty: the
// holder renews it at each of its runs, and a gateway that stops (or dies)
// hands the duty to another after ttl.
func (s *Server) holdsDuty(duty string, ttl time.Duration) bool {
	held, err := s.catalog.TryLease(duty, s.instance, ttl)
	if err != nil {
		s.log.Warn("catalog unavailable: skipping a scheduled run", "duty", duty, "err", err)
		return false
	}
	if !held {
		s.log.Debug("another gateway holds the duty", "duty", duty)
	}
	return held
}

// runEvery calls fn with the time on every tick of every until ctx ends.
func runEvery(ctx context.Context, every time.Duration, fn func(now time.Time)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(now)
		}
	}
}

// committedBackup resolves a name or LATEST to a committed backup.
func (s *Server) committedBackup(cluster, name string) (index.Backup, error) {
	if name == protocol.Latest {
		list, err := s.catalog.Backups(cluster, index.BackupCommitted)
		if err != nil {
			return index.Backup{}, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
		}
		if len(list) == 0 {
			return index.Backup{}, apiErr(protocol.CodeNotFound, "cluster %s has no committed backup", cluster)
		}
		return list[len(list)-1], nil
	}
	b, err := s.catalog.Backup(cluster, name)
	if errors.Is(err, index.ErrNotFound) || err == nil && b.State != index.BackupCommitted {
		return b, apiErr(protocol.CodeNotFound, "cluster %s has no committed backup %s (see backup-list)", cluster, name)
	}
	if err != nil {
		return b, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	return b, nil
}

// listBackups is GET /v1/clusters/{cluster}/backups: committed backups,
// oldest first by finish time.
func (s *Server) listBackups(c *fiber.Ctx) error {
	cluster, err := s.clusterRequest(c, index.ScopeFetch)
	if err != nil {
		return err
	}
	list, err := s.catalog.Backups(cluster, index.BackupCommitted)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	return c.JSON(s.summaries(list))
}

// getBackup is GET /v1/clusters/{cluster}/backups/{name|LATEST}.
func (s *Server) getBackup(c *fiber.Ctx) error {
	cluster, name, _, _, err := s.backupRequest(c, index.ScopeFetch, false)
	if err != nil {
		return err
	}
	b, err := s.committedBackup(cluster, name)
	if err != nil {
		return err
	}
	rc, err := s.stores.OpenObject(context.Background(), stores.SentinelCopy(cluster, b), b.Holders())
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "reading the sentinel of " + b.Name + " failed", Err: err}
	}
	sentinel, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	rc.Close()
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "reading the sentinel of " + b.Name + " failed", Err: err}
	}
	d := protocol.BackupDetail{BackupSummary: fleet.BackupSummary(b), Sentinel: sentinel, Files: map[string]protocol.BackupFile{}}
	for f, rec := range b.Files {
		d.Files[f] = protocol.BackupFile{Size: rec.Size, SHA256: rec.SHA256, Compression: rec.Compression, Encryption: rec.Encryption, KeyFingerprint: rec.KeyFingerprint}
	}
	return c.JSON(d)
}

// getBackupFile is GET/HEAD /v1/clusters/{cluster}/backups/{name}/files/{file}.
func (s *Server) getBackupFile(c *fiber.Ctx) error {
	cluster, name, file, _, err := s.backupRequest(c, index.ScopeFetch, true)
	if err != nil {
		return err
	}
	b, err := s.committedBackup(cluster, name)
	if err != nil {
		return err
	}
	rec, ok := b.Files[file]
	if !ok {
		return apiErr(protocol.CodeNotFound, "backup %s has no object %s", b.Name, file)
	}
	c.Set(protocol.HeaderContentSHA256, rec.SHA256)
	c.Set(protocol.HeaderCompression, rec.Compression)
	c.Set(protocol.HeaderEncryption, rec.Encryption)
	if rec.KeyFingerprint != "" {
		c.Set(protocol.HeaderKeyFingerprint, rec.KeyFingerprint)
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(rec.Size))
		c.Response().SkipBody = true
		return nil
	}
	rc, err := s.stores.OpenObject(context.Background(), stores.BackupFileCopy(cluster, b, file, rec), rec.Holders(b.Backend))
	if err != nil {
		return unreadable(file+" of "+b.Name, err)
	}
	c.Locals(localBytes, rec.Size)
	c.Response().SetBodyStream(s.sendBody(c.Context().Conn(), rc), int(rec.Size))
	return nil
}

// postDrill is POST /v1/clusters/{cluster}/drills: keep a drill report.
func (s *Server) postDrill(c *fiber.Ctx) error {
	cluster, err := s.clusterRequest(c, index.ScopeFetch)
	if err != nil {
		return err
	}
	var rep protocol.DrillReport
	max := s.cfg.Limits.MaxDrillReportBytes
	if err := readJSONBody(c, max, &rep); err != nil {
		if ae, ok := err.(*apiError); ok && ae.Code == protocol.CodeTooLarge {
			return apiErr(protocol.CodeTooLarge, "the drill report is larger than limits.max_drill_report_bytes (%d bytes); nothing was kept", max)
		}
		return err
	}
	boundDrillReport(&rep)
	rep.Cluster = cluster
	rep.Received = time.Now().UTC()
	raw, _ := json.Marshal(rep)
	if err := s.catalog.AddDrill(cluster, index.DrillRecord{Received: rep.Received, Passed: rep.Passed, Report: raw}); err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	if _, err := s.catalog.TrimDrills(cluster, s.cfg.Limits.DrillReportsKept); err != nil {
		s.log.Warn("dropping old drill reports", "cluster", cluster, "err", err)
	}
	s.log.Info("drill report", "cluster", cluster, "backup", rep.Backup, "passed", rep.Passed)
	c.Status(fiber.StatusCreated)
	return c.JSON(rep)
}

// listDrills is GET /v1/clusters/{cluster}/drills: reports, oldest first.
func (s *Server) listDrills(c *fiber.Ctx) error {
	cluster, err := s.clusterRequest(c, index.ScopeFetch)
	if err != nil {
		return err
	}
	recs, err := s.catalog.Drills(cluster, s.cfg.Limits.DrillReportsKept)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	out := make([]protocol.DrillReport, 0, len(recs))
	for _, r := range recs {
		var rep protocol.DrillReport
		if json.Unmarshal(r.Report, &rep) == nil {
			out = append(out, rep)
		}
	}
	return c.JSON(out)
}

// Bounds of a kept drill report's fields: what the dashboard shows of a
// report stays small whatever a client sends.
const (
	drillMaxChecks = 32
	drillMaxError  = 4 << 10
	drillMaxOutput = 2 << 10
	drillMaxField  = 256
)

// boundDrillReport truncates a drill report's free-text fields and its
// list of checks, each with a marker saying so.
func boundDrillReport(r *protocol.DrillReport) {
	r.Error = truncateText(r.Error, drillMaxError)
	for _, f := range []*string{&r.Backup, &r.Host, &r.TargetTime, &r.RecoveryEndLSN, &r.RecoveryEndTime} {
		*f = truncateText(*f, drillMaxField)
	}
	if n := len(r.Checks); n > drillMaxChecks {
		r.Checks = append(r.Checks[:drillMaxChecks-1], protocol.Check{Name: fmt.Sprintf("[%d more checks dropped]", n-drillMaxChecks+1)})
	}
	for i := range r.Checks {
		r.Checks[i].Name = truncateText(r.Checks[i].Name, drillMaxField)
		r.Checks[i].Output = truncateText(r.Checks[i].Output, drillMaxOutput)
	}
}

// truncateText cuts s to at most max bytes (on a UTF-8 boundary) plus a
// marker giving its full length.
func truncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" [truncated: %d bytes in all]", len(s))
}
