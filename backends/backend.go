package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Shared errors. Backends wrap them with the operation and key
// (fmt.Errorf("%s %q: %w", op, key, ErrNotFound)); callers test with errors.Is.
var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("object not found")
	// ErrExists: Put with IfNotExists found an object under the key.
	ErrExists = errors.New("object already exists")
	// ErrInvalidKey: the key breaks the key grammar (see ValidateKey).
	ErrInvalidKey = errors.New("invalid object key")
	// ErrUnsupported: the backend cannot do what was asked (e.g. a class
	// name it does not know).
	ErrUnsupported = errors.New("not supported by this backend")
	// ErrSizeMismatch: Put was given a size and the reader yielded a
	// different number of bytes.
	ErrSizeMismatch = errors.New("object size does not match the declared size")
	// ErrArchived: the object is in an archive class (S3 Glacier Flexible
	// Retrieval or Deep Archive, Azure Archive) and must be rehydrated
	// before it can be read.
	ErrArchived = errors.New("object is archived and must be rehydrated before reading")
	// ErrInvalidMetadata: PutOptions.Metadata breaks the metadata grammar
	// (see ValidateMetadata).
	ErrInvalidMetadata = errors.New("invalid object metadata")
)

// PutOptions tune a Put.
type PutOptions struct {
	// IfNotExists makes Put fail with ErrExists, writing nothing, when an
	// object already exists under the key. Two concurrent Puts of one key
	// with IfNotExists: at most one succeeds.
	IfNotExists bool
	// Class is the backend's own storage class name ("" = the default).
	Class string
	// Metadata is stored with the object and returned by Stat and List.
	// Keys are lower-case [a-z0-9-]; values are printable ASCII.
	Metadata map[string]string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
	Class    string            // "" when the backend has no classes
	Metadata map[string]string // nil or empty when none was stored
}

// Backend is an object store. Every method is safe for concurrent use.
type Backend interface {
	// Name identifies the backend in logs and errors ("fs:/var/lib/walgate").
	Name() string

	// Put stores everything r yields under key and returns what was stored.
	// Contract:
	//   - Nothing is visible under key (to Get, Stat or List) until Put
	//     returns nil; then the whole object is, durably.
	//   - If r returns an error, ctx is cancelled, or size >= 0 and r yields
	//     a different number of bytes (ErrSizeMismatch), Put returns an
	//     error and leaves nothing new under key: an object that was there
	//     before stays as it was.
	//   - size is the exact length, or -1 when unknown.
	//   - Without IfNotExists an existing object is replaced atomically.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)

	// Get opens the object for reading from byte off, at most length bytes
	// (length < 0: to the end). ErrNotFound when absent. The caller closes
	// the reader; cancelling ctx makes further reads fail.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)

	// Stat returns the object's info, ErrNotFound when absent.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Delete removes the object. Deleting an absent key (never written,
	// already deleted, or only a prefix of other keys) returns nil: after a
	// nil return no object is under key, whoever removed it. Other keys,
	// including those that key prefixes, are untouched.
	Delete(ctx context.Context, key string) error

	// SetClass moves the object to another storage class in place.
	// Backends without classes return nil and do nothing.
	SetClass(ctx context.Context, key, class string) error

	// Close releases the backend's resources.
	Close() error
}

// MaxKeyLen is the longest key any backend accepts (S3's limit).
const MaxKeyLen = 1024

// ValidateKey enforces the key grammar every backend shares: non-empty,
// at most MaxKeyLen bytes of valid UTF-8, slash-separated segments that are
// neither empty, "." nor "..", no leading or trailing slash, no backslash,
// no control characters. It returns an error wrapping ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		k := key
		if len(k) > 80 {
			k = k[:80] + "..."
		}
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, k, why)
	}
	if key == "" {
		return bad("empty")
	}
	if len(key) > MaxKeyLen {
		return bad("longer than 1024 bytes")
	}
	if !utf8.ValidString(key) {
		return bad("not valid UTF-8")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return bad("control character or backslash")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("empty path segment (leading, trailing or double slash)")
		case ".", "..":
			return bad("dot segment")
		}
	}
	return nil
}

// ValidateMetadata checks metadata against the grammar in PutOptions: keys
// [a-z0-9-]+ of at most 128 bytes, values printable ASCII of at most 1024
// bytes (every store's header and attribute limits allow that much). It
// returns an error wrapping ErrInvalidMetadata.
func ValidateMetadata(md map[string]string) error {
	for k, v := range md {
		if k == "" {
			return fmt.Errorf("%w: key is empty", ErrInvalidMetadata)
		}
		if len(k) > MaxMetadataKeyLen {
			return fmt.Errorf("%w: key %q is longer than %d bytes", ErrInvalidMetadata, k[:32]+"...", MaxMetadataKeyLen)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("%w: key %q: only a-z, 0-9 and '-' are allowed", ErrInvalidMetadata, k)
			}
		}
		if len(v) > MaxMetadataValueLen {
			return fmt.Errorf("%w: value of %q is longer than %d bytes", ErrInvalidMetadata, k, MaxMetadataValueLen)
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e {
				return fmt.Errorf("%w: value of %q has a byte (%#x) that is not printable ASCII", ErrInvalidMetadata, k, c)
			}
		}
	}
	return nil
}

// Metadata size limits (see ValidateMetadata).
const (
	MaxMetadataKeyLen   = 128
	MaxMetadataValueLen = 1024
)

// ContextReader returns rc failing every Read once ctx is done, even when
// the bytes have already arrived: an SDK's response body often does not
// check its request's context on each read, and Get's contract says reads
// fail after cancellation.
func ContextReader(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	return &ctxReader{ctx: ctx, rc: rc}
}

type ctxReader struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.rc.Read(p)
}

func (r *ctxReader) Close() error { return r.rc.Close() }
