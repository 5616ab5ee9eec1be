package protocol

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/walgate/walgate/index/pgname"
)

// Version is the path prefix of every protocol-v1 route.
const Version = "v1"

// Request and response headers.
const (
	// HeaderContentSHA256 carries the hex SHA-256 of the body as sent: on a
	// PUT the client's claim, checked by the gateway before it stores
	// anything; on a GET the hash recorded at ingest, checked by the client.
	HeaderContentSHA256 = "Walgate-Content-Sha256"
	// HeaderCompression names the compression of the stored object
	// (zstd, lz4, brotli, none).
	HeaderCompression = "Walgate-Compression"
	// HeaderEncryption names the encryption of the stored object
	// (libsodium or none). The gateway never holds the key.
	HeaderEncryption = "Walgate-Encryption"
	// HeaderKeyFingerprint names the key an encrypted object was sealed
	// with (16 lowercase hex digits, a keyed hash of the key that reveals
	// nothing about it; see docs/codec.md). Sent with a push, kept with the
	// object and returned with a fetch, so that a client holding several
	// keys picks the right one. Absent: unknown (WAL-G's objects, older
	// walgate objects, unencrypted ones).
	HeaderKeyFingerprint = "Walgate-Key-Fingerprint"
	// HeaderContentID identifies the plaintext ("sha256:<hex>" or
	// "hmac-sha256:<hex>") so a re-push of the same WAL file is recognised
	// and a different one refused.
	HeaderContentID = "Walgate-Content-Id"
	// HeaderPlainSize is the size of the plaintext in bytes.
	HeaderPlainSize = "Walgate-Plain-Size"
	// HeaderStoredAt is when the gateway committed the object (RFC 3339).
	HeaderStoredAt = "Walgate-Stored-At"
	// HeaderTimelineParent and HeaderSwitchLSN go with a timeline history
	// file: the parent timeline the new one branched from and where (the
	// last line of the history, read by the client before encrypting).
	// Retention follows timelines by them; the gateway cannot read an
	// encrypted history itself.
	HeaderTimelineParent = "Walgate-Timeline-Parent"
	HeaderSwitchLSN      = "Walgate-Switch-Lsn"
	// HeaderSystemIdentifier is the PostgreSQL system identifier (decimal)
	// a WAL segment's long page header names, read by the client before
	// encrypting; on a backup's begin, the server's. A cluster name
	// belongs to one system: the gateway refuses another (409 conflict).
	// Absent means unknown (a history file, a WAL-G client).
	HeaderSystemIdentifier = "Walgate-System-Identifier"
)

// ValidKeyFingerprint reports whether s is a key fingerprint: 16 lowercase
// hex digits.
func ValidKeyFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Encryption values.
const (
	EncryptionNone      = "none"
	EncryptionLibsodium = "libsodium"
)

// WALPath is the route of one WAL archive file of a cluster.
func WALPath(cluster, name string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/wal/" + url.PathEscape(name)
}

// WhoAmIPath returns what the gateway knows of the presented token.
const WhoAmIPath = "/" + Version + "/whoami"

