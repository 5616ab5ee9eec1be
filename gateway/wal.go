package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/index/pgname"
)

// walTarget validates the route parameters of a WAL request.
func walTarget(c *fiber.Ctx) (cluster, name string, err error) {
	cluster, name = c.Params("cluster"), c.Params("name")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return "", "", apiErr(protocol.CodeInvalidName, "%v", err)
	}
	if _, err := protocol.ValidateWALName(name); err != nil {
		return "", "", apiErr(protocol.CodeInvalidName, "%v", err)
	}
	return cluster, name, nil
}

// walHeaders are the checked headers of a WAL PUT.
type walHeaders struct {
	length      int64
	sha256      []byte
	compression string
	encryption  string
	keyFP       string // key fingerprint, "" when not said
	contentID   string
	plainSize   int64
}

func (s *Server) parseWALHeaders(c *fiber.Ctx) (walHeaders, error) {
	var h walHeaders
	h.length = int64(c.Request().Header.ContentLength())
	if h.length < 0 {
		return h, apiErr(protocol.CodeLengthRequired, "Content-Length is required: the gateway checks the body's size before acknowledging it")
	}
	if h.length > s.cfg.Limits.MaxWALBytes {
		return h, apiErr(protocol.CodeTooLarge, "body of %d bytes exceeds limits.max_wal_bytes (%d)", h.length, s.cfg.Limits.MaxWALBytes)
	}
	sum, err := hex.DecodeString(c.Get(protocol.HeaderContentSHA256))
	if err != nil || len(sum) != sha256.Size {
		return h, apiErr(protocol.CodeBadRequest, "header %s must be the 64-hex SHA-256 of the body", protocol.HeaderContentSHA256)
	}
	h.sha256 = sum
	h.compression = c.Get(protocol.HeaderCompression)
	if !layout.PushCompression(h.compression) {
		return h, apiErr(protocol.CodeBadRequest, "header %s must be zstd, lz4, brotli or none", protocol.HeaderCompression)
	}
	h.encryption = c.Get(protocol.HeaderEncryption)
	if h.encryption != protocol.EncryptionNone && h.encryption != protocol.EncryptionLibsodium {
		return h, apiErr(protocol.CodeBadRequest, "header %s must be none or libsodium", protocol.HeaderEncryption)
	}
	if h.keyFP, err = keyFingerprintHeader(c, h.encryption); err != nil {
		return h, err
	}
	h.contentID = c.Get(protocol.HeaderContentID)
	if !protocol.ValidContentID(h.contentID) {
		return h, apiErr(protocol.CodeBadRequest, "header %s must be sha256:<64 hex> or hmac-sha256:<64 hex>", protocol.HeaderContentID)
	}
	h.plainSize, err = strconv.ParseInt(c.Get(protocol.HeaderPlainSize), 10, 64)
	if err != nil || h.plainSize < 0 {
		return h, apiErr(protocol.CodeBadRequest, "header %s must be the plaintext size in bytes", protocol.HeaderPlainSize)
	}
	return h, nil
}

