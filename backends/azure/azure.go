package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/walgate/walgate/backends"
)

// Backend stores objects in one container under a prefix. Safe for
// concurrent use.
type Backend struct {
	cfg  Config
	c    *container.Client
	name string
	bufs sync.Pool // *[]byte of cfg.BlockSize
}

// New checks cfg and builds the client. It does not contact the store.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("azure backend: %w", err)
	}
	cfg = cfg.withDefaults()
	opts := &container.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: int32(cfg.MaxAttempts - 1), TryTimeout: cfg.Timeout},
	}}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://" + cfg.Account + ".blob.core.windows.net"
	}
	curl := strings.TrimSuffix(endpoint, "/") + "/" + cfg.Container
	var (
		c   *container.Client
		err error
	)
	switch {
	case cfg.ConnectionString != "":
		c, err = container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, opts)
	case cfg.AccountKey != "":
		var cred *azblob.SharedKeyCredential
		if cred, err = azblob.NewSharedKeyCredential(cfg.Account, cfg.AccountKey); err == nil {
			c, err = container.NewClientWithSharedKeyCredential(curl, cred, opts)
		}
	default:
		c, err = container.NewClientWithNoCredential(curl+"?"+strings.TrimPrefix(cfg.SASToken, "?"), opts)
	}
	if err != nil {
		// The SDK's messages about keys and connection strings do not
		// quote the secret; keep it that way by not adding the config.
		return nil, fmt.Errorf("azure backend: %w", err)
	}
	name := "azure:" + cfg.Container
	if cfg.Account != "" {
		name = "azure:" + cfg.Account + "/" + cfg.Container
	}
	if cfg.Prefix != "" {
		name += "/" + cfg.Prefix
	}
	b := &Backend{cfg: cfg, c: c, name: name}
	b.bufs.New = func() any { buf := make([]byte, cfg.BlockSize); return &buf }
	return b, nil
}

// Name implements backends.Backend.
func (b *Backend) Name() string { return b.name }

// Close implements backends.Backend.
func (b *Backend) Close() error { return nil }

func (b *Backend) full(key string) string {
	if b.cfg.Prefix == "" {
		return key
	}
	return b.cfg.Prefix + "/" + key
}

func (b *Backend) checkKey(key string) error {
	if err := backends.ValidateKey(key); err != nil {
		return err
	}
	if n := len(b.full(key)); n > backends.MaxKeyLen {
		return fmt.Errorf("%w: %d bytes with the prefix %q; at most %d", backends.ErrInvalidKey, n, b.cfg.Prefix, backends.MaxKeyLen)
	}
	return nil
}

// tier maps a class name to an access tier ("" = the account default).
func (b *Backend) tier(class string) (*blob.AccessTier, error) {
	if class == "" {
		return nil, nil
	}
	for _, t := range []blob.AccessTier{blob.AccessTierHot, blob.AccessTierCool, blob.AccessTierCold, blob.AccessTierArchive} {
		if strings.EqualFold(string(t), class) {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("access tier %q: %w (Azure tiers: Hot, Cool, Cold, Archive)", class, backends.ErrUnsupported)
}

// metadata names: "content-id" <-> "wg_content_id".
const metaPrefix = "wg_"

func toAzure(md map[string]string) map[string]*string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]*string, len(md))
	for k, v := range md {
		out[metaPrefix+strings.ReplaceAll(k, "-", "_")] = &v
	}
	return out
}

func fromAzure(md map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		k = strings.ToLower(k)
		if !strings.HasPrefix(k, metaPrefix) || v == nil {
			continue
		}
		out[strings.ReplaceAll(strings.TrimPrefix(k, metaPrefix), "_", "-")] = *v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := b.checkKey(key); err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := backends.ValidateMetadata(opts.Metadata); err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("azure put %q: %w", key, err)
	}
	tier, err := b.tier(opts.Class)
	if err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("azure put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("azure put %q: %w", key, err)
	}
	n, err := b.put(ctx, key, r, size, tier, opts)
	if err != nil {
		return backends.ObjectInfo{}, b.wrap("put", key, err)
	}
	class := "Hot"
	if tier != nil {
		class = string(*tier)
	}
	return backends.ObjectInfo{Key: key, Size: n, Modified: time.Now().UTC(), Class: class, Metadata: cloneMetadata(opts.Metadata)}, nil
}

