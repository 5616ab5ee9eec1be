package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
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
