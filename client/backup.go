package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
)

// BackupUpload is an open backup session on the gateway. Its methods are
// safe for concurrent use: parts upload in parallel.
type BackupUpload struct {
	c       *Client
	Name    string
	session string
	mu      sync.Mutex
	files   map[string]protocol.BackupFile
}

func decodeJSON(resp *http.Response, op string, v any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return &Error{Kind: ErrUnavailable, Op: op, Message: "the gateway's answer is not valid JSON", Err: err}
	}
	return nil
}

// BeginBackup opens an upload session for backup name.
func (c *Client) BeginBackup(ctx context.Context, name string) (*BackupUpload, error) {
	return c.beginBackup(ctx, name, 0)
}

// beginBackup is BeginBackup for a server of PostgreSQL system sysID (0:
// unknown), which the gateway refuses early when the cluster name belongs
// to another system.
func (c *Client) beginBackup(ctx context.Context, name string, sysID uint64) (*BackupUpload, error) {
	op := "begin backup " + name
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: protocol.BackupPath(c.cfg.Cluster, name), header: systemHeaders(sysID),
		body: func() (io.Reader, int64, error) { return bytes.NewReader(nil), 0, nil }})
	if err != nil {
		return nil, err
	}
	var res protocol.BeginBackupResult
	if err := decodeJSON(resp, op, &res); err != nil {
		return nil, err
	}
	return &BackupUpload{c: c, Name: name, session: res.Session, files: map[string]protocol.BackupFile{}}, nil
}

// Upload streams one object of the backup (chunked, length unknown) and
// checks that the gateway stored exactly the bytes sent. Streams cannot be
// replayed, so a failure once the body was read is final for this object:
// abort the backup. The request waits for 100 Continue, so a gateway
// that is saturated or unavailable says so before the body is read: such
// a refusal is retried like any request (WALGATE_RETRIES, with backoff).
// compression and encryption describe body ("none" for JSON documents).
func (u *BackupUpload) Upload(ctx context.Context, file, compression, encryption string, body io.Reader) (protocol.BackupFile, error) {
	op := fmt.Sprintf("upload %s of %s", file, u.Name)
	hr := codec.NewHashReader(body)
	sent := &countingReader{r: hr}
	c := u.c
	header := map[string]string{
		protocol.HeaderBackupSession: u.session,
		protocol.HeaderCompression:   compression,
		protocol.HeaderEncryption:    encryption,
		"Content-Type":               "application/octet-stream",
		"Expect":                     "100-continue",
	}
	if fp := c.keyFingerprint(); encryption == protocol.EncryptionLibsodium && fp != "" {
		header[protocol.HeaderKeyFingerprint] = fp
	}
	req := request{op: op, method: http.MethodPut, path: protocol.BackupFilePath(c.cfg.Cluster, u.Name, file),
		header: header,
		body:   func() (io.Reader, int64, error) { return sent, -1, nil }, streamed: true}
	resp, err := c.once(ctx, req)
	for attempt := 1; err != nil && sent.n == 0 && errors.Is(err, ErrUnavailable) && attempt <= c.cfg.Retries; attempt++ {
		if c.sleep(ctx, retryDelay(attempt, err)) != nil {
			break
		}
		resp, err = c.once(ctx, req)
	}
	if err != nil {
		return protocol.BackupFile{}, err
	}
	var res protocol.BackupFile
	if err := decodeJSON(resp, op, &res); err != nil {
		return res, err
	}
	sum := hr.SHA256()
	if res.SHA256 != sum || res.Size != hr.Size() {
		return res, &Error{Kind: ErrIntegrity, Op: op,
			Message: fmt.Sprintf("the gateway stored %d bytes with SHA-256 %s, but %d bytes with %s were sent", res.Size, res.SHA256, hr.Size(), sum)}
	}
	u.mu.Lock()
	u.files[file] = res
	u.mu.Unlock()
	return res, nil
}