// putWAL is PUT /v1/clusters/{cluster}/wal/{name}: stream the body into the
// backend, verify size and hash, make it durable, commit the catalog, and
// only then answer.
func (s *Server) putWAL(c *fiber.Ctx) error {
	cluster, name, err := walTarget(c)
	if err != nil {
		return err
	}
	tok, err := s.authorize(c, cluster, index.ScopePush)
	if err != nil {
		return err
	}
	h, err := s.parseWALHeaders(c)
	if err != nil {
		return err
	}
	parent, switchLSN, err := timelineHeaders(c, name)
	if err != nil {
		return err
	}
	if err := s.checkEncryptionPolicy(cluster, name, h.encryption); err != nil {
		return err
	}
	sysID, err := systemHeader(c, name)
	if err != nil {
		return err
	}
	if err := s.claimSystem(cluster, sysID, "WAL "+name); err != nil {
		return err
	}
	body := &ingestReader{
		r: c.Context().RequestBodyStream(), conn: c.Context().Conn(), idle: s.cfg.Limits.IdleTimeout,
		declared: h.length, want: h.sha256, hash: sha256.New(),
	}
	c.Locals(localBytes, h.length)

	unlock := s.lockName(cluster, name)
	defer unlock()

	// The name's claim in the catalog: gateways sharing the catalog write
	// a name one at a time, so the store never holds a loser's bytes.
	release, prev, err := s.claimWAL(cluster, name)
	if err != nil {
		return err
	}
	if prev != nil {
		// Archived before. Read the body anyway so that a bad body is still
		// reported as such and the connection stays usable.
		if _, err := io.Copy(io.Discard, body); err != nil {
			return body.failure(err)
		}
		return s.answerExisting(c, *prev, h.contentID)
	}
	defer release()

	if seg, _ := s.fleet.SegmentSize(cluster); seg != 0 && len(name) == 24 && pgname.IsSegmentSize(h.plainSize) && uint64(h.plainSize) != seg {
		return apiErr(protocol.CodeBadRequest, "segment %s is %d MiB, but cluster %s archives %d MiB segments: a server with another wal_segment_size (initdb --wal-segsize) must archive under a new cluster name",
			name, h.plainSize>>20, cluster, seg>>20)
	}
	g, err := s.stores.GroupFor(cluster)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: err.Error(), Err: err}
	}
	key := layout.WALKey(cluster, name, h.compression)
	meta := stores.WALMetadata(cluster, index.WALObject{Name: name, SHA256: hex.EncodeToString(h.sha256), ContentID: h.contentID,
		PlainSize: h.plainSize, Compression: h.compression, Encryption: h.encryption, KeyFingerprint: h.keyFP,
		TimelineParent: parent, SwitchLSN: switchLSN})
	if sysID != 0 {
		meta[layout.MetaSystemIdentifier] = strconv.FormatUint(sysID, 10)
	}
	// The request context would end when the handler returns; the write
	// must finish or fail on its own terms.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// With stores shared by several gateways, conditional creation: the
	// final name is written only where nothing is yet (S3 and Azure
	// If-None-Match: *, GCS DoesNotExist, fs link), so no other gateway's
	// object is ever replaced, even one whose claim lapsed; see
	// existingObject. A gateway alone with its catalog holds the only
	// claim there is: an object under the name that the catalog does not
	// list was left by a push that failed or a gateway that died before
	// its commit, and is overwritten, so that PostgreSQL's next try after
	// a crash succeeds at once.
	stopKeep := s.keepWALClaim(cluster, name, cancel)
	w, err := s.stores.PutObject(ctx, g, key, body, h.length, backends.PutOptions{Metadata: meta, IfNotExists: s.cfg.SharedStores})
	var derr error
	if err == nil {
		// Backends that held the same object already may not have read
		// the body: read it to its end, which checks length and hash. A
		// body that fails then wrote nothing; the objects found stay.
		_, derr = io.Copy(io.Discard, body)
	}
	lost := stopKeep()
	if derr != nil {
		return body.failure(derr)
	}
	if err != nil && errors.Is(err, backends.ErrExists) && body.err == nil {
		if lost {
			return apiErr(protocol.CodeUnavailable, "the claim on %s lapsed while it was written and another gateway took it; nothing was acknowledged, retry later", name)
		}
		return s.existingObject(g, key, err)
	}
	if err != nil {
		// Copies that landed while the policy failed are nobody's: the
		// catalog holds no record of this name (checked under the claim).
		// A lost claim leaves the key to the gateway that took it.
		for _, b := range w.Held {
			if lost {
				break
			}
			be, _ := s.stores.Backend(b)
			if derr := be.Delete(context.Background(), key); derr != nil && !errors.Is(derr, backends.ErrNotFound) {
				s.log.Warn("removing a copy of a refused push", "backend", b, "key", key, "err", derr)
			}
		}
		if body.err != nil {
			return body.failure(body.err)
		}
		return storeFailure(g.Name(), err, "retry later")
	}
	obj := index.WALObject{
		Name: name, Key: key, Backend: w.Held[0], Backends: w.Held, Size: w.Info.Size,
		SHA256: hex.EncodeToString(body.hash.Sum(nil)), ContentID: h.contentID, PlainSize: h.plainSize,
		Compression: h.compression, Encryption: h.encryption, KeyFingerprint: h.keyFP, StoredAt: time.Now().UTC(), TokenID: tok.ID,
		TimelineParent: parent, SwitchLSN: switchLSN,
	}
	copies := make([]index.Copy, 0, len(w.Missing))
	for _, m := range w.Missing {
		copies = append(copies, index.Copy{Backend: m, Cluster: cluster, Kind: index.CopyWAL, Name: name,
			Key: key, Size: obj.Size, SHA256: obj.SHA256, Metadata: meta})
	}
	if lost {
		return apiErr(protocol.CodeUnavailable, "the claim on %s lapsed while it was written and another gateway took it; nothing was acknowledged, retry later", name)
	}
	cur, added, err := s.catalog.AddWALCopies(cluster, obj, copies)
	if err != nil {
		// Stored but not committed: no GET finds it, so no copy may stay
		// under its name for a rebuild to adopt (the name is still locked
		// and the catalog had no record of it).
		s.removeUncommitted(cluster, key, w.Held, err)
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog commit failed; nothing was acknowledged, retry later", Err: err}
	}
	if !added {
		return s.answerExisting(c, cur, h.contentID)
	}
	for _, m := range w.Missing {
		s.stores.Wake(m)
	}
	s.fleet.Add(cluster, obj)
	c.Status(fiber.StatusCreated)
	return c.JSON(protocol.PutWALResult{Name: name, Status: "stored", SHA256: obj.SHA256, Size: obj.Size, ContentID: obj.ContentID})
}

