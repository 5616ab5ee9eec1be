package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/walgate/walgate/backends"
)

// The storage classes: Azure's access tiers, by their own names.
const (
	ClassHot     = "Hot"
	ClassCool    = "Cool"
	ClassCold    = "Cold"
	ClassArchive = "Archive"
)

// ErrArchived is returned by Get for a blob in the Archive tier: Azure
// serves no data from it until it is rehydrated (SetClass to Hot, Cool or
// Cold, which takes hours on Azure). It wraps backends.ErrArchived and
// backends.ErrUnsupported.
var ErrArchived = fmt.Errorf("blob is in the Archive tier and must be rehydrated (SetClass to %s, %s or %s; hours on Azure) before Azure serves it: %w: %w",
	ClassHot, ClassCool, ClassCold, backends.ErrArchived, backends.ErrUnsupported)

// errClosed is returned by every method called after Close.
var errClosed = errors.New("backend is closed")

const (
	// maxBlobNameLen is Azure's limit on a blob name, in characters.
	maxBlobNameLen = 1024
	// metadataPrefix starts the Azure name of every metadata key walgate
	// writes; see encodeMetadata.
	metadataPrefix = "wg_"
	// putIDKey is the Azure metadata that marks an object written with
	// IfNotExists with the ID of the Put that wrote it (see ownCommit).
	// Without the "wg_" prefix, Stat and List do not return it.
	putIDKey = "wgput"
	// firstBlockBuffer is where the buffer of a Put of unknown size
	// starts; it doubles up to the block size.
	firstBlockBuffer = 64 << 10
	// readRetries is how often a Get body that breaks (or times out) is
	// resumed with a ranged request of the same blob version.
	readRetries = 3
)

// Backend stores objects as block blobs in one Azure container. See the
// package documentation.
type Backend struct {
	cont      *container.Client
	prefix    string // "" or Config.Prefix + "/"
	name      string
	blockSize int64
	closed    atomic.Bool
}

var _ backends.Backend = (*Backend)(nil)

// New returns a Backend for cfg. It checks cfg but does not contact Azure:
// a wrong credential or a missing container shows at the first request.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{TryTimeout: cfg.Timeout},
	}}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint == "" {
		endpoint = "https://" + cfg.Account + ".blob.core.windows.net"
	}
	containerURL := endpoint + "/" + cfg.Container
	var c *container.Client
	var err error
	switch {
	case cfg.ConnectionString != "":
		c, err = container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, opts)
		if err != nil {
			// The SDK's message could quote the string; ours does not.
			return nil, errors.New("azure: connection_string is malformed: want AccountName=...;AccountKey=... " +
				"or BlobEndpoint=...;SharedAccessSignature=...")
		}
	case cfg.AccountKey != "":
		cred, cerr := container.NewSharedKeyCredential(cfg.Account, cfg.AccountKey)
		if cerr != nil {
			return nil, errors.New("azure: account_key is not a valid shared key")
		}
		c, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	default:
		c, err = container.NewClientWithNoCredential(containerURL+"?"+cfg.SASToken, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("azure: %w", sanitize(err))
	}
	prefix := ""
	if cfg.Prefix != "" {
		prefix = cfg.Prefix + "/"
	}
	return &Backend{
		cont:      c,
		prefix:    prefix,
		name:      "azure:" + cfg.Container + "/" + cfg.Prefix,
		blockSize: cfg.BlockSize,
	}, nil
}

// Name returns "azure:<container>/<prefix>".
func (b *Backend) Name() string { return b.name }

// Close marks the backend closed; later calls fail.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}

func (b *Backend) checkOpen() error {
	if b.closed.Load() {
		return errClosed
	}
	return nil
}

// opErr wraps err with the operation and key, as every backend does.
func opErr(op, key string, err error) error {
	return fmt.Errorf("azure %s %q: %w", op, key, err)
}

// blobName checks key and returns the name of its blob.
func (b *Backend) blobName(key string) (string, error) {
	if err := backends.ValidateKey(key); err != nil {
		return "", err
	}
	name := b.prefix + key
	if n := utf8.RuneCountInString(name); n > maxBlobNameLen {
		return "", fmt.Errorf("blob name (prefix %q and key) has %d characters, Azure allows %d: %w",
			b.prefix, n, maxBlobNameLen, backends.ErrUnsupported)
	}
	return name, nil
}

