package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// readFault is what happens to the stored bytes of one read of an object
// on their way to the gateway; an offset below 0 is never reached.
type readFault struct {
	flipAt  int64 // this byte arrives altered
	cutAt   int64 // the read fails here: the gateway cuts its response
	stallAt int64 // the read waits here until the test ends, then fails
}

var noFault = readFault{flipAt: -1, cutAt: -1, stallAt: -1}

// faultyReads wraps the gateway's real store: each read of an object whose
// key contains match gets the fault fault(n) (n counts those reads from 1).
type faultyReads struct {
	backends.Backend
	match   string
	fault   func(n int64) readFault
	reads   *atomic.Int64
	release chan struct{} // closed at the test's end: stalled reads fail
}

func (f faultyReads) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := f.Backend.Get(ctx, key, off, length)
	if err != nil || !strings.Contains(key, f.match) {
		return rc, err
	}
	return &faultyReader{rc: rc, f: f.fault(f.reads.Add(1)), release: f.release}, nil
}

var errInjectedRead = errors.New("injected read failure")

type faultyReader struct {
	rc      io.ReadCloser
	f       readFault
	off     int64
	release chan struct{}
}

func (r *faultyReader) Read(p []byte) (int, error) {
	for _, at := range []int64{r.f.cutAt, r.f.stallAt} {
		if at == r.off {
			if at == r.f.stallAt {
				<-r.release
			}
			return 0, errInjectedRead
		}
		if at > r.off && int64(len(p)) > at-r.off {
			p = p[:at-r.off]
		}
	}
	n, err := r.rc.Read(p)
	if i := r.f.flipAt - r.off; i >= 0 && i < int64(n) {
		p[i] ^= 0x5a
	}
	r.off += int64(n)
	return n, err
}

func (r *faultyReader) Close() error { return r.rc.Close() }

// faultyPartGateway starts a gateway whose reads of part_001 of every
// backup get fault; it returns the gateway and the count of those reads.
func faultyPartGateway(t *testing.T, fault func(n int64) readFault) (*gatewaytest.Gateway, *atomic.Int64) {
	t.Helper()
	reads := &atomic.Int64{}
	release := make(chan struct{})
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		return faultyReads{Backend: b, match: "tar_partitions/part_001.tar.zst", fault: fault, reads: reads, release: release}
	}})
	// Registered after the gateway's: runs before its shutdown, which
	// waits for the stalled responses.
	t.Cleanup(func() { close(release) })
	return g, reads
}

// The gateway's response breaks off after bytes that do not decode (an
// altered byte, then the cut), at every attempt: the error names the
// broken transfer, not the data or the key (the stored copy may be good;
// a decryption failure alone would say "wrong key" and not be retried),
// the object is fetched again as a whole up to the attempts for a broken
// stream, and nothing of the restore is left.
func TestBackupFetchTransferBrokenAfterBadBytes(t *testing.T) {
	ctx := context.Background()
	g, reads := faultyPartGateway(t, func(int64) readFault {
		return readFault{flipAt: 40 << 10, cutAt: 200 << 10, stallAt: -1}
	})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), map[string]string{
		"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	pushBackup(t, c, fetchName, standardBackup(t, ""))
	dir := filepath.Join(t.TempDir(), "pgdata")
	_, err := c.FetchBackup(ctx, fetchName, dir, client.RestoreOptions{Concurrency: 1})
	ce := wantKind(t, "transfer cut after altered bytes", err, client.ErrUnavailable)
	t.Logf("cut after altered bytes: %v", err)
	msg := err.Error()
	if !strings.Contains(msg, "tar_partitions/part_001.tar.zst") || !strings.Contains(msg, "the transfer broke after") ||
		strings.Contains(msg, "integrity") || strings.Contains(msg, "key") || strings.Contains(msg, "decode") {
		t.Fatalf("message: %s (%+v)", msg, ce)
	}
	if n := reads.Load(); n != 3 {
		t.Fatalf("part_001 was read %d times, want 3 (the attempts for a broken transfer)", n)
	}
	absent(t, dir)
}

// Bytes altered once on their way (the stored copy is good): decryption
// fails, the rest of the object is still read so that its size and
// SHA-256 tell damaged bytes from a wrong key, and the retry restores
// the backup whole.
func TestBackupFetchAlteredBytesRetried(t *testing.T) {
	ctx := context.Background()
	g, reads := faultyPartGateway(t, func(n int64) readFault {
		if n == 1 {
			return readFault{flipAt: 40 << 10, cutAt: -1, stallAt: -1}
		}
		return noFault
	})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), map[string]string{
		"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	b := standardBackup(t, "")
	pushBackup(t, c, fetchName, b)
	dir := filepath.Join(t.TempDir(), "pgdata")
	var progress bytes.Buffer
	res, err := c.FetchBackup(ctx, fetchName, dir, client.RestoreOptions{Concurrency: 1, Progress: &progress})
	if err != nil {
		t.Fatalf("restore after bytes altered once: %v", err)
	}
	if n := reads.Load(); n < 2 {
		t.Fatalf("part_001 was read %d times: not retried", n)
	}
	if res.Objects != 4 {
		t.Fatalf("result: %+v", res)
	}
	checkRestored(t, dir, b.files(), "")
}

// A local failure while a part is extracted (here a member below a file)
// ends the object's download at once: the rest of the stored object,
// which would take as long as the gateway needs to send it (here for
// ever), is not read first, and the error names the local write.
func TestBackupFetchLocalFailureStopsDownload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, _ := faultyPartGateway(t, func(int64) readFault {
		return readFault{flipAt: -1, cutAt: -1, stallAt: 250 << 10}
	})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	b := standardBackup(t, "")
	b.parts[0] = append([]member{{"/PG_VERSION", []byte("15\n")}, {"/PG_VERSION/below", []byte("x")}}, b.parts[0]...)
	pushBackup(t, c, fetchName, b)
	dir := filepath.Join(t.TempDir(), "pgdata")
	began := time.Now()
	_, err := c.FetchBackup(ctx, fetchName, dir, client.RestoreOptions{Concurrency: 1})
	ce := wantKind(t, "member below a file", err, client.ErrRejected)
	t.Logf("member below a file: %v", err)
	if !strings.Contains(ce.Message, "writing the restored files failed") || !strings.Contains(err.Error(), "part_001") {
		t.Fatalf("message: %v", err)
	}
	if d := time.Since(began); d > 15*time.Second {
		t.Fatalf("the restore took %v to report a local failure", d)
	}
	absent(t, dir)
}

// A tar member the extractor refuses, in an object whose stored bytes
// match their SHA-256, is in the backup itself: the restore fails at the
// first attempt instead of fetching the same bytes again, and says so.
func TestBackupFetchRefusedMemberNotRetried(t *testing.T) {
	ctx := context.Background()
	g, reads := faultyPartGateway(t, func(int64) readFault { return noFault })
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), map[string]string{
		"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	b := standardBackup(t, "")
	b.parts[0] = append([]member{{"/base/../../outside", []byte("x")}}, b.parts[0]...)
	pushBackup(t, c, fetchName, b)
	dir := filepath.Join(t.TempDir(), "pgdata")
	_, err := c.FetchBackup(ctx, fetchName, dir, client.RestoreOptions{Concurrency: 1})
	wantKind(t, "refused member", err, client.ErrIntegrity)
	if !strings.Contains(err.Error(), "the backup itself holds it") || !strings.Contains(err.Error(), "/base/../../outside") {
		t.Fatalf("message: %v", err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("part_001 was read %d times, want 1: the same stored bytes cannot cure a refused member", n)
	}
	absent(t, dir)
}