func (b *Backend) put(ctx context.Context, key string, r io.Reader, size int64, tier *blob.AccessTier, opts backends.PutOptions) (int64, error) {
	bb := b.c.NewBlockBlobClient(b.full(key))
	var cond *blob.AccessConditions
	if opts.IfNotExists {
		cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}}
	}
	md := toAzure(opts.Metadata)
	bufp := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(bufp)
	buf := *bufp

	var total int64
	// next reads the next block: full, or short at the end of the stream.
	next := func(want int64) ([]byte, bool, error) {
		if size >= 0 {
			want = min(want, size-total)
		}
		if int64(len(buf)) < want {
			buf = make([]byte, want)
		}
		n, err := io.ReadFull(r, buf[:want])
		total += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if size >= 0 && total != size {
				return nil, false, fmt.Errorf("%w: the stream ended after %d of %d bytes", backends.ErrSizeMismatch, total, size)
			}
			return buf[:n], true, nil
		case err != nil:
			return nil, false, err
		}
		if size >= 0 && total == size {
			// Declared end: the stream must end here too.
			if err := mustEnd(r); err != nil {
				return nil, false, err
			}
			return buf[:n], true, nil
		}
		return buf[:n], false, nil
	}

	block, last, err := next(b.cfg.BlockSize)
	if err != nil {
		return 0, err
	}
	if last {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(block)), &blockblob.UploadOptions{
			Metadata: md, Tier: tier, AccessConditions: cond,
		})
		return total, err
	}
	// Block IDs: one random upload ID and a counter, all the same length.
	var upload [12]byte
	if _, err := rand.Read(upload[:]); err != nil {
		return 0, err
	}
	var ids []string
	for {
		if len(ids) == maxBlocks {
			return 0, fmt.Errorf("object larger than %d bytes: too many blocks", total)
		}
		var raw [16]byte
		copy(raw[:], upload[:])
		binary.BigEndian.PutUint32(raw[12:], uint32(len(ids)))
		id := base64.StdEncoding.EncodeToString(raw[:])
		if _, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(block)), nil); err != nil {
			return 0, err
		}
		ids = append(ids, id)
		if last {
			break
		}
		want := b.cfg.BlockSize << min(len(ids)/10000, 5)
		if block, last, err = next(want); err != nil {
			return 0, err
		}
		if len(block) == 0 {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	_, err = bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{Metadata: md, Tier: tier, AccessConditions: cond})
	return total, err
}

// mustEnd checks that r has no byte left.
func mustEnd(r io.Reader) error {
	var one [1]byte
	for range 100 {
		n, err := r.Read(one[:])
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

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := b.checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("azure get %q: negative offset %d", key, off)
	}
	if length == 0 {
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	opts := &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off}}
	if length > 0 {
		opts.Range.Count = length
	}
	resp, err := b.c.NewBlobClient(b.full(key)).DownloadStream(ctx, opts)
	if err != nil {
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			if _, err := b.Stat(ctx, key); err != nil {
				return nil, err
			}
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.wrap("get", key, err)
	}
	return &ctxReader{ctx: ctx, rc: resp.Body}, nil
}

// ctxReader fails reads once ctx is done, even when the bytes have already
// arrived (the SDK's body does not check it per read).
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

// Stat implements backends.Backend.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.checkKey(key); err != nil {
		return backends.ObjectInfo{}, err
	}
	p, err := b.c.NewBlobClient(b.full(key)).GetProperties(ctx, nil)
	if err != nil {
		return backends.ObjectInfo{}, b.wrap("stat", key, err)
	}
	info := backends.ObjectInfo{Key: key, Size: deref(p.ContentLength), Metadata: fromAzure(p.Metadata)}
	if p.LastModified != nil {
		info.Modified = *p.LastModified
	}
	if p.AccessTier != nil {
		info.Class = *p.AccessTier
	}
	return info, nil
}

// List implements backends.Backend. Blobs come in lexical order with their
// metadata.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	full := b.full(prefix)
	if prefix == "" && b.cfg.Prefix != "" {
		full = b.cfg.Prefix + "/"
	}
	pager := b.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full, Include: container.ListBlobsInclude{Metadata: true}})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return b.wrap("list", prefix, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil || !strings.HasPrefix(*it.Name, full) {
				continue
			}
			info := backends.ObjectInfo{Key: *it.Name, Metadata: fromAzure(it.Metadata)}
			if b.cfg.Prefix != "" {
				info.Key = strings.TrimPrefix(*it.Name, b.cfg.Prefix+"/")
			}
			if p := it.Properties; p != nil {
				info.Size = deref(p.ContentLength)
				if p.LastModified != nil {
					info.Modified = *p.LastModified
				}
				if p.AccessTier != nil {
					info.Class = string(*p.AccessTier)
				}
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.checkKey(key); err != nil {
		return err
	}
	if _, err := b.c.NewBlobClient(b.full(key)).Delete(ctx, nil); err != nil {
		return b.wrap("delete", key, err)
	}
	return nil
}

// SetClass implements backends.Backend: Set Blob Tier. The empty class is
// Hot. Moving out of Archive starts a rehydration that takes hours on
// Azure; the blob stays unreadable until it finishes.
func (b *Backend) SetClass(ctx context.Context, key, class string) error {
	if err := b.checkKey(key); err != nil {
		return err
	}
	t, err := b.tier(class)
	if err != nil {
		return fmt.Errorf("azure set class %q: %w", key, err)
	}
	if t == nil {
		t = to(blob.AccessTierHot)
	}
	if _, err := b.c.NewBlobClient(b.full(key)).SetTier(ctx, *t, nil); err != nil {
		return b.wrap("set class", key, err)
	}
	return nil
}

// wrap turns SDK errors into the shared ones, with the operation and key.
func (b *Backend) wrap(op, key string, err error) error {
	var re *azcore.ResponseError
	switch {
	case errors.Is(err, backends.ErrSizeMismatch), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("azure %s %q: %w", op, key, err)
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("azure %s %q: %w", op, key, backends.ErrNotFound)
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return fmt.Errorf("azure %s %q: %w", op, key, backends.ErrExists)
	case bloberror.HasCode(err, bloberror.BlobArchived):
		return fmt.Errorf("azure %s %q: %w: the blob is in the Archive tier; set it to Hot or Cool and wait for the rehydration (hours) before reading", op, key, backends.ErrArchived)
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound && !bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("azure %s %q: %w", op, key, backends.ErrNotFound)
	}
	return fmt.Errorf("azure %s %q on %s: %w", op, key, b.name, err)
}

func to[T any](v T) *T { return &v }

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func cloneMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
