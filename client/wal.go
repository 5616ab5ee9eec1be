package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/pgname"
)

// copyBuf is the buffer size for file and network copies.
const copyBuf = 256 << 10

// PushResult says what the gateway acknowledged.
type PushResult struct {
	Name      string
	Status    string // "stored" or "exists"
	Size      int64  // stored bytes
	PlainSize int64
	SHA256    string
}

// PushWAL archives the WAL file at path: encode it, send it, and return
// only when the gateway acknowledged it durably with the hash we computed.
func (c *Client) PushWAL(ctx context.Context, path string) (PushResult, error) {
	return c.pushWAL(ctx, path, true, nil)
}

// pushWAL is PushWAL; split says whether a segment may be compressed on
// two cores at once (codec.EncodeSplit), which only helps a push that runs
// alone: pushes running beside others keep the cores busy already. With
// slots, the file is encoded only while holding one of them (a send on
// slots), so that pushes beside each other share the CPUs while their
// uploads overlap.
func (c *Client) pushWAL(ctx context.Context, path string, split bool, slots chan struct{}) (PushResult, error) {
	name := filepath.Base(path)
	op := "push " + name
	wf, err := protocol.ValidateWALName(name)
	if err != nil {
		return PushResult{}, &Error{Kind: ErrRejected, Op: op, Message: "not a WAL file name PostgreSQL archives (archive_command must pass %p)", Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return PushResult{}, &Error{Kind: ErrRejected, Op: op, Message: "cannot read the WAL file", Err: err}
	}
	defer f.Close()

	sp := newSpool(c.cfg.TempDir)
	defer sp.Close()
	sent := sha256.New()
	cid := newContentIDs(c)
	if slots != nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return PushResult{}, &Error{Kind: ErrUnavailable, Op: op, Message: "stopped before encoding", Err: ctx.Err()}
		}
	}
	plain, err := encodeFile(io.MultiWriter(sp, sent), cid, f, c.cfg.Compression, c.cfg.Level, c.cfg.Key, split)
	if slots != nil {
		<-slots
	}
	if err != nil {
		return PushResult{}, &Error{Kind: ErrRejected, Op: op, Message: "reading and encoding the WAL file failed", Err: err}
	}
	sum := hex.EncodeToString(sent.Sum(nil))
	encryption := protocol.EncryptionNone
	if c.cfg.Key != nil {
		encryption = protocol.EncryptionLibsodium
	}
	header := map[string]string{
		protocol.HeaderContentSHA256: sum,
		protocol.HeaderCompression:   string(c.cfg.Compression),
		protocol.HeaderEncryption:    encryption,
		protocol.HeaderContentID:     cid.current(),
		protocol.HeaderPlainSize:     strconv.FormatInt(plain, 10),
		"Content-Type":               "application/octet-stream",
	}
	if fp := c.keyFingerprint(); fp != "" {
		header[protocol.HeaderKeyFingerprint] = fp
	}
	maps.Copy(header, systemHeaders(segmentSystem(f, wf)))
	if wf.Kind == pgname.History {
		// The gateway cannot read an encrypted history: say what it holds.
		es, err := readHistory(path, wf.Timeline)
		if err != nil {
			return PushResult{}, &Error{Kind: ErrRejected, Op: op, Message: "the timeline history file is not what PostgreSQL writes", Err: err}
		}
		last := es[len(es)-1]
		header[protocol.HeaderTimelineParent] = strconv.FormatUint(uint64(last.Parent), 10)
		header[protocol.HeaderSwitchLSN] = last.Switch.String()
	}
	resp, err := c.do(ctx, request{
		op: op, method: http.MethodPut, path: protocol.WALPath(c.cfg.Cluster, name),
		header: header,
		body:   func() (io.Reader, int64, error) { return sp.Reader(), sp.Size(), nil },
	})
	if errors.Is(err, ErrConflict) {
		// Archived before: by this host under an earlier key, or by
		// WAL-G before the move, with the same bytes after all?
		// Any doubt (the check failed) leaves the conflict as it is.
		if same, serr := c.sameAsArchived(ctx, op, name, path, cid); serr == nil && same {
			return PushResult{Name: name, Status: "exists", PlainSize: plain}, nil
		}
	}
	if err != nil {
		return PushResult{}, err
	}
	defer resp.Body.Close()
	var res protocol.PutWALResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&res); err != nil {
		return PushResult{}, &Error{Kind: ErrUnavailable, Op: op, Message: "the gateway's acknowledgement is not valid JSON; the segment is not known to be archived", Err: err}
	}
	switch {
	case res.Status == "stored" && (res.SHA256 != sum || res.Size != sp.Size()):
		return PushResult{}, &Error{Kind: ErrIntegrity, Op: op,
			Message: fmt.Sprintf("the gateway stored %d bytes with SHA-256 %s, but %d bytes with %s were sent", res.Size, res.SHA256, sp.Size(), sum)}
	case res.Status == "exists" && !cid.has(res.ContentID):
		return PushResult{}, &Error{Kind: ErrConflict, Op: op, Message: "the gateway reports an earlier copy with different content"}
	case res.Status != "stored" && res.Status != "exists":
		return PushResult{}, &Error{Kind: ErrUnavailable, Op: op, Message: fmt.Sprintf("unexpected acknowledgement status %q", res.Status)}
	}
	return PushResult{Name: name, Status: res.Status, Size: res.Size, PlainSize: plain, SHA256: res.SHA256}, nil
}