// PutWALResult is the body of a successful WAL PUT.
type PutWALResult struct {
	Name string `json:"name"`
	// Status is "stored" (201) for a new object or "exists" (200) when the
	// same plaintext was archived before; then SHA256 and Size describe the
	// object stored earlier.
	Status    string `json:"status"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	ContentID string `json:"content_id"`
}

// WhoAmI is the body of GET /v1/whoami.
type WhoAmI struct {
	TokenID string   `json:"token_id"`
	Cluster string   `json:"cluster"`
	Scopes  []string `json:"scopes"`
	Gateway string   `json:"gateway_version"`
}

// Code is a stable, machine-readable error code. Clients branch on codes,
// never on messages.
type Code string

// Error codes and the HTTP status each travels with.
const (
	CodeBadRequest     Code = "bad_request"     // 400 malformed request
	CodeInvalidName    Code = "invalid_name"    // 400 WAL or cluster name breaks its grammar
	CodeLengthRequired Code = "length_required" // 411 no Content-Length
	CodeLengthMismatch Code = "length_mismatch" // 400 body shorter or longer than Content-Length
	CodeHashMismatch   Code = "hash_mismatch"   // 400 body hash differs from the declared one
	CodeTooLarge       Code = "too_large"       // 413 body exceeds the configured limit
	CodeUnauthorized   Code = "unauthorized"    // 401 no token, unknown or revoked token
	CodeForbidden      Code = "forbidden"       // 403 token lacks the scope, or names another cluster
	CodeNotFound       Code = "not_found"       // 404 no such object
	CodeConflict       Code = "conflict"        // 409 archived before with different content
	CodeTimeout        Code = "timeout"         // 408 the body stalled
	CodeUnavailable    Code = "unavailable"     // 503 storage or catalog not available
	CodeInternal       Code = "internal"        // 500 a bug or an unexpected failure
	CodeRouteNotFound  Code = "no_such_route"   // 404 unknown path or method
	CodeDamaged        Code = "damaged"         // 502 every stored copy of the object fails its size or hash check
	// CodeEncryptionRequired: 422, the cluster's group has
	// require_encryption and the object is not encrypted.
	CodeEncryptionRequired Code = "encryption_required"
)

// Status returns the HTTP status a code is sent with.
func (c Code) Status() int {
	switch c {
	case CodeBadRequest, CodeInvalidName, CodeLengthMismatch, CodeHashMismatch:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeForbidden:
		return 403
	case CodeNotFound, CodeRouteNotFound:
		return 404
	case CodeTimeout:
		return 408
	case CodeConflict:
		return 409
	case CodeLengthRequired:
		return 411
	case CodeTooLarge:
		return 413
	case CodeEncryptionRequired:
		return 422
	case CodeDamaged:
		return 502
	case CodeUnavailable:
		return 503
	}
	return 500
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error inside ErrorBody.
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// ValidateCluster checks a cluster name: 1 to 63 characters of lower-case
// letters, digits, '-' and '_', starting with a letter or digit.
func ValidateCluster(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("invalid cluster name %q: 1 to 63 characters of a-z, 0-9, '-' and '_'", clip(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_'))
		if !ok {
			return fmt.Errorf("invalid cluster name %q: 1 to 63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit", clip(name))
		}
	}
	return nil
}

// ValidateWALName checks a WAL archive file name (segment, timeline
// history, backup history or partial segment).
func ValidateWALName(name string) (pgname.WALFile, error) {
	return pgname.ParseWALFile(name)
}

// Token format: "wgt1." + cluster + "." + 43 characters of base64url (32
// random bytes). The cluster part lets the client find its cluster without
// a round trip; the gateway trusts only its catalog, which binds the
// token's hash to the cluster.
const tokenPrefix = "wgt1."

// FleetTokenCluster stands in a fleet-wide admin token where a cluster
// token names its cluster. It is no valid cluster name, so walgate-client
// (which acts for one cluster) refuses such a token.
const FleetTokenCluster = "_all"

// NewToken makes a fresh secret token bound to cluster.
func NewToken(cluster string) (string, error) {
	if err := ValidateCluster(cluster); err != nil {
		return "", err
	}
	return newToken(cluster)
}

// NewFleetToken makes a fresh secret for a fleet-wide admin token.
func NewFleetToken() (string, error) { return newToken(FleetTokenCluster) }

func newToken(cluster string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return tokenPrefix + cluster + "." + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// TokenCluster returns the cluster a well-formed token names.
func TokenCluster(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !ok || i <= 0 || len(rest)-i-1 != 43 {
		return "", fmt.Errorf("malformed walgate token (want wgt1.<cluster>.<secret>, as printed by 'walgate token add')")
	}
	cluster := rest[:i]
	if err := ValidateCluster(cluster); err != nil {
		return "", fmt.Errorf("malformed walgate token: %v", err)
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest[i+1:]); err != nil {
		return "", fmt.Errorf("malformed walgate token: secret is not base64url")
	}
	return cluster, nil
}

// TokenHash is what the catalog stores instead of the token.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// TokenID is a short, non-secret handle for a token, safe for logs.
func TokenID(token string) string {
	h := TokenHash(token)
	return hex.EncodeToString(h[:6])
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// IsLoopback reports whether a host:port (or a bare host) names a loopback
// address: 127.0.0.0/8, ::1 or "localhost". Plain HTTP is acceptable only
// there.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidContentID reports whether s is a content ID a client may send in
// Walgate-Content-Id: sha256:<64 lower-case hex> or hmac-sha256:<64 hex>.
func ValidContentID(s string) bool {
	scheme, sum, ok := strings.Cut(s, ":")
	if !ok || (scheme != "sha256" && scheme != "hmac-sha256") || len(sum) != 64 {
		return false
	}
	_, err := hex.DecodeString(sum)
	return err == nil && strings.ToLower(sum) == sum
}