// orphanAge is how old an object under a WAL name the catalog does not
// list must be before a push may remove it: a gateway writes the object,
// then commits the catalog at once, so an object that old without a
// catalog record was left by a push that failed or a gateway that died
// between the two.
const orphanAge = 5 * time.Minute

// existingObject answers a push whose conditional write found another
// object under the final name, one the catalog does not list (checked
// under the name's claim) and with other bytes. Only gateways that share
// their stores write conditionally: a young one may be another gateway's
// push that is about to commit: the answer is 503, and the client's retry
// then finds that push in the catalog. One older than orphanAge is
// removed, so that the retry can write.
func (s *Server) existingObject(g *stores.Group, key string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range g.Names() {
		be, ok := s.stores.Backend(name)
		if !ok {
			continue
		}
		info, err := be.Stat(ctx, key)
		if err != nil || time.Since(info.Modified) < orphanAge {
			continue
		}
		if err := be.Delete(ctx, key); err != nil {
			s.log.Warn("removing an orphan object under a WAL name", "backend", name, "key", key, "err", err)
			continue
		}
		s.log.Warn("removed an orphan object under a WAL name: the catalog does not list it", "backend", name, "key", key, "modified", info.Modified)
	}
	return &apiError{Code: protocol.CodeUnavailable,
		Message: "an object the catalog does not list is under this name (another gateway's push in progress, or one left by a failed push); nothing was acknowledged, retry later", Err: cause}
}

// removeUncommitted deletes the copies of an object whose catalog commit
// failed after the stores took it (best effort: a failure is logged, and
// the next push of the name replaces what is left).
func (s *Server) removeUncommitted(cluster, key string, held []string, cause error) {
	err := s.stores.DeleteEverywhere(cluster, key, held)
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		s.log.Error("removing an object whose catalog commit failed", "cluster", cluster, "key", key, "commit_err", cause, "err", err)
		return
	}
	s.log.Warn("removed an object whose catalog commit failed", "cluster", cluster, "key", key, "commit_err", cause)
}