// FetchWAL restores the archived WAL file name to dest. dest appears,
// complete and verified, or not at all.
//
// A download that breaks off or whose bytes fail a check (hash, size,
// decoding, decryption, content identity) is fetched again from the
// start: the gateway marks a copy that failed its own check and serves
// another holder's copy on the next request, and answers with an integrity
// error once no good copy is left. Attempts are bounded in number
// (fetchAttempts) and in time (RetryWindow).
func (c *Client) FetchWAL(ctx context.Context, name, dest string) (err error) {
	op := "fetch " + name
	if _, err := protocol.ValidateWALName(name); err != nil {
		return &Error{Kind: ErrRejected, Op: op, Message: "not a WAL file name (restore_command must pass %f)", Err: err}
	}
	// A gateway that began to serve the file proves it archived: should
	// another gateway of the list then answer 404 (a fleet whose members
	// do not share one catalog), that is no end of the archive.
	var served bool
	return c.retryFetch(ctx, func() error {
		err := c.fetchOnce(ctx, op, name, dest, &served)
		if served && errors.Is(err, ErrNotFound) {
			// The 404 is quoted, not wrapped: errors.Is must not find it.
			return &Error{Kind: ErrUnavailable, Op: op, Message: "one gateway began to serve this file and another reports it not archived (" + err.Error() + "); not treating it as the end of the archive"}
		}
		return err
	}, func(time.Duration) {})
}

// RetryWindow bounds the time a fetch spends retrying one object: no new
// attempt starts after it.
const RetryWindow = 2 * time.Minute

// fetchAttempts is how often one object is fetched at most: WALGATE_RETRIES
// more times than once, but at least twice more after a failed check, so
// that a group of three stores can fail over twice.
func (c *Client) fetchAttempts() int { return max(c.cfg.Retries, 2) + 1 }

// retryableFetch reports whether a failed download is worth another try:
// the gateway was unreachable or failing, the transfer broke, or the bytes
// failed a check (another copy may be good). Local, authorisation and
// not-found failures are final.
func retryableFetch(err error) bool {
	var ns *notStorage
	return (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrIntegrity)) && !errors.As(err, &ns)
}

// notStorage marks a failed check that another copy cannot cure: the
// stored bytes verified, so the key or the backup itself is wrong.
type notStorage struct{ err error }

func (n *notStorage) Error() string { return n.err.Error() }
func (n *notStorage) Unwrap() error { return n.err }

// retryFetch runs once until it succeeds, fails for good, or the attempts
// or RetryWindow run out. Unavailable failures get WALGATE_RETRIES extra
// attempts; failed checks get fetchAttempts in all. before is told of each
// retry's delay (restorers use it to undo progress).
func (c *Client) retryFetch(ctx context.Context, once func() error, before func(time.Duration)) error {
	began := time.Now()
	var err error
	for attempt := 0; ; attempt++ {
		err = once()
		if err == nil || !retryableFetch(err) || ctx.Err() != nil {
			return err
		}
		limit := c.cfg.Retries + 1
		var broke *brokenStream
		if errors.As(err, &broke) {
			// Start the next attempt at the next gateway of a list.
			c.rotate()
		}
		if errors.Is(err, ErrIntegrity) || errors.As(err, &broke) {
			// The gateway answered, then the bytes failed or broke off:
			// it cuts the stream of a copy that fails its own check, and
			// serves another copy, or says none is good, next time.
			limit = c.fetchAttempts()
		}
		delay := retryDelay(attempt+1, err)
		if attempt+1 >= limit || time.Since(began)+delay > RetryWindow {
			return err
		}
		before(delay)
		if c.sleep(ctx, delay) != nil {
			return err
		}
	}
}

