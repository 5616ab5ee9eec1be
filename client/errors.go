package client

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
)

// Kinds of failure. Every error the client returns wraps one of them (or is
// a *ConfigError); cmd/walgate-client maps each to its exit code.
var (
	// ErrNotFound: the gateway holds no such object.
	ErrNotFound = errors.New("not archived")
	// ErrAuth: the gateway refused the token or its scope, or TLS
	// verification failed.
	ErrAuth = errors.New("not authorised")
	// ErrConflict: the name was archived before with different content.
	ErrConflict = errors.New("archived before with different content")
	// ErrIntegrity: bytes do not verify: hash mismatch, tampered or
	// truncated ciphertext, wrong key, undecodable data.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrUnavailable: the gateway could not be reached or could not serve
	// the request now; retrying later may work.
	ErrUnavailable = errors.New("gateway unavailable")
	// ErrRejected: the gateway refused the request as malformed or too
	// large; retrying the same request will not help.
	ErrRejected = errors.New("request rejected")
)

// Error is a failure with what the gateway said, if it said anything.
type Error struct {
	Kind    error         // one of the Err* values above
	Op      string        // "push 000000010000000000000003"
	Status  int           // HTTP status, 0 when no response arrived
	Code    protocol.Code // wire code, "" when none
	Message string        // the gateway's or our own explanation
	Err     error         // underlying cause, if any
	// network: no HTTP answer arrived (connection, timeout or TLS failure).
	network bool
	// retryAfter is the answer's Retry-After (0: none): a saturated
	// gateway says when to come back.
	retryAfter time.Duration
}

// retryDelay is how long to wait before retry number attempt (1, 2, ...)
// after err: half a second more each time, or the gateway's Retry-After
// when that is longer, spread by up to half again so that the clients a
// saturated gateway turned away do not all return at once.
func retryDelay(attempt int, err error) time.Duration {
	d := time.Duration(attempt) * 500 * time.Millisecond
	var e *Error
	if errors.As(err, &e) && e.retryAfter > 0 {
		d = max(d, e.retryAfter)
		d += rand.N(d/2 + 1)
	}
	return d
}

// parseRetryAfter reads a Retry-After header in seconds (the gateway
// never sends a date), at most a minute; 0 when absent or malformed.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 60)) * time.Second
}

func (e *Error) Error() string {
	msg := e.Op + ": " + e.Message
	if e.Code != "" {
		msg += fmt.Sprintf(" [%s]", e.Code)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// kindOfCode maps a wire code to its failure kind.
func kindOfCode(code protocol.Code, status int) error {
	switch code {
	case protocol.CodeNotFound:
		return ErrNotFound
	case protocol.CodeUnauthorized, protocol.CodeForbidden:
		return ErrAuth
	case protocol.CodeConflict:
		return ErrConflict
	case protocol.CodeHashMismatch, protocol.CodeDamaged:
		return ErrIntegrity
	case protocol.CodeUnavailable, protocol.CodeInternal, protocol.CodeTimeout:
		return ErrUnavailable
	}
	if status >= 500 {
		return ErrUnavailable
	}
	return ErrRejected
}