// Commit makes the backup visible: the gateway checks that it holds every
// uploaded object with the hashes the client saw, then stores the sentinel.
func (u *BackupUpload) Commit(ctx context.Context, sentinel []byte) (protocol.BackupSummary, error) {
	op := "commit backup " + u.Name
	u.mu.Lock()
	body, err := json.Marshal(protocol.CommitBackup{Sentinel: sentinel, Files: u.files})
	u.mu.Unlock()
	if err != nil {
		return protocol.BackupSummary{}, err
	}
	var res protocol.BackupSummary
	resp, err := u.c.do(ctx, request{op: op, method: http.MethodPost, path: protocol.BackupCommitPath(u.c.cfg.Cluster, u.Name),
		header: map[string]string{protocol.HeaderBackupSession: u.session, "Content-Type": "application/json"},
		body:   func() (io.Reader, int64, error) { return bytes.NewReader(body), int64(len(body)), nil }})
	if err != nil {
		return res, err
	}
	return res, decodeJSON(resp, op, &res)
}

// Abort deletes the open backup and its objects on the gateway.
func (u *BackupUpload) Abort(ctx context.Context) error {
	resp, err := u.c.do(ctx, request{op: "abort backup " + u.Name, method: http.MethodDelete,
		path:   protocol.BackupPath(u.c.cfg.Cluster, u.Name),
		header: map[string]string{protocol.HeaderBackupSession: u.session}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ListBackups returns the cluster's committed backups, oldest first.
func (c *Client) ListBackups(ctx context.Context) ([]protocol.BackupSummary, error) {
	resp, err := c.do(ctx, request{op: "backup-list", method: http.MethodGet, path: protocol.BackupsPath(c.cfg.Cluster)})
	if err != nil {
		return nil, err
	}
	var out []protocol.BackupSummary
	return out, decodeJSON(resp, "backup-list", &out)
}

// Backup describes one committed backup (name or LATEST).
func (c *Client) Backup(ctx context.Context, name string) (protocol.BackupDetail, error) {
	op := "backup " + name
	var d protocol.BackupDetail
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: protocol.BackupPath(c.cfg.Cluster, name)})
	if err != nil {
		return d, err
	}
	return d, decodeJSON(resp, op, &d)
}

// OpenBackupFile streams one object of a committed backup. The reader
// fails at its end unless exactly the recorded bytes, with the recorded
// SHA-256, arrived.
func (c *Client) OpenBackupFile(ctx context.Context, name, file string, want protocol.BackupFile) (io.ReadCloser, error) {
	op := fmt.Sprintf("fetch %s of %s", file, name)
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: protocol.BackupFilePath(c.cfg.Cluster, name, file)})
	if err != nil {
		return nil, err
	}
	if got := resp.Header.Get(protocol.HeaderContentSHA256); got != want.SHA256 || resp.ContentLength != want.Size {
		resp.Body.Close()
		return nil, &Error{Kind: ErrIntegrity, Op: op, Message: "the gateway's headers do not match the backup's file list"}
	}
	return &verifyingBody{rc: resp.Body, hr: codec.NewHashReader(resp.Body), want: want, op: op}, nil
}

// verifyingBody checks size and hash when the body ends.
type verifyingBody struct {
	rc   io.ReadCloser
	hr   *codec.HashReader // reads rc
	want protocol.BackupFile
	op   string
}

func (v *verifyingBody) Read(p []byte) (int, error) {
	n, err := v.hr.Read(p)
	if err == io.EOF {
		if v.hr.Size() != v.want.Size || v.hr.SHA256() != v.want.SHA256 {
			return n, &Error{Kind: ErrIntegrity, Op: v.op, Message: fmt.Sprintf("received %d bytes that do not match the SHA-256 recorded at backup time (%d bytes expected)", v.hr.Size(), v.want.Size)}
		}
	} else if err != nil {
		return n, &Error{Kind: ErrUnavailable, Op: v.op, Message: fmt.Sprintf("the transfer broke after %d of %d bytes", v.hr.Size(), v.want.Size), Err: &brokenStream{err}}
	}
	return n, err
}

func (v *verifyingBody) Close() error { return v.rc.Close() }

// SendDrillReport stores a restore-drill report on the gateway.
func (c *Client) SendDrillReport(ctx context.Context, rep protocol.DrillReport) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{op: "drill report", method: http.MethodPost, path: protocol.DrillsPath(c.cfg.Cluster),
		header: map[string]string{"Content-Type": "application/json"},
		body:   func() (io.Reader, int64, error) { return bytes.NewReader(body), int64(len(body)), nil }})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