func (c *Client) fetchOnce(ctx context.Context, op, name, dest string, served *bool) (err error) {
	cfg := c.cfg
	// once, not do: the loop in FetchWAL retries whole downloads.
	resp, err := c.once(ctx, request{op: op, method: http.MethodGet, path: protocol.WALPath(cfg.Cluster, name)})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrNotFound {
			e.Message = fmt.Sprintf("%s is not in the archive of cluster %s", name, cfg.Cluster)
		}
		return err
	}
	defer resp.Body.Close()
	*served = true

	obj := walObject{
		size:      resp.ContentLength,
		sha256:    resp.Header.Get(protocol.HeaderContentSHA256),
		contentID: resp.Header.Get(protocol.HeaderContentID),
		plainSize: resp.Header.Get(protocol.HeaderPlainSize),
	}
	comp, cerr := codec.ParseCompression(resp.Header.Get(protocol.HeaderCompression))
	if cerr != nil || len(obj.sha256) != 64 || obj.size < 0 {
		return &Error{Kind: ErrIntegrity, Op: op, Message: "the gateway's answer lacks the hash, compression or length headers", Err: cerr}
	}
	obj.compression = comp
	keys, err := c.decodeKeys(op, "the archived "+name, resp.Header.Get(protocol.HeaderEncryption), resp.Header.Get(protocol.HeaderKeyFingerprint))
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".walgate-*")
	if err != nil {
		return &Error{Kind: ErrRejected, Op: op, Message: "cannot create a file next to " + dest, Err: err}
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := c.decodeWAL(op, resp.Body, obj, keys, tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return &Error{Kind: ErrRejected, Op: op, Message: "writing " + dest + " failed", Err: err}
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return &Error{Kind: ErrRejected, Op: op, Message: "cannot move the restored file into place at " + dest, Err: err}
	}
	return nil
}

// walObject is what the gateway says of the WAL object it serves: what
// the stored bytes and their plaintext must be.
type walObject struct {
	size        int64  // stored bytes (Content-Length)
	sha256      string // of the stored bytes, lowercase hex
	compression codec.Compression
	contentID   string // of the plaintext; "" when not recorded
	plainSize   string // bytes of plaintext, decimal; "" when not recorded
}

// decodeWAL decodes body, the stored bytes of obj, with one of keys (none
// when it is not encrypted) and writes the plaintext to w. It returns nil
// only when every check passed: the stream decoded and ended cleanly with
// nothing after it, the bytes received are obj.size bytes with obj.sha256,
// and the plaintext has obj's content ID and plain size. What reached w
// before a failure must be thrown away.
func (c *Client) decodeWAL(op string, body io.Reader, obj walObject, keys []*codec.Key, w io.Writer) error {
	integrity := func(msg string, cause error) error {
		return &Error{Kind: ErrIntegrity, Op: op, Message: msg, Err: cause}
	}
	got := sha256.New()
	counted := &countingReader{r: io.TeeReader(body, got)}
	dec, key, err := openObject(counted, obj.compression, keys)
	if err != nil {
		return c.fetchCopyError(op, err, counted.n, obj.size)
	}
	defer dec.Close()
	cid := codec.NewContentID(key)
	var plain int64
	if to, ok := dec.(io.WriterTo); ok {
		// zstd: each decoded block goes straight to w and cid.
		plain, err = to.WriteTo(io.MultiWriter(w, cid))
	} else {
		plain, err = io.CopyBuffer(io.MultiWriter(w, cid), dec, make([]byte, copyBuf))
	}
	if err != nil {
		return c.fetchCopyError(op, err, counted.n, obj.size)
	}
	// The decoder ended cleanly; nothing may follow the encoded stream.
	if extra, _ := io.Copy(io.Discard, counted); extra > 0 {
		return integrity(fmt.Sprintf("%d bytes follow the end of the encoded stream", extra), nil)
	}
	if counted.n != obj.size {
		return integrity(fmt.Sprintf("received %d of %d bytes", counted.n, obj.size), nil)
	}
	if hex.EncodeToString(got.Sum(nil)) != obj.sha256 {
		return integrity("the received bytes do not match the SHA-256 recorded at archive time", nil)
	}
	if obj.contentID != "" && obj.contentID != cid.String() {
		return integrity("the decoded WAL differs from what was archived (content identity mismatch); is this the key the segment was archived with?", nil)
	}
	if obj.plainSize != "" && obj.plainSize != strconv.FormatInt(plain, 10) {
		return integrity(fmt.Sprintf("decoded %d bytes, archived %s", plain, obj.plainSize), nil)
	}
	return nil
}

