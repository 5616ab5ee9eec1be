package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/walgate/walgate/backends"
)

// Backend stores objects in one bucket under a prefix. Safe for concurrent
// use.
type Backend struct {
	cfg    Config
	client *s3.Client
	name   string
	parts  sync.Pool // *[]byte of cfg.PartSize, for uploads of unknown size
}

// New checks cfg and builds the client. It does not contact the store
// (`walgate backend check` does).
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3 backend: %w", err)
	}
	cfg = cfg.withDefaults()
	// A BuildableClient, so that the SDK can add a CA bundle (ca_file or
	// AWS_CA_BUNDLE) to it.
	hc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = cfg.Timeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.ResponseHeaderTimeout = cfg.Timeout
			t.TLSHandshakeTimeout = cfg.Timeout
			t.MaxIdleConnsPerHost = 64
		})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		config.WithRetryMaxAttempts(cfg.MaxAttempts),
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 backend: ca_file: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 backend: loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("s3 backend: no region: set region in the config (or AWS_REGION)")
		}
		awsCfg.Region = defaultRegionCustom
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Checksums only where S3 requires them: a streamed body cannot be
		// hashed before it is sent, and integrity is checked end to end
		// against the catalog's sha256.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	name := "s3:" + cfg.Bucket
	if cfg.Prefix != "" {
		name += "/" + cfg.Prefix
	}
	b := &Backend{cfg: cfg, client: client, name: name}
	b.parts.New = func() any { buf := make([]byte, cfg.PartSize); return &buf }
	return b, nil
}

// Name implements backends.Backend.
func (b *Backend) Name() string { return b.name }

// Close implements backends.Backend.
func (b *Backend) Close() error { return nil }

// checkKey applies backends.ValidateKey and S3's limit on the whole key,
// prefix included.
func (b *Backend) checkKey(key string) error {
	if err := backends.ValidateKey(key); err != nil {
		return err
	}
	if n := len(b.full(key)); n > backends.MaxKeyLen {
		return fmt.Errorf("%w: %d bytes with the prefix %q; S3 takes at most %d", backends.ErrInvalidKey, n, b.cfg.Prefix, backends.MaxKeyLen)
	}
	return nil
}

func (b *Backend) full(key string) string {
	if b.cfg.Prefix == "" {
		return key
	}
	return b.cfg.Prefix + "/" + key
}

func (b *Backend) rel(full string) string {
	if b.cfg.Prefix == "" {
		return full
	}
	return strings.TrimPrefix(full, b.cfg.Prefix+"/")
}

// unsigned sends a request's body as UNSIGNED-PAYLOAD and tries it once: a
// streamed body can be neither hashed ahead nor rewound for a retry.
var unsigned = []func(*s3.Options){
	s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware),
	func(o *s3.Options) { o.RetryMaxAttempts = 1 },
}

// unsignedRetried sends a body held in memory (a buffered part) as
// UNSIGNED-PAYLOAD with the configured retries: the SDK rewinds it for
// each attempt.
var unsignedRetried = []func(*s3.Options){
	s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware),
}

// bodyOptions picks the options for a request's body: retried when the
// SDK can rewind it, tried once when it is a stream.
func bodyOptions(body io.Reader) []func(*s3.Options) {
	if _, ok := body.(io.Seeker); ok {
		return unsignedRetried
	}
	return unsigned
}

