package gateway

import (
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// keyFingerprintHeader reads the optional key fingerprint of a pushed
// object: 16 lowercase hex digits, and only with encryption libsodium.
func keyFingerprintHeader(c *fiber.Ctx, encryption string) (string, error) {
	fp := c.Get(protocol.HeaderKeyFingerprint)
	switch {
	case fp == "":
		return "", nil
	case encryption != protocol.EncryptionLibsodium:
		return "", apiErr(protocol.CodeBadRequest, "header %s goes only with %s: libsodium", protocol.HeaderKeyFingerprint, protocol.HeaderEncryption)
	case !protocol.ValidKeyFingerprint(fp):
		return "", apiErr(protocol.CodeBadRequest, "header %s must be 16 lowercase hex digits", protocol.HeaderKeyFingerprint)
	}
	return fp, nil
}

// checkEncryptionPolicy refuses an unencrypted object for a cluster whose
// group says require_encryption. what names the object in the message.
func (s *Server) checkEncryptionPolicy(cluster, what, encryption string) error {
	g := s.cfg.GroupOf(cluster)
	if g == nil || !g.RequireEncryption || encryption != protocol.EncryptionNone {
		return nil
	}
	return apiErr(protocol.CodeEncryptionRequired,
		"%s is not encrypted, but group %s requires encryption (require_encryption: true); nothing was stored. Set WALGATE_ENCRYPTION_KEY on the database host",
		what, g.Name)
}

// getKeyUsage is GET /v1/clusters/{cluster}/keys: the cluster's WAL and
// committed backups grouped by the key fingerprint of their objects
// (backup metadata, plain JSON by design, is left out).
func (s *Server) getKeyUsage(c *fiber.Ctx) error {
	cluster := c.Params("cluster")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return apiErr(protocol.CodeInvalidName, "%v", err)
	}
	if _, err := s.authorize(c, cluster, index.ScopeFetch); err != nil {
		return err
	}
	uses := map[[2]string]*protocol.KeyUse{}
	use := func(enc, fp string) *protocol.KeyUse {
		if enc != protocol.EncryptionLibsodium {
			enc, fp = protocol.EncryptionNone, ""
		}
		k := [2]string{enc, fp}
		if uses[k] == nil {
			uses[k] = &protocol.KeyUse{Fingerprint: fp, Encryption: enc}
		}
		return uses[k]
	}
	err := s.catalog.ListWAL(cluster, "", func(o index.WALObject) error {
		u := use(o.Encryption, o.KeyFingerprint)
		u.WAL++
		if u.FirstWAL == "" {
			u.FirstWAL = o.Name
		}
		u.LastWAL = o.Name
		return nil
	})
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	backups, err := s.catalog.Backups(cluster, index.BackupCommitted)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	for _, b := range backups {
		seen := map[*protocol.KeyUse]bool{}
		for file, f := range b.Files {
			if strings.HasSuffix(file, ".json") {
				continue
			}
			u := use(f.Encryption, f.KeyFingerprint)
			u.BackupObjects++
			if !seen[u] {
				seen[u] = true
				u.Backups = append(u.Backups, b.Name)
			}
		}
	}
	out := protocol.KeyUsage{Cluster: cluster, Keys: []protocol.KeyUse{}}
	for _, u := range uses {
		out.Keys = append(out.Keys, *u)
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		a, b := out.Keys[i], out.Keys[j]
		if a.Encryption != b.Encryption {
			return a.Encryption > b.Encryption // libsodium first
		}
		return a.Fingerprint < b.Fingerprint
	})
	return c.JSON(out)
}