// fetchCopyError tells a broken transfer (retryable) from bad bytes. A
// wrong key or tampering fails authentication; a cut inside a chunk fails
// it too, but is wrapped as truncation and counts as a broken transfer.
func (c *Client) fetchCopyError(op string, err error, got, want int64) error {
	var pathErr *os.PathError
	switch {
	case errors.As(err, &pathErr):
		return &Error{Kind: ErrRejected, Op: op, Message: "writing the restored file failed", Err: err}
	case errors.Is(err, codec.ErrAuth) && !errors.Is(err, codec.ErrTruncated):
		return &Error{Kind: ErrIntegrity, Op: op, Message: "decryption failed: wrong key (check WALGATE_ENCRYPTION_KEY, _OLD_KEYS and _TRANSFORM) or the object was tampered with", Err: err}
	case got < want && !errors.Is(err, codec.ErrCorrupt):
		return &Error{Kind: ErrUnavailable, Op: op, Message: fmt.Sprintf("the transfer broke after %d of %d bytes", got, want), Err: &brokenStream{err}}
	}
	return &Error{Kind: ErrIntegrity, Op: op, Message: "the archived object does not decode", Err: err}
}

// brokenStream marks a transfer that broke off after the gateway answered:
// a network failure, or the gateway cutting a copy that failed its check.
type brokenStream struct{ err error }

func (b *brokenStream) Error() string { return b.err.Error() }
func (b *brokenStream) Unwrap() error { return b.err }

// encodeFile writes the object of the file f into w, and its plaintext
// into h. With split, a file of at least codec.SplitMin bytes with zstd is
// compressed in two halves at once (codec.EncodeSplit: the same object
// format, on two cores); other files stream through one encoder, hashed
// alongside.
// PostgreSQL does not change a file it handed to archive_command, so the
// size f has when it is opened is the size archived.
func encodeFile(w, h io.Writer, f *os.File, comp codec.Compression, level codec.Level, key *codec.Key, split bool) (int64, error) {
	if fi, err := f.Stat(); split && err == nil && fi.Mode().IsRegular() && codec.CanSplit(comp, fi.Size()) {
		return codec.EncodeSplit(w, f, fi.Size(), key, level, h)
	}
	enc, err := codec.NewSegmentWriter(w, comp, key, level)
	if err != nil {
		return 0, err
	}
	plain, err := copyHashing(enc, h, f, make([]byte, copyBuf))
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	return plain, err
}

// copyHashing copies src to dst through buf, as io.CopyBuffer does, and
// writes every chunk to h as well, in a second goroutine while dst takes
// it: hashing the plaintext overlaps with compressing it. h must not fail.
func copyHashing(dst, h io.Writer, src io.Reader, buf []byte) (int64, error) {
	chunks := make(chan []byte)
	hashed := make(chan struct{})
	defer close(chunks)
	go func() {
		for p := range chunks {
			h.Write(p)
			hashed <- struct{}{}
		}
	}()
	var n int64
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			chunks <- buf[:m]
			_, werr := dst.Write(buf[:m])
			<-hashed // buf is reused only once h is done with it
			if werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readHistory reads and parses a timeline history file (a few hundred
// bytes; at most 1 MiB is read).
func readHistory(path string, tli pgname.Timeline) ([]pgname.HistoryEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	return pgname.ParseHistory(string(data), tli)
}