// parseClass maps a class name to its tier; "" is nil (the account's
// default tier).
func parseClass(class string) (*blob.AccessTier, error) {
	var t blob.AccessTier
	switch class {
	case "":
		return nil, nil
	case ClassHot:
		t = blob.AccessTierHot
	case ClassCool:
		t = blob.AccessTierCool
	case ClassCold:
		t = blob.AccessTierCold
	case ClassArchive:
		t = blob.AccessTierArchive
	default:
		return nil, fmt.Errorf("storage class %q (Azure knows %s, %s, %s and %s): %w",
			class, ClassHot, ClassCool, ClassCold, ClassArchive, backends.ErrUnsupported)
	}
	return &t, nil
}

// Put streams r into a block blob. An object of at most BlockSize bytes
// is one Put Blob request; a larger one is staged block by block (one
// block in memory at a time) and made visible by Put Block List. Staged
// blocks nobody commits stay invisible and Azure drops them within a week.
// IfNotExists is an If-None-Match: * condition on that last request.
//
// Two Puts of one key that overlap in time and both stage blocks may make
// one fail (Azure drops a blob's uncommitted blocks at every commit); at
// most one of them wins, as with IfNotExists.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	info, err := b.put(ctx, key, r, size, opts)
	if err != nil {
		return backends.ObjectInfo{}, opErr("put", key, err)
	}
	return info, nil
}

func (b *Backend) put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, err
	}
	name, err := b.blobName(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := backends.ValidateMetadata(opts.Metadata); err != nil {
		return backends.ObjectInfo{}, err
	}
	tier, err := parseClass(opts.Class)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if size < -1 {
		return backends.ObjectInfo{}, fmt.Errorf("invalid size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}
	var cond *blob.AccessConditions
	if opts.IfNotExists {
		cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}}
	}
	var putID [16]byte // makes this Put's block IDs (and its object) its own
	_, _ = rand.Read(putID[:])
	md := encodeMetadata(opts.Metadata)
	if opts.IfNotExists {
		if md == nil {
			md = map[string]*string{}
		}
		md[putIDKey] = to(hex.EncodeToString(putID[:]))
	}
	bb := b.cont.NewBlockBlobClient(name)

	var (
		blk     = newBlock(b.blockSize, size)
		n       int64    // bytes read so far
		ids     []string // staged blocks
		lastMod *time.Time
	)
	for {
		eof, err := blk.fill(ctx, r, size, n)
		n += int64(len(blk.data))
		if err != nil {
			return backends.ObjectInfo{}, err
		}
		if eof && size >= 0 && n != size {
			return backends.ObjectInfo{}, fmt.Errorf("reader yielded %d bytes, %d declared: %w", n, size, backends.ErrSizeMismatch)
		}
		if eof && ids == nil {
			// The whole object fits in one block: one request.
			if err := ctx.Err(); err != nil {
				return backends.ObjectInfo{}, err
			}
			resp, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(blk.data)), &blockblob.UploadOptions{
				Metadata: md, Tier: tier, AccessConditions: cond,
			})
			err = translate(err, opts.IfNotExists)
			if err == nil {
				lastMod = resp.LastModified
				break
			}
			if errors.Is(err, backends.ErrExists) {
				if mod, ours := b.ownCommit(ctx, bb, putID); ours {
					lastMod = mod
					break
				}
			}
			switch {
			case errors.Is(err, backends.ErrExists) && b.onlyUncommitted(ctx, bb):
				// Put Blob with If-None-Match: * is refused while the
				// uncommitted blocks of an earlier, failed Put linger
				// (Azurite does so; Azure may). Put Block List checks
				// committed blobs only: commit the data as one block.
			case errors.Is(err, ErrArchived):
				// Put Blob does not replace an archived blob (Azurite;
				// Azure may agree); Put Block List does.
			default:
				return backends.ObjectInfo{}, err
			}
		}
		if len(blk.data) > 0 {
			id := blockID(putID, len(ids))
			if _, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(blk.data)), nil); err != nil {
				return backends.ObjectInfo{}, fmt.Errorf("staging block %d: %w", len(ids), translate(err, false))
			}
			ids = append(ids, id)
		}
		if eof {
			// The last moment a cancellation can still leave nothing.
			if err := ctx.Err(); err != nil {
				return backends.ObjectInfo{}, err
			}
			resp, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
				Metadata: md, Tier: tier, AccessConditions: cond,
			})
			err = translate(err, opts.IfNotExists)
			if err == nil {
				lastMod = resp.LastModified
				break
			}
			if errors.Is(err, backends.ErrExists) {
				if mod, ours := b.ownCommit(ctx, bb, putID); ours {
					lastMod = mod
					break
				}
			}
			if opts.IfNotExists && bloberror.HasCode(err, bloberror.InvalidBlockList) && !b.onlyUncommitted(ctx, bb) {
				// A concurrent Put committed first, and the commit
				// dropped our staged blocks.
				err = fmt.Errorf("%w (our staged blocks were dropped by its commit: %v)", backends.ErrExists, err)
			}
			return backends.ObjectInfo{}, fmt.Errorf("committing %d blocks: %w", len(ids), err)
		}
	}
	info := backends.ObjectInfo{Key: key, Size: n, Class: opts.Class, Metadata: copyMetadata(opts.Metadata)}
	if lastMod != nil {
		info.Modified = *lastMod
	}
	return info, nil
}

