package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Defaults for Options.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 5
)

// maxField bounds the target and result of one entry, so that a line
// stays small whatever an error message holds.
const maxField = 1024

// Entry is one administrative act.
type Entry struct {
	Time time.Time `json:"time"`
	// Token is the acting token's ID; empty for acts on the machine
	// itself (admin socket, offline verbs), which Client then names.
	Token string `json:"token,omitempty"`
	// Client is the remote address of an HTTP request, "admin-socket"
	// for a verb sent to the running gateway, "local" for an offline one.
	Client string `json:"client"`
	// Action is what was done: token.add, token.revoke, token.rotate,
	// ui.login, delete, lifecycle.apply, index.rebuild, backend.check.
	Action string `json:"action"`
	// Target is what it was done to: a token ID, a cluster, a backend.
	Target string `json:"target,omitempty"`
	// Result is "ok" or the error's text.
	Result string `json:"result"`
}

// Result turns an act's error into an entry's result.
func Result(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// Options size the log.
type Options struct {
	// MaxBytes is the size past which audit.log is rotated to audit.log.1
	// (and older files shift up); 0: DefaultMaxBytes.
	MaxBytes int64
	// Keep is how many rotated files are kept; 0: DefaultKeep.
	Keep int
}

// Log appends entries to DIR/audit.log. A nil *Log records nothing.
type Log struct {
	dir  string
	opts Options
	mu   sync.Mutex
}

// Path is the audit log's file under the data directory dir.
func Path(dir string) string { return filepath.Join(dir, "audit.log") }

// Open returns the audit log of data directory dir, creating the file
// (mode 0600) when absent, so that a directory that cannot take it fails
// at start rather than at the first act.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	f, err := os.OpenFile(Path(dir), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{dir: dir, opts: opts}, nil
}

// Record appends e as one line and fsyncs it. A zero Time is now.
func (l *Log) Record(e Entry) error {
	if l == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Target, e.Result = clip(e.Target), clip(e.Result)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "a -> b" stays readable with grep
	if err := enc.Encode(e); err != nil {
		return err
	}
	line := buf.Bytes()
	l.mu.Lock()
	defer l.mu.Unlock()
	lock, err := os.OpenFile(filepath.Join(l.dir, "audit.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit log: lock: %w", err)
	}
	if err := l.rotate(int64(len(line))); err != nil {
		return err
	}
	f, err := os.OpenFile(Path(l.dir), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	return f.Close()
}

// rotate shifts the files when the next n bytes would take audit.log past
// MaxBytes: audit.log.Keep is dropped, audit.log.i becomes .i+1 and
// audit.log becomes .1. A line is never split across files.
func (l *Log) rotate(n int64) error {
	fi, err := os.Stat(Path(l.dir))
	if errors.Is(err, os.ErrNotExist) || err == nil && (fi.Size() == 0 || fi.Size()+n <= l.opts.MaxBytes) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	base := Path(l.dir)
	if err := os.Remove(base + "." + strconv.Itoa(l.opts.Keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit log: rotating: %w", err)
	}
	for i := l.opts.Keep - 1; i >= 1; i-- {
		err := os.Rename(base+"."+strconv.Itoa(i), base+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit log: rotating: %w", err)
		}
	}
	if err := os.Rename(base, base+".1"); err != nil {
		return fmt.Errorf("audit log: rotating: %w", err)
	}
	return syncDir(l.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	return s[:maxField] + "..."
}

// maxLine bounds a line Tail reads; longer ones (not written by Record)
// are skipped.
const maxLine = 8 << 10

// Tail returns the newest n entries of the audit log of data directory
// dir, newest first, reading audit.log and then the rotated files as far
// as needed. Memory is bounded by n: files are streamed. Lines that do
// not decode are skipped.
func Tail(dir string, n int) ([]Entry, error) {
	var out []Entry
	for i := 0; len(out) < n; i++ {
		name := Path(dir)
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			if i == 0 {
				continue
			}
			break
		}
		if err != nil {
			return out, fmt.Errorf("audit log: %w", err)
		}
		got, err := tailFile(f, n-len(out))
		f.Close()
		if err != nil {
			return out, fmt.Errorf("audit log %s: %w", name, err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// tailFile keeps the last n decodable lines of r in a ring, newest first.
func tailFile(r io.Reader, n int) ([]Entry, error) {
	ring := make([]Entry, 0, n)
	next := 0
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			var e Entry
			if json.Unmarshal(line, &e) == nil {
				if len(ring) < n {
					ring = append(ring, e)
				} else {
					ring[next] = e
				}
				next = (next + 1) % n
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]Entry, 0, len(ring))
	for i := 0; i < len(ring); i++ {
		out = append(out, ring[(next-1-i+2*len(ring))%len(ring)])
	}
	return out, nil
}

// readLine reads one line; a line longer than maxLine is consumed and
// returned empty.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	long := false
	for {
		part, isPrefix, err := br.ReadLine()
		if !long {
			line = append(line, part...)
			if len(line) > maxLine {
				line, long = nil, true
			}
		}
		if err != nil || !isPrefix {
			return line, err
		}
	}
}
