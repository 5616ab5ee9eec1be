package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
)

// errPlaintext is why a client with a key refuses an unencrypted object.
var errPlaintext = errors.New("object stored unencrypted")

// keys returns every key the client reads with: the current one first,
// then WALGATE_ENCRYPTION_OLD_KEYS in order. Empty without a key.
func (c *Client) keys() []*codec.Key {
	if c.cfg.Key == nil {
		return nil
	}
	return append([]*codec.Key{c.cfg.Key}, c.cfg.OldKeys...)
}

// keyFingerprint is the Walgate-Key-Fingerprint of what this client
// writes ("" without a key).
func (c *Client) keyFingerprint() string {
	if c.cfg.Key == nil {
		return ""
	}
	return c.cfg.Key.Fingerprint()
}

// decodeKeys returns the keys that may open an object stored with
// encryption enc and key fingerprint fp ("" when the gateway knows none):
// nil for an unencrypted object, the one key of that fingerprint, or
// every key when the object names none (WAL-G's and older walgate
// objects: openObject then picks the one its first chunk authenticates
// under). A client with a key refuses an unencrypted object unless
// WALGATE_ALLOW_PLAINTEXT_READ is set: anyone holding a push token could
// have stored it. what names the object in messages. The errors are
// final: another copy of the same object cannot cure them.
func (c *Client) decodeKeys(op, what, enc, fp string) ([]*codec.Key, error) {
	final := func(msg string, cause error) error {
		return &Error{Kind: ErrIntegrity, Op: op, Message: msg, Err: &notStorage{cause}}
	}
	switch enc {
	case protocol.EncryptionNone, "":
		if c.cfg.Key != nil && !c.cfg.AllowPlaintextRead {
			return nil, final(what+" is stored unencrypted, but this host encrypts its archive: it may have been forged by anyone holding a push token, so it is refused. If the archive held plaintext before encryption was turned on, set WALGATE_ALLOW_PLAINTEXT_READ=true", errPlaintext)
		}
		return nil, nil
	case protocol.EncryptionLibsodium:
	default:
		return nil, final(fmt.Sprintf("%s has unknown encryption %q", what, enc), nil)
	}
	all := c.keys()
	if len(all) == 0 {
		return nil, final(what+" is encrypted but no key is configured: set WALGATE_ENCRYPTION_KEY (and _TRANSFORM) as on the host that archived it", codec.ErrAuth)
	}
	if fp == "" {
		return all, nil
	}
	if k := codec.KeyByFingerprint(all, fp); k != nil {
		return []*codec.Key{k}, nil
	}
	have := make([]string, len(all))
	for i, k := range all {
		have[i] = k.Fingerprint()
	}
	return nil, final(fmt.Sprintf("%s was encrypted with the key of fingerprint %s, which is neither WALGATE_ENCRYPTION_KEY nor one of WALGATE_ENCRYPTION_OLD_KEYS (fingerprints %v): add that key to WALGATE_ENCRYPTION_OLD_KEYS", what, fp, have), codec.ErrAuth)
}

// openObject returns a reader of the plaintext of the object r with
// compression comp, decrypted with the one of keys it was sealed with
// (none when keys is empty), and that key.
func openObject(r io.Reader, comp codec.Compression, keys []*codec.Key) (io.ReadCloser, *codec.Key, error) {
	if len(keys) == 0 {
		dec, err := codec.NewReader(r, comp, nil)
		return dec, nil, err
	}
	k, replay, err := codec.SelectKey(r, keys)
	if err != nil {
		return nil, nil, err
	}
	dec, err := codec.NewReader(replay, comp, k)
	return dec, k, err
}

// contentIDs hashes a plaintext under every key the client holds (or
// without a key), so that a segment archived before a key rotation is
// still recognised as the same.
type contentIDs []codec.ContentIDHash

func newContentIDs(c *Client) contentIDs {
	keys := c.keys()
	if len(keys) == 0 {
		return contentIDs{codec.NewContentID(nil)}
	}
	ids := make(contentIDs, len(keys))
	for i, k := range keys {
		ids[i] = codec.NewContentID(k)
	}
	return ids
}

func (ids contentIDs) Write(p []byte) (int, error) {
	for _, h := range ids {
		h.Write(p)
	}
	return len(p), nil
}

// current is the content ID under the key the client writes with.
func (ids contentIDs) current() string { return ids[0].String() }

// has reports whether id is the content ID under one of the keys.
func (ids contentIDs) has(id string) bool {
	for _, h := range ids {
		if h.String() == id {
			return true
		}
	}
	return false
}

// sameAsArchived answers a conflicting push of the WAL file at path: is
// the archived object the same plaintext after all? It is when its
// content ID is that of the file under an old key (archived before a key
// rotation), or, for an object whose content identity the gateway does
// not know (an encrypted WAL-G object adopted by a catalog rebuild), when
// it decodes to exactly the bytes of the file. Any doubt answers false or
// an error.
func (c *Client) sameAsArchived(ctx context.Context, op, name, path string, ids contentIDs) (bool, error) {
	resp, err := c.once(ctx, request{op: op, method: http.MethodGet, path: protocol.WALPath(c.cfg.Cluster, name)})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if id := resp.Header.Get(protocol.HeaderContentID); id != "" {
		return ids.has(id), nil
	}
	comp, err := codec.ParseCompression(resp.Header.Get(protocol.HeaderCompression))
	if err != nil {
		return false, nil
	}
	keys, err := c.decodeKeys(op, "the archived "+name, resp.Header.Get(protocol.HeaderEncryption), resp.Header.Get(protocol.HeaderKeyFingerprint))
	if err != nil {
		return false, nil
	}
	dec, _, err := openObject(resp.Body, comp, keys)
	if err != nil {
		return false, nil
	}
	defer dec.Close()
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return sameStream(dec, f)
}

// sameStream reports whether a and b yield the same bytes. A failure of a
// (the archived object does not decode) answers false; of b, an error.
func sameStream(a, b io.Reader) (bool, error) {
	bufA, bufB := make([]byte, copyBuf), make([]byte, copyBuf)
	for {
		na, errA := io.ReadFull(a, bufA)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return false, nil
		}
		nb, errB := io.ReadFull(b, bufB)
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return false, errB
		}
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		if na < len(bufA) {
			// Both ended here, a cleanly: the codec returns io.EOF only
			// after a complete stream (FINAL chunk, end of the frame).
			return true, nil
		}
	}
}
