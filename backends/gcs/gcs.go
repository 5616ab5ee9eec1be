package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/walgate/walgate/backends"
)

const (
	// copyBufferSize is what Put reads from its reader at a time; the
	// Writer copies it into its chunk buffer.
	copyBufferSize = 64 << 10
	// contentType is what every object is stored as: the store would
	// otherwise sniff one from the first bytes.
	contentType = "application/octet-stream"
	// setClassAttempts bounds how often SetClass starts over when the
	// object is replaced while it is being rewritten.
	setClassAttempts = 3
)

// classes are the storage class names the store knows ("" = the bucket's
// default).
var classes = map[string]bool{"": true, "STANDARD": true, "NEARLINE": true, "COLDLINE": true, "ARCHIVE": true}

// errClosed is returned by every method called after Close.
var errClosed = errors.New("backend is closed")

// Backend stores objects in a GCS bucket. See the package documentation.
// It is safe for concurrent use.
type Backend struct {
	client *storage.Client
	base   *http.Transport // under the auth layers; its idle connections go at Close
	bucket *storage.BucketHandle
	cfg    Config // with defaults
	name   string
	closed atomic.Bool
}

var _ backends.Backend = (*Backend)(nil)

// New validates cfg and returns a Backend for its bucket. It reads the
// credentials (a file, or the Application Default Credentials) but does not
// contact the store: a missing bucket or a denied permission shows on the
// first request.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	// The base transport bounds each attempt (connect, TLS, response
	// headers) but not how long a body streams.
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	opts := []option.ClientOption{
		option.WithScopes(storage.ScopeReadWrite),
		option.WithTelemetryDisabled(),
	}
	switch {
	case cfg.Anonymous:
		opts = append(opts, option.WithoutAuthentication())
	case cfg.CredentialsFile != "":
		// Loaded here, as a service account and nothing else: other
		// credential types can name programs to run or URLs to fetch.
		creds, err := credentials.NewCredentialsFromFile(credentials.ServiceAccount, cfg.CredentialsFile,
			&credentials.DetectOptions{Scopes: []string{storage.ScopeReadWrite}})
		if err != nil {
			return nil, fmt.Errorf("gcs: credentials_file %s: %w", cfg.CredentialsFile, err)
		}
		opts = append(opts, option.WithAuthCredentials(creds))
	}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	trans, err := htransport.NewTransport(ctx, base, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: credentials (%s): %w", credentialsSource(cfg), err)
	}
	clientOpts := []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: trans}), option.WithTelemetryDisabled()}
	if cfg.Endpoint != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(cfg.Endpoint))
	}
	client, err := storage.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: creating the client: %w", err)
	}
	client.SetRetry(storage.WithMaxAttempts(cfg.MaxAttempts))
	name := "gcs:" + cfg.Bucket + "/" + cfg.Prefix
	return &Backend{client: client, base: base, bucket: client.Bucket(cfg.Bucket), cfg: cfg, name: name}, nil
}

func credentialsSource(cfg Config) string {
	switch {
	case cfg.Anonymous:
		return "anonymous"
	case cfg.CredentialsFile != "":
		return "file " + cfg.CredentialsFile
	}
	return "application default credentials"
}

// Name returns "gcs:<bucket>/<prefix>".
func (b *Backend) Name() string { return b.name }

// Close releases the client; later calls fail.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	err := b.client.Close()
	b.base.CloseIdleConnections()
	return err
}

func (b *Backend) checkOpen() error {
	if b.closed.Load() {
		return errClosed
	}
	return nil
}

// opErr wraps err with the operation and key, as every backend does.
func opErr(op, key string, err error) error {
	return fmt.Errorf("gcs %s %q: %w", op, key, err)
}