// ownCommit reports whether the blob under bb is the one this Put (putID)
// wrote: when the answer to a conditional write is lost and the SDK
// retries, the retry finds the first attempt's blob and is refused.
func (b *Backend) ownCommit(ctx context.Context, bb *blockblob.Client, putID [16]byte) (*time.Time, bool) {
	p, err := bb.GetProperties(ctx, nil)
	if err != nil {
		return nil, false
	}
	for k, v := range p.Metadata {
		if strings.EqualFold(k, putIDKey) && v != nil && *v == hex.EncodeToString(putID[:]) {
			return p.LastModified, true
		}
	}
	return nil, false
}

// onlyUncommitted reports whether no committed blob exists under bb (so a
// conflict came from uncommitted blocks).
func (b *Backend) onlyUncommitted(ctx context.Context, bb *blockblob.Client) bool {
	_, err := bb.GetProperties(ctx, nil)
	return errors.Is(translate(err, false), backends.ErrNotFound)
}

// blockID is the base64 ID of block i of the Put putID; all IDs of a blob
// have the same length, as Azure requires.
func blockID(putID [16]byte, i int) string {
	var raw [20]byte
	copy(raw[:], putID[:])
	binary.BigEndian.PutUint32(raw[16:], uint32(i))
	return base64.StdEncoding.EncodeToString(raw[:])
}

// block is the one buffer a Put reads into.
type block struct {
	buf  []byte
	data []byte // what the last fill read
	max  int
}

// newBlock sizes the buffer: up to blockSize, no more than a known size
// needs (plus the byte that tells a long reader), and growing from
// firstBlockBuffer when the size is unknown.
func newBlock(blockSize, size int64) *block {
	n := blockSize
	switch {
	case size >= 0 && size+1 < n:
		n = size + 1
	case size < 0 && firstBlockBuffer < n:
		n = firstBlockBuffer
	}
	return &block{buf: make([]byte, n), max: int(blockSize)}
}