// checkClass maps "" to the default class and refuses unknown names.
func checkClass(class string) (types.StorageClass, error) {
	if class == "" {
		return types.StorageClassStandard, nil
	}
	sc := types.StorageClass(class)
	if !slices.Contains(sc.Values(), sc) {
		return "", fmt.Errorf("storage class %q: %w (S3 classes: %v)", class, backends.ErrUnsupported, sc.Values())
	}
	return sc, nil
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := b.checkKey(key); err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := backends.ValidateMetadata(opts.Metadata); err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
	}
	class, err := checkClass(opts.Class)
	if err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
	}
	var n int64
	switch {
	case size >= 0 && size <= b.cfg.MultipartThreshold:
		body := newExact(r, size)
		if size == 0 {
			// Nothing will be read for the request: check r is empty now.
			if err := body.moreAfter(nil); err != nil {
				return backends.ObjectInfo{}, b.wrap("put", key, err)
			}
		}
		err = b.putSingle(ctx, key, body, size, class, opts)
		n = size
	case size >= 0:
		n, err = b.putMultipart(ctx, key, r, size, class, opts)
	default:
		n, err = b.putUnknown(ctx, key, r, class, opts)
	}
	if err != nil {
		return backends.ObjectInfo{}, b.wrap("put", key, err)
	}
	return backends.ObjectInfo{
		Key:      key,
		Size:     n,
		Modified: time.Now().UTC(),
		Class:    string(class),
		Metadata: cloneMetadata(opts.Metadata),
	}, nil
}

func (b *Backend) putSingle(ctx context.Context, key string, body io.Reader, size int64, class types.StorageClass, opts backends.PutOptions) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(b.cfg.Bucket),
		Key:           aws.String(b.full(key)),
		Body:          body,
		ContentLength: aws.Int64(size),
		StorageClass:  class,
		Metadata:      opts.Metadata,
	}
	if opts.IfNotExists {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := b.client.PutObject(ctx, in, bodyOptions(body)...)
	return bodyError(body, err)
}

// bodyError prefers the error the body reader reported (a size mismatch, the
// caller's reader failing) over the SDK's wrapping of it.
func bodyError(body io.Reader, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := body.(*exactReader); ok && e.err != nil {
		return e.err
	}
	return err
}

// multipart is one multipart upload in progress.
type multipart struct {
	b     *Backend
	key   string
	id    *string
	parts []types.CompletedPart
}

func (b *Backend) startMultipart(ctx context.Context, key string, class types.StorageClass, md map[string]string) (*multipart, error) {
	out, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:       aws.String(b.cfg.Bucket),
		Key:          aws.String(b.full(key)),
		StorageClass: class,
		Metadata:     md,
	})
	if err != nil {
		return nil, err
	}
	return &multipart{b: b, key: key, id: out.UploadId}, nil
}

func (m *multipart) upload(ctx context.Context, body io.Reader, n int64) error {
	num := int32(len(m.parts) + 1)
	out, err := m.b.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        aws.String(m.b.cfg.Bucket),
		Key:           aws.String(m.b.full(m.key)),
		UploadId:      m.id,
		PartNumber:    aws.Int32(num),
		Body:          body,
		ContentLength: aws.Int64(n),
	}, bodyOptions(body)...)
	if err != nil {
		return bodyError(body, err)
	}
	m.parts = append(m.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	return nil
}

func (m *multipart) complete(ctx context.Context, ifNotExists bool) error {
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(m.b.cfg.Bucket),
		Key:             aws.String(m.b.full(m.key)),
		UploadId:        m.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: m.parts},
	}
	if ifNotExists {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := m.b.client.CompleteMultipartUpload(ctx, in)
	return err
}

// abort cancels the upload so its parts never become visible; it runs on
// its own context, as the caller's is often the one that was cancelled.
func (m *multipart) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), m.b.cfg.Timeout)
	defer cancel()
	_, _ = m.b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(m.b.cfg.Bucket),
		Key:      aws.String(m.b.full(m.key)),
		UploadId: m.id,
	})
}

// putMultipart uploads an object of known size in streamed parts.
func (b *Backend) putMultipart(ctx context.Context, key string, r io.Reader, size int64, class types.StorageClass, opts backends.PutOptions) (int64, error) {
	partSize := max(b.cfg.PartSize, (size+maxParts-1)/maxParts)
	m, err := b.startMultipart(ctx, key, class, opts.Metadata)
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			m.abort()
		}
	}()
	for left := size; left > 0; {
		n := min(partSize, left)
		left -= n
		// The last part also checks that r ends there.
		part := &exactReader{r: r, left: n, mustEnd: left == 0}
		if err := m.upload(ctx, part, n); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := m.complete(ctx, opts.IfNotExists); err != nil {
		return 0, err
	}
	ok = true
	return size, nil
}