// objectName checks key and returns the object it is stored as.
func (b *Backend) objectName(key string) (string, error) {
	if err := backends.ValidateKey(key); err != nil {
		return "", err
	}
	name := key
	if b.cfg.Prefix != "" {
		name = b.cfg.Prefix + "/" + key
	}
	if len(name) > backends.MaxKeyLen {
		return "", fmt.Errorf("object name with the prefix %q is %d bytes, more than the store's limit of %d: %w",
			b.cfg.Prefix, len(name), backends.MaxKeyLen, backends.ErrUnsupported)
	}
	return name, nil
}

// keyOf returns the key an object name stands for, or false for objects
// outside the prefix or with names that are no valid key.
func (b *Backend) keyOf(name string) (string, bool) {
	key := name
	if b.cfg.Prefix != "" {
		var ok bool
		if key, ok = strings.CutPrefix(name, b.cfg.Prefix+"/"); !ok {
			return "", false
		}
	}
	return key, backends.ValidateKey(key) == nil
}

func checkClass(class string) error {
	if !classes[class] {
		return fmt.Errorf("storage class %q (want STANDARD, NEARLINE, COLDLINE or ARCHIVE): %w", class, backends.ErrUnsupported)
	}
	return nil
}

// translate maps the SDK's errors to the shared ones, keeping the original
// in the chain.
func translate(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w (%w)", backends.ErrNotFound, err)
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) && gerr.Code == http.StatusNotFound && !errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("%w (%w)", backends.ErrNotFound, err)
	}
	return err
}

// isStatus tells whether err is an API error with HTTP status code.
func isStatus(err error, code int) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == code
}

func infoOf(key string, attrs *storage.ObjectAttrs) backends.ObjectInfo {
	info := backends.ObjectInfo{Key: key, Size: attrs.Size, Modified: attrs.Updated, Class: attrs.StorageClass}
	if len(attrs.Metadata) > 0 {
		info.Metadata = maps.Clone(attrs.Metadata)
	}
	return info
}

// Put streams r into a resumable upload and commits it only when r has
// yielded exactly size bytes (any number for -1). See backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	info, err := b.put(ctx, key, r, size, opts)
	if err != nil {
		return backends.ObjectInfo{}, opErr("put", key, err)
	}
	return info, nil
}

// writeError marks an error that came from the upload, not the reader.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

func (b *Backend) put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, err
	}
	name, err := b.objectName(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := backends.ValidateMetadata(opts.Metadata); err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := checkClass(opts.Class); err != nil {
		return backends.ObjectInfo{}, err
	}
	if size < -1 {
		return backends.ObjectInfo{}, fmt.Errorf("invalid size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}

	obj := b.bucket.Object(name)
	if opts.IfNotExists {
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	}
	// Every attempt resends the same bytes from the chunk buffer, so a
	// retry cannot write anything this Put was not asked to write. (The
	// SDK retries a plain overwrite only under RetryAlways.)
	obj = obj.Retryer(storage.WithPolicy(storage.RetryAlways), storage.WithMaxAttempts(b.cfg.MaxAttempts))

	// Cancelling wctx, rather than closing w, abandons the upload: the
	// final request, which commits the object, is only sent by Close.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.NewWriter(wctx)
	w.ChunkSize = b.cfg.ChunkSize
	if size >= 0 && size < int64(b.cfg.ChunkSize) {
		// The buffer need not outgrow the object (the SDK rounds up to
		// 256 KiB): a 2 MiB WAL object holds 2.25 MiB, not a whole chunk.
		w.ChunkSize = int(size) + 1
	}
	w.ChunkTransferTimeout = b.cfg.Timeout
	w.ChunkRetryDeadline = time.Duration(b.cfg.MaxAttempts) * b.cfg.Timeout
	w.ContentType = contentType
	w.StorageClass = opts.Class
	if len(opts.Metadata) > 0 {
		w.Metadata = maps.Clone(opts.Metadata)
	}

	if err := copyExact(ctx, w, r, size); err != nil {
		cancel()
		_ = w.Close() // returns the cancellation; waits for the upload goroutine
		if we, ok := err.(writeError); ok {
			err = we.err
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = b.timeoutError(err)
			}
			err = b.uploadError(err, opts.IfNotExists)
		}
		return backends.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		cancel()
		_ = w.Close()
		return backends.ObjectInfo{}, err
	}
	if err := w.Close(); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = b.timeoutError(err)
		}
		return backends.ObjectInfo{}, b.uploadError(err, opts.IfNotExists)
	}
	return infoOf(key, w.Attrs()), nil
}