// fill reads the next block, checking ctx before every read and reading at
// most one byte past size (-1: unknown). It reports whether r is at its end.
func (bl *block) fill(ctx context.Context, r io.Reader, size, done int64) (eof bool, err error) {
	bl.data = bl.buf[:0]
	for {
		if len(bl.data) == len(bl.buf) {
			if len(bl.buf) >= bl.max {
				return false, nil
			}
			nb := make([]byte, min(2*len(bl.buf), bl.max))
			bl.data = nb[:copy(nb, bl.data)]
			bl.buf = nb
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		p := bl.buf[len(bl.data):]
		if size >= 0 {
			if left := size - done - int64(len(bl.data)) + 1; left < int64(len(p)) {
				p = p[:max(left, 0)]
			}
		}
		m, rerr := r.Read(p)
		bl.data = bl.data[:len(bl.data)+m]
		if size >= 0 && done+int64(len(bl.data)) > size {
			return false, fmt.Errorf("reader yielded more than the declared %d bytes: %w", size, backends.ErrSizeMismatch)
		}
		if rerr == io.EOF {
			return true, nil
		}
		if rerr != nil {
			return false, fmt.Errorf("reading object data: %w", rerr)
		}
	}
}

// Get opens the blob for reading from off, at most length bytes (length <
// 0: to the end). An offset at or past the end yields an empty reader. A
// blob in the Archive tier gives ErrArchived. A read that breaks is resumed
// from the same version of the blob (If-Match on its ETag) up to three
// times.
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
	name, err := b.blobName(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("negative offset %d", off)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bb := b.cont.NewBlockBlobClient(name)
	empty := func() (io.ReadCloser, error) {
		// Nothing to read, but the blob must exist.
		if _, err := bb.GetProperties(ctx, nil); err != nil {
			return nil, translate(err, false)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length == 0 {
		return empty()
	}
	rng := blob.HTTPRange{Offset: off}
	if length > 0 {
		rng.Count = length
	}
	resp, err := bb.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		return empty() // off at or past the end
	}
	if err != nil {
		return nil, translate(err, false)
	}
	rr := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: readRetries})
	return &objectReader{ctx: ctx, key: key, rc: rr}, nil
}

// objectReader is what Get returns: the blob's body that fails once ctx is
// done and whose errors carry no URL query (a SAS).
type objectReader struct {
	ctx context.Context
	key string
	rc  io.ReadCloser
}

func (o *objectReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, opErr("get", o.key, err)
	}
	n, err := o.rc.Read(p)
	if err != nil && err != io.EOF {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusPreconditionFailed {
			// The resumed request asked for the version being read.
			return n, opErr("get", o.key, fmt.Errorf("connection lost and the object was replaced meanwhile: %w", translate(err, false)))
		}
		err = opErr("get", o.key, translate(err, false))
	}
	return n, err
}

func (o *objectReader) Close() error { return o.rc.Close() }

// Stat returns the blob's size, modification time, tier and metadata.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	info, err := b.stat(ctx, key)
	if err != nil {
		return backends.ObjectInfo{}, opErr("stat", key, err)
	}
	return info, nil
}

func (b *Backend) stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, err
	}
	name, err := b.blobName(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}
	p, err := b.cont.NewBlockBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return backends.ObjectInfo{}, translate(err, false)
	}
	info := backends.ObjectInfo{Key: key, Metadata: decodeMetadata(p.Metadata)}
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.Modified = *p.LastModified
	}
	if p.AccessTier != nil {
		info.Class = *p.AccessTier
	}
	return info, nil
}

// List calls fn for every blob under the backend's prefix and prefix, in
// the lexical order Azure lists them in.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := b.list(ctx, prefix, fn); err != nil {
		return fmt.Errorf("azure list %q: %w", prefix, err)
	}
	return nil
}