// putUnknown uploads an object of unknown size: one buffered PutObject when
// it fits in a part, else a multipart upload of buffered parts (part sizes
// grow every 1000 parts, so 10,000 parts hold 55,000 x PartSize).
func (b *Backend) putUnknown(ctx context.Context, key string, r io.Reader, class types.StorageClass, opts backends.PutOptions) (int64, error) {
	bufp := b.parts.Get().(*[]byte)
	defer b.parts.Put(bufp)
	buf := *bufp
	n, err := io.ReadFull(r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return int64(n), b.putSingle(ctx, key, bytes.NewReader(buf[:n]), int64(n), class, opts)
	case err != nil:
		return 0, err
	}
	m, err := b.startMultipart(ctx, key, class, opts.Metadata)
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			m.abort()
		}
	}()
	total := int64(0)
	for {
		if err := m.upload(ctx, bytes.NewReader(buf[:n]), int64(n)); err != nil {
			return 0, err
		}
		total += int64(n)
		if n < len(buf) {
			break
		}
		if len(m.parts) == maxParts {
			return 0, fmt.Errorf("object larger than %d bytes: too many parts for an upload of unknown size", total)
		}
		want := b.cfg.PartSize * int64(1+len(m.parts)/1000)
		if int64(len(buf)) < want {
			buf = make([]byte, want)
		}
		n, err = io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := m.complete(ctx, opts.IfNotExists); err != nil {
		return 0, err
	}
	ok = true
	return total, nil
}

// exactReader yields exactly left bytes of r. It fails with
// backends.ErrSizeMismatch when r ends early, and, when mustEnd is set
// (always for a whole object), when r has more: that is checked before the
// last byte is handed on, so the store never receives a complete body.
type exactReader struct {
	r       io.Reader
	left    int64
	mustEnd bool
	err     error
	probe   [1]byte
}

func newExact(r io.Reader, n int64) *exactReader { return &exactReader{r: r, left: n, mustEnd: true} }

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	// The last bytes go on only once r is known to end after them.
	if n > 0 && int64(n) == e.left && e.mustEnd {
		if extra := e.moreAfter(err); extra != nil {
			return 0, e.fail(extra)
		}
		e.left = 0
		return n, nil
	}
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		return n, e.fail(fmt.Errorf("%w: the stream ended %d bytes early", backends.ErrSizeMismatch, e.left))
	case err == io.EOF:
		return n, nil
	case err != nil:
		return n, e.fail(err)
	}
	return n, nil
}

// moreAfter checks, after the declared bytes, that r has nothing more. err
// is what the read of the last bytes returned.
func (e *exactReader) moreAfter(err error) error {
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	for range 100 {
		n, err := e.r.Read(e.probe[:])
		if n > 0 {
			return fmt.Errorf("%w: the stream is longer than declared", backends.ErrSizeMismatch)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (e *exactReader) fail(err error) error {
	e.err = err
	return err
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := b.checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3 get %q: negative offset %d", key, off)
	}
	if length == 0 {
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusRequestedRangeNotSatisfiable {
			// The offset is at or past the end (or the object is empty).
			if _, err := b.Stat(ctx, key); err != nil {
				return nil, err
			}
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.wrap("get", key, err)
	}
	return backends.ContextReader(ctx, out.Body), nil
}

// Stat implements backends.Backend.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.checkKey(key); err != nil {
		return backends.ObjectInfo{}, err
	}
	info, err := b.head(ctx, key)
	if err != nil {
		return backends.ObjectInfo{}, b.wrap("stat", key, err)
	}
	return info, nil
}

func (b *Backend) head(ctx context.Context, key string) (backends.ObjectInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))})
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	info := backends.ObjectInfo{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		Modified: aws.ToTime(out.LastModified),
		Class:    string(out.StorageClass),
		Metadata: cloneMetadata(out.Metadata),
	}
	if info.Class == "" {
		info.Class = string(types.StorageClassStandard) // S3 omits the header for STANDARD
	}
	return info, nil
}