// timelineHeaders reads what a client says of a timeline history file it
// pushes (both headers or neither; only on history files).
func timelineHeaders(c *fiber.Ctx, name string) (parent uint32, switchLSN uint64, err error) {
	p, l := c.Get(protocol.HeaderTimelineParent), c.Get(protocol.HeaderSwitchLSN)
	if p == "" && l == "" {
		return 0, 0, nil
	}
	f, _ := pgname.ParseWALFile(name)
	if f.Kind != pgname.History {
		return 0, 0, apiErr(protocol.CodeBadRequest, "headers %s and %s go only with a timeline history file", protocol.HeaderTimelineParent, protocol.HeaderSwitchLSN)
	}
	n, perr := strconv.ParseUint(p, 10, 32)
	lsn, lerr := pgname.ParseLSN(l)
	if perr != nil || lerr != nil || n == 0 || uint32(n) >= uint32(f.Timeline) {
		return 0, 0, apiErr(protocol.CodeBadRequest, "headers %s and %s must name a parent timeline below %d and an LSN X/Y", protocol.HeaderTimelineParent, protocol.HeaderSwitchLSN, f.Timeline)
	}
	return uint32(n), uint64(lsn), nil
}

// answerExisting answers a push of a name the catalog already holds: the
// same plaintext is success, anything else a conflict; nothing is written.
func (s *Server) answerExisting(c *fiber.Ctx, prev index.WALObject, contentID string) error {
	if prev.ContentID == layout.ContentIDUnknown {
		return apiErr(protocol.CodeConflict,
			"%s is archived by an earlier tool (found by a catalog rebuild, encrypted, its content identity unknown); nothing was overwritten. If it is the same segment, the archive already holds it: mark it archived",
			prev.Name)
	}
	if prev.ContentID != contentID {
		return apiErr(protocol.CodeConflict,
			"%s was archived before (at %s) with different content; nothing was overwritten. If the cluster was restored or re-initialised, archive it under a new cluster name; a changed encryption key also changes the content identity",
			prev.Name, prev.StoredAt.Format(time.RFC3339))
	}
	return c.JSON(protocol.PutWALResult{Name: prev.Name, Status: "exists", SHA256: prev.SHA256, Size: prev.Size, ContentID: prev.ContentID})
}

// getWAL is GET and HEAD /v1/clusters/{cluster}/wal/{name}.
func (s *Server) getWAL(c *fiber.Ctx) error {
	cluster, name, err := walTarget(c)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, cluster, index.ScopeFetch); err != nil {
		return err
	}
	obj, err := s.catalog.WAL(cluster, name)
	if errors.Is(err, index.ErrNotFound) {
		return apiErr(protocol.CodeNotFound, "%s is not archived for cluster %s", name, cluster)
	}
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	c.Set(protocol.HeaderContentSHA256, obj.SHA256)
	c.Set(protocol.HeaderCompression, obj.Compression)
	c.Set(protocol.HeaderEncryption, obj.Encryption)
	if obj.KeyFingerprint != "" {
		c.Set(protocol.HeaderKeyFingerprint, obj.KeyFingerprint)
	}
	if obj.ContentID != layout.ContentIDUnknown {
		// A WAL-G object found by a rebuild has no known plaintext identity;
		// the client then checks the stored bytes' SHA-256 only.
		c.Set(protocol.HeaderContentID, obj.ContentID)
		c.Set(protocol.HeaderPlainSize, strconv.FormatInt(obj.PlainSize, 10))
	}
	c.Set(protocol.HeaderStoredAt, obj.StoredAt.Format(time.RFC3339))
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(obj.Size))
		c.Response().SkipBody = true
		return nil
	}
	rc, err := s.stores.OpenObject(context.Background(), stores.WALCopy(cluster, obj), obj.Holders())
	if err != nil {
		return unreadable(name, err)
	}
	c.Locals(localBytes, obj.Size)
	// fasthttp streams rc after the handler returns and closes it.
	c.Response().SetBodyStream(s.sendBody(c.Context().Conn(), rc), int(obj.Size))
	return nil
}