// timeoutError says that the store did not answer in time, which the SDK
// reports as a bare context.DeadlineExceeded although the caller's ctx is
// not done.
func (b *Backend) timeoutError(err error) error {
	return fmt.Errorf("the store did not answer within the timeout (%v per attempt): %w", b.cfg.Timeout, err)
}

// uploadError translates an error from the Writer.
func (b *Backend) uploadError(err error, ifNotExists bool) error {
	err = sessionRedacted{err}
	if ifNotExists && isStatus(err, http.StatusPreconditionFailed) {
		return fmt.Errorf("%w (%w)", backends.ErrExists, err)
	}
	if errors.Is(err, storage.ErrBucketNotExist) || isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("bucket %q: %w", b.cfg.Bucket, err)
	}
	return err
}

// uploadIDPattern matches the resumable session's id in the URLs the SDK's
// errors quote.
var uploadIDPattern = regexp.MustCompile(`upload_id=[^&"\s]+`)

// sessionRedacted masks the resumable session's id in err's message: whoever
// holds the session URL can write to it until it expires. errors.Is and
// errors.As still see err.
type sessionRedacted struct{ err error }

func (e sessionRedacted) Error() string {
	return uploadIDPattern.ReplaceAllString(e.err.Error(), "upload_id=REDACTED")
}

func (e sessionRedacted) Unwrap() error { return e.err }

// copyExact copies r to w, failing with backends.ErrSizeMismatch when size
// >= 0 and r yields another number of bytes (reading one byte past size to
// know), and with ctx's error once ctx is done. Errors from w come back as
// writeError.
func copyExact(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if size >= 0 && n+int64(m) > size {
				return fmt.Errorf("%w: declared %d bytes, the reader yielded more", backends.ErrSizeMismatch, size)
			}
			if _, err := w.Write(buf[:m]); err != nil {
				return writeError{err}
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading the object after %d bytes: %w", n, rerr)
		}
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: declared %d bytes, the reader yielded %d", backends.ErrSizeMismatch, size, n)
	}
	return nil
}

// Get opens a range reader. See backends.Backend.
func (b *Backend) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := b.get(ctx, key, off, length)
	if err != nil {
		return nil, opErr("get", key, err)
	}
	return rc, nil
}

func (b *Backend) get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	name, err := b.objectName(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("negative offset %d", off) // the SDK would read from the end
	}
	if length < 0 {
		length = -1
	}
	obj := b.bucket.Object(name)
	if length == 0 {
		if _, err := obj.Attrs(ctx); err != nil {
			return nil, translate(err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	// rctx lives as long as the reader; the stall watchdog cancels it.
	rctx, cancel := context.WithCancel(ctx)
	rd, err := obj.NewRangeReader(rctx, off, length)
	if err != nil && isStatus(err, http.StatusRequestedRangeNotSatisfiable) {
		// Reading from the end or past it: empty, if the object exists.
		cancel()
		if _, err := obj.Attrs(ctx); err != nil {
			return nil, translate(err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		cancel()
		return nil, translate(err)
	}
	return &objectReader{ctx: ctx, key: key, rc: rd, cancel: cancel, stall: b.cfg.Timeout}, nil
}

// objectReader is what Get returns. Every read fails once ctx is done (the
// SDK's reader would hand out what the connection had buffered), and a read
// that gets no data for the stall time fails too: Config.Timeout bounds the
// wait for each piece of a download, not the whole of it.
type objectReader struct {
	ctx     context.Context // the caller's
	key     string
	rc      io.ReadCloser
	cancel  context.CancelFunc // of the reader's own ctx
	stall   time.Duration
	stalled atomic.Bool
}

// Read reads on; its errors other than io.EOF name the key.
func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if err != nil && err != io.EOF {
		err = opErr("get", r.key, err)
	}
	return n, err
}

func (r *objectReader) read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.stalled.Load() {
		return 0, r.stallError()
	}
	watchdog := time.AfterFunc(r.stall, func() {
		r.stalled.Store(true)
		r.cancel()
	})
	n, err := r.rc.Read(p)
	watchdog.Stop()
	if err != nil && err != io.EOF && r.stalled.Load() && r.ctx.Err() == nil {
		err = r.stallError()
	}
	return n, err
}

func (r *objectReader) stallError() error {
	return fmt.Errorf("download stalled: no data from the store for %v: %w", r.stall, context.DeadlineExceeded)
}

func (r *objectReader) Close() error {
	err := r.rc.Close()
	r.cancel()
	return err
}

// Stat returns the object's attributes. See backends.Backend.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, opErr("stat", key, err)
	}
	name, err := b.objectName(key)
	if err != nil {
		return backends.ObjectInfo{}, opErr("stat", key, err)
	}
	attrs, err := b.bucket.Object(name).Attrs(ctx)
	if err != nil {
		return backends.ObjectInfo{}, opErr("stat", key, translate(err))
	}
	return infoOf(key, attrs), nil
}