func (b *Backend) list(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	full := b.prefix + prefix
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if full != "" {
		opts.Prefix = &full
	}
	pager := b.cont.NewListBlobsFlatPager(opts)
	for pager.More() {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			return translate(err, false)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || !strings.HasPrefix(*item.Name, b.prefix) {
				continue
			}
			info := backends.ObjectInfo{Key: strings.TrimPrefix(*item.Name, b.prefix), Metadata: decodeMetadata(item.Metadata)}
			if p := item.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
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

// Delete removes the blob; an absent blob is no error (a blob with
// snapshots cannot be deleted; walgate makes none).
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.delete(ctx, key); err != nil {
		return opErr("delete", key, err)
	}
	return nil
}

func (b *Backend) delete(ctx context.Context, key string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	name, err := b.blobName(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = b.cont.NewBlockBlobClient(name).Delete(ctx, nil)
	if err = translate(err, false); errors.Is(err, backends.ErrNotFound) {
		return nil // absent already; a missing container is still an error
	}
	return err
}

// SetClass sets the blob's access tier in place (Set Blob Tier); "" means
// Hot. Leaving Archive starts a rehydration, which takes hours on Azure:
// Stat reports Archive until it is done.
func (b *Backend) SetClass(ctx context.Context, key, class string) error {
	if err := b.setClass(ctx, key, class); err != nil {
		return opErr("set class", key, err)
	}
	return nil
}

func (b *Backend) setClass(ctx context.Context, key, class string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	name, err := b.blobName(key)
	if err != nil {
		return err
	}
	tier, err := parseClass(class)
	if err != nil {
		return err
	}
	if tier == nil {
		tier = to(blob.AccessTierHot)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = b.cont.NewBlockBlobClient(name).SetTier(ctx, *tier, nil)
	return translate(err, false)
}

// encodeMetadata maps walgate's metadata keys ([a-z0-9-]) to Azure's,
// which must be C# identifiers and are case-insensitive: "wg_" and the key
// with '-' as '_'. Values are stored as given, except that '%' and a
// leading or trailing space (which HTTP headers lose) are percent-encoded.
func encodeMetadata(md map[string]string) map[string]*string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]*string, len(md))
	for k, v := range md {
		out[metadataPrefix+strings.ReplaceAll(k, "-", "_")] = to(encodeValue(v))
	}
	return out
}

// decodeMetadata inverts encodeMetadata, whatever case the names come back
// in (Go's header canonicalisation capitalises them). Metadata walgate did
// not write (without the "wg_" prefix) is left out.
func decodeMetadata(md map[string]*string) map[string]string {
	var out map[string]string
	for k, v := range md {
		k = strings.ToLower(k)
		if !strings.HasPrefix(k, metadataPrefix) || v == nil {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
		}
		out[strings.ReplaceAll(k[len(metadataPrefix):], "_", "-")] = decodeValue(*v)
	}
	return out
}

func encodeValue(v string) string {
	if !strings.Contains(v, "%") && !strings.HasPrefix(v, " ") && !strings.HasSuffix(v, " ") {
		return v
	}
	var sb strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '%':
			sb.WriteString("%25")
		case c == ' ' && (strings.TrimLeft(v[:i], " ") == "" || strings.TrimRight(v[i:], " ") == ""):
			sb.WriteString("%20")
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

func decodeValue(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

func copyMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}

// translate turns an SDK error into one wrapping the shared errors, short
// and without secrets. exists says whether a failed If-None-Match means
// ErrExists.
func translate(err error, exists bool) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return sanitize(err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return sanitize(err)
	}
	code := bloberror.Code(re.ErrorCode)
	var kind error
	switch {
	case code == bloberror.ContainerNotFound:
		return &storeError{status: re.StatusCode, code: re.ErrorCode, why: "the container does not exist", err: re}
	case code == bloberror.BlobNotFound || re.StatusCode == http.StatusNotFound:
		kind = backends.ErrNotFound
	case code == bloberror.BlobArchived:
		kind = ErrArchived
	case exists && (code == bloberror.BlobAlreadyExists || code == bloberror.ConditionNotMet ||
		re.StatusCode == http.StatusPreconditionFailed):
		kind = backends.ErrExists
	case re.StatusCode == http.StatusForbidden:
		return &storeError{status: re.StatusCode, code: re.ErrorCode, why: "access denied: check the credential, its permissions and the clock", err: re}
	}
	return &storeError{status: re.StatusCode, code: re.ErrorCode, kind: kind, err: re}
}

// storeError is an error answer of Azure: a one-line message, wrapping
// the shared error it means and the SDK's error.
type storeError struct {
	status int
	code   string
	why    string
	kind   error // a shared error, or nil
	err    error
}

func (e *storeError) Error() string {
	msg := fmt.Sprintf("Azure answered %d %s", e.status, e.code)
	if e.why != "" {
		msg += ": " + e.why
	}
	if e.kind != nil {
		msg = e.kind.Error() + " (" + msg + ")"
	}
	return msg
}

func (e *storeError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.err}
}

// sanitize drops the query (a SAS) from the URL of a transport error.
func sanitize(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if p, perr := url.Parse(u); perr == nil {
		p.RawQuery, p.User = "", nil
		u = p.String()
	} else if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}

func to[T any](v T) *T { return &v }