// ingestReader reads a request body with a per-read idle deadline. With
// a declared length it ends with io.EOF only when exactly that many bytes
// arrived; without one (chunked), at the body's end, failing past max
// bytes. When want is set, EOF also requires the body's SHA-256 to equal
// it. Anything else is an error, so the backend discards the write.
type ingestReader struct {
	r        io.Reader
	conn     net.Conn
	idle     time.Duration
	declared int64 // -1: unknown
	max      int64 // limit when declared is unknown
	want     []byte
	hash     hash.Hash
	n        int64
	err      error // first failure, kept for classification
}

var (
	errShortBody    error = &bodyError{msg: "request body ended early"}
	errNoLastChunk  error = &bodyError{msg: "chunked request body ended without its last chunk"}
	errHashMismatch error = &bodyError{msg: "request body hash mismatch"}
	errTooLarge     error = &bodyError{msg: "request body too large"}
)

// bodyError is a failure of a request body: the stores count it as the
// caller's (stores.ErrBody), not as a failing backend. err is the cause
// when reading the request failed.
type bodyError struct {
	msg string
	err error
}

func (e *bodyError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}
func (e *bodyError) Is(target error) bool { return target == stores.ErrBody }
func (e *bodyError) Unwrap() error        { return e.err }

func (b *ingestReader) finish() error {
	if b.want != nil && !bytes.Equal(b.hash.Sum(nil), b.want) {
		b.err = errHashMismatch
		return b.err
	}
	return io.EOF
}

func (b *ingestReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.declared >= 0 && b.n == b.declared {
		return 0, b.finish()
	}
	if b.r == nil {
		if b.declared < 0 {
			return 0, b.finish()
		}
		b.err = errShortBody
		return 0, b.err
	}
	rest := b.declared - b.n
	if b.declared < 0 {
		rest = b.max - b.n + 1
	}
	if int64(len(p)) > rest {
		p = p[:rest]
	}
	if b.conn != nil {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.hash.Write(p[:n])
	if b.declared < 0 && b.n > b.max {
		b.err = errTooLarge
		return n, b.err
	}
	if err == io.EOF {
		if b.declared < 0 {
			if peerClosed(b.conn) {
				b.err = errNoLastChunk
				return n, b.err
			}
			return n, b.finish()
		}
		if b.n < b.declared {
			b.err = errShortBody
			return n, b.err
		}
		err = nil
	}
	if err != nil {
		// Reading the request failed (a malformed chunk, a connection
		// cut or stalled): the client's failure, never the store's.
		b.err = &bodyError{msg: "reading the request body", err: err}
		return n, b.err
	}
	return n, nil
}

// failure classifies a body error into its wire code.
func (b *ingestReader) failure(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge):
		return apiErr(protocol.CodeTooLarge, "the body exceeds the limit of %d bytes; nothing was stored", b.max)
	case errors.Is(err, errHashMismatch):
		return apiErr(protocol.CodeHashMismatch, "the body's SHA-256 differs from %s: it was damaged in transit; nothing was stored", protocol.HeaderContentSHA256)
	case errors.As(err, &ne) && ne.Timeout():
		return apiErr(protocol.CodeTimeout, "the body stalled for %s after %s; nothing was stored", b.idle, b.progress())
	case b.declared < 0:
		return &apiError{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("the chunked body is malformed or was cut off after %s; nothing was stored", b.progress()), Err: err}
	default:
		return &apiError{Code: protocol.CodeLengthMismatch, Message: fmt.Sprintf("the body ended after %s; nothing was stored", b.progress()), Err: err}
	}
}

// progress says how much of the body arrived: "N of M declared bytes",
// or "N bytes (length not declared)" for a body sent without a length.
func (b *ingestReader) progress() string {
	if b.declared < 0 {
		return fmt.Sprintf("%d bytes (length not declared)", b.n)
	}
	return fmt.Sprintf("%d of %d declared bytes", b.n, b.declared)
}