// listHeads bounds the HeadObject calls List runs at once.
const listHeads = 16

// List implements backends.Backend. ListObjectsV2 returns keys in UTF-8
// byte order; the metadata of each comes from a HeadObject (run listHeads
// at a time, delivered in order). An object deleted between the listing and
// its HeadObject is left out.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	full := b.full(prefix)
	if prefix == "" && b.cfg.Prefix != "" {
		full = b.cfg.Prefix + "/"
	}
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(full)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.wrap("list", prefix, err)
		}
		var keys []string
		for _, o := range page.Contents {
			// SeaweedFS treats a prefix's double slash as one; S3 does not.
			if k := aws.ToString(o.Key); strings.HasPrefix(k, full) {
				keys = append(keys, b.rel(k))
			}
		}
		infos := make([]backends.ObjectInfo, len(keys))
		errs := make([]error, len(keys))
		sem := make(chan struct{}, listHeads)
		var wg sync.WaitGroup
		for i, key := range keys {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				infos[i], errs[i] = b.head(ctx, key)
			})
		}
		wg.Wait()
		for i := range infos {
			if err := errs[i]; err != nil {
				if isNotFound(err) {
					continue
				}
				return b.wrap("list", prefix, err)
			}
			if err := fn(infos[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements backends.Backend: one DeleteObject, which S3 answers
// with success for an absent key too.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.checkKey(key); err != nil {
		return err
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))})
	if err != nil {
		return b.wrap("delete", key, err)
	}
	return nil
}

// SetClass implements backends.Backend: CopyObject onto itself with the new
// class and the metadata copied (S3 changes a class no other way). A class
// the object already has is left alone (S3 refuses such a copy).
func (b *Backend) SetClass(ctx context.Context, key, class string) error {
	if err := b.checkKey(key); err != nil {
		return err
	}
	sc, err := checkClass(class)
	if err != nil {
		return fmt.Errorf("s3 set class %q: %w", key, err)
	}
	info, err := b.head(ctx, key)
	if err != nil {
		return b.wrap("set class", key, err)
	}
	if info.Class == string(sc) {
		return nil
	}
	src := (&url.URL{Path: b.cfg.Bucket + "/" + b.full(key)}).EscapedPath()
	_, err = b.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(b.cfg.Bucket),
		Key:               aws.String(b.full(key)),
		CopySource:        aws.String(src),
		StorageClass:      sc,
		MetadataDirective: types.MetadataDirectiveCopy,
	})
	if err != nil {
		return b.wrap("set class", key, err)
	}
	return nil
}

// wrap turns SDK errors into the shared ones, with the operation and key.
func (b *Backend) wrap(op, key string, err error) error {
	switch {
	case errors.Is(err, backends.ErrSizeMismatch), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3 %s %q: %w", op, key, err)
	case isNotFound(err):
		return fmt.Errorf("s3 %s %q: %w", op, key, backends.ErrNotFound)
	case status(err) == http.StatusPreconditionFailed || apiCode(err) == "ConditionalRequestConflict":
		return fmt.Errorf("s3 %s %q: %w", op, key, backends.ErrExists)
	case apiCode(err) == "InvalidObjectState":
		return fmt.Errorf("s3 %s %q: %w: the object is in an archive storage class and must be restored (S3 RestoreObject) before it can be read", op, key, backends.ErrArchived)
	}
	return fmt.Errorf("s3 %s %q on %s: %w", op, key, b.name, err)
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	return status(err) == http.StatusNotFound && apiCode(err) != "NoSuchBucket"
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func cloneMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[strings.ToLower(k)] = v
	}
	return out
}