// List lists the objects under the prefix in the store's order, which is
// lexical by bytes. Objects whose names are no valid key (written by
// something else) are skipped. See backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := b.checkOpen(); err != nil {
		return opErr("list", prefix, err)
	}
	full := prefix
	if b.cfg.Prefix != "" {
		full = b.cfg.Prefix + "/" + prefix
	}
	q := &storage.Query{Prefix: full}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "StorageClass", "Metadata"}); err != nil {
		return opErr("list", prefix, err)
	}
	it := b.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return opErr("list", prefix, translate(err))
		}
		key, ok := b.keyOf(attrs.Name)
		if !ok {
			continue
		}
		if err := fn(infoOf(key, attrs)); err != nil {
			return err
		}
	}
}

// Delete removes the object; an absent one is no error. See
// backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.checkOpen(); err != nil {
		return opErr("delete", key, err)
	}
	name, err := b.objectName(key)
	if err != nil {
		return opErr("delete", key, err)
	}
	err = translate(b.bucket.Object(name).Delete(ctx))
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		return opErr("delete", key, err)
	}
	return nil
}

// SetClass rewrites the object onto itself with the new class ("" = the
// bucket's default), keeping its data, content type and metadata. The
// rewrite is conditional on the generation it read, so an object replaced
// meanwhile is not overwritten with the old data: SetClass starts over on
// the new one. If the object already has the class, nothing is rewritten.
func (b *Backend) SetClass(ctx context.Context, key, class string) error {
	if err := b.setClass(ctx, key, class); err != nil {
		return opErr("setclass", key, err)
	}
	return nil
}

func (b *Backend) setClass(ctx context.Context, key, class string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	name, err := b.objectName(key)
	if err != nil {
		return err
	}
	if err := checkClass(class); err != nil {
		return err
	}
	obj := b.bucket.Object(name)
	for range setClassAttempts {
		attrs, err := obj.Attrs(ctx)
		if err != nil {
			return translate(err)
		}
		if class != "" && attrs.StorageClass == class {
			return nil
		}
		dst := obj.If(storage.Conditions{GenerationMatch: attrs.Generation})
		c := dst.CopierFrom(obj.Generation(attrs.Generation))
		c.StorageClass = class
		c.ContentType = attrs.ContentType
		c.Metadata = attrs.Metadata
		_, err = c.Run(ctx)
		switch {
		case err == nil:
			return nil
		case isStatus(err, http.StatusPreconditionFailed), errors.Is(translate(err), backends.ErrNotFound):
			// Replaced (or deleted) meanwhile: start over on what is
			// there now.
			continue
		default:
			return translate(err)
		}
	}
	return fmt.Errorf("the object was replaced %d times while its class was being changed; try again", setClassAttempts)
}
