package stores

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/lifecycle"
)

// store is one configured backend and what the gateway has seen of it.
type store struct {
	name  string
	b     backends.Backend
	slots chan struct{} // bounds concurrent writes (nil: unbounded)
	// slotWait bounds how long a push waits for a slot (0: unbounded).
	slotWait time.Duration
	// writeClass is the class new objects are written in: the backend's
	// configured classes.hot ("" = the backend's default).
	writeClass string

	mu        sync.Mutex
	failedAt  time.Time // last failed operation; reads try it last for a while
	lastErr   string
	lastErrAt time.Time
}

// unhealthyFor is how long after a failure reads try a backend last.
const unhealthyFor = 30 * time.Second

// putOptions gives a write the backend's write class unless it names one.
func (st *store) putOptions(opts backends.PutOptions) backends.PutOptions {
	if opts.Class == "" {
		opts.Class = st.writeClass
	}
	return opts
}

func (st *store) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failedAt = time.Now()
	st.lastErr, st.lastErrAt = err.Error(), st.failedAt
}

// acquire takes a write slot, waiting while all are busy: at most wait
// (0: until ctx ends), after which it fails with a *SaturatedError.
func (st *store) acquire(ctx context.Context, wait time.Duration) error {
	if st.slots == nil {
		return nil
	}
	select {
	case st.slots <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case st.slots <- struct{}{}:
		return nil
	case <-expired:
		return &SaturatedError{Backend: st.name, Slots: cap(st.slots), Waited: wait}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AwaitSlots waits until each store a write of group g goes to first
// has a write slot free, each at most limits.write_slot_wait; it takes
// none of them. The gateway calls it before it lets a client that waits
// for 100 Continue send its body: a refusal then comes while the client
// can still send the request again.
func (s *Set) AwaitSlots(ctx context.Context, g *Group) error {
	for _, st := range g.stores[:g.ack] {
		if err := st.acquire(ctx, st.slotWait); err != nil {
			return err
		}
		st.release()
	}
	return nil
}

// SaturatedError is a push that found every write slot of a store busy
// for as long as it may wait (limits.write_slot_wait): the gateway is
// saturated, the store is not failing, and nothing was written.
type SaturatedError struct {
	Backend string
	Slots   int // the store's max_writes
	Waited  time.Duration
}

func (e *SaturatedError) Error() string {
	return fmt.Sprintf("all %d write slots of store %s stayed busy for %s", e.Slots, e.Backend, e.Waited)
}

func (st *store) release() {
	if st.slots != nil {
		<-st.slots
	}
}

func (st *store) ok() {
	st.mu.Lock()
	st.failedAt = time.Time{}
	st.mu.Unlock()
}

func (st *store) healthy() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.failedAt.IsZero() || time.Since(st.failedAt) > unhealthyFor
}

// LastError is the backend's last failure and its time (zero: none).
func (st *store) LastError() (string, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastErr, st.lastErrAt
}

// Unready lists, one reason each, the groups whose acknowledgement policy
// the backends cannot meet now, judged from the health the gateway keeps
// (a backend whose write failed less than unhealthyFor ago counts as
// failing; it counts as healthy again after that, or at once when a write
// to it succeeds). It does no I/O.
func (s *Set) Unready() []string {
	var out []string
	for _, g := range s.groups {
		var bad []string
		healthy := 0
		for i, st := range g.stores {
			if st.healthy() {
				healthy++
			} else if !g.strict || i < g.ack {
				_, at := st.LastError()
				bad = append(bad, fmt.Sprintf("%s (write failed %s ago)", st.name, time.Since(at).Round(time.Second)))
			}
		}
		if (g.strict && len(bad) > 0) || healthy < g.ack {
			out = append(out, fmt.Sprintf("group %s needs %d writable backend(s); failing: %s", g.name, g.ack, strings.Join(bad, ", ")))
		}
	}
	return out
}

// Group is a configured cluster group: its backends (first = primary) and
// how many of them a push must reach before it is acknowledged.
type Group struct {
	name     string
	patterns []string
	stores   []*store
	ack      int  // backends a push must reach
	strict   bool // ack primary or all: exactly the first ack backends
	policy   lifecycle.Policy
}

func (g *Group) primary() *store { return g.stores[0] }

// Name is the group's configured name.
func (g *Group) Name() string { return g.name }

// Primary is the name of the group's primary backend.
func (g *Group) Primary() string { return g.primary().name }

// Ack is how many backends a push must reach.
func (g *Group) Ack() int { return g.ack }

// Len is how many backends the group has.
func (g *Group) Len() int { return len(g.stores) }

// Names lists the group's backends, the primary first.
func (g *Group) Names() []string {
	out := make([]string, len(g.stores))
	for i, st := range g.stores {
		out[i] = st.name
	}
	return out
}

func (g *Group) matches(cluster string) bool {
	return config.GroupConfig{Clusters: g.patterns}.Matches(cluster)
}

// buildGroups resolves the configured groups against the open stores.
func buildGroups(cfg []config.GroupConfig, stores map[string]*store) ([]*Group, error) {
	var out []*Group
	for _, gc := range cfg {
		n, err := config.ParseAck(gc.Ack, len(gc.Backends))
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", gc.Name, err)
		}
		g := &Group{name: gc.Name, patterns: gc.Clusters, ack: n, strict: gc.Ack == config.AckPrimary || gc.Ack == config.AckAll || gc.Ack == "",
			policy: gc.Lifecycle}
		for _, b := range gc.Backends {
			st, ok := stores[b]
			if !ok {
				return nil, fmt.Errorf("group %s: backend %s is not configured", gc.Name, b)
			}
			g.stores = append(g.stores, st)
		}
		out = append(out, g)
	}
	return out, nil
}

// GroupFor returns the first group that matches cluster.
func (s *Set) GroupFor(cluster string) (*Group, error) {
	for _, g := range s.groups {
		if g.matches(cluster) {
			return g, nil
		}
	}
	return nil, fmt.Errorf("cluster %s matches no group in the gateway config (groups: clusters patterns); add a pattern for it", cluster)
}

// Written is the outcome of a fan-out write.
type Written struct {
	Info    backends.ObjectInfo
	Held    []string // backends that hold the object now, in group order
	Missing []string // the group's other backends: queue copies to them
}

// PutObject writes r to the group's ack set and returns who holds it. The
// body is read once: with one target it streams straight into the backend;
// with several it is teed chunk by chunk (the slowest target sets the pace,
// memory stays at one chunk). A failed target drops out; if fewer than the
// policy needs succeed, a group with a count policy copies from one that
// succeeded to the group's next backends, in order. Below the policy the
// write fails and nothing is acknowledged (objects already written are
// orphans the catalog never lists: a retry overwrites them).
//
// With opts.IfNotExists a target that already holds an object under key
// counts as written when that object is the same one (same size and the
// same SHA-256 in its metadata: an earlier attempt whose acknowledgement
// was lost); otherwise its error wraps backends.ErrExists.
func (s *Set) PutObject(ctx context.Context, g *Group, key string, r io.Reader, size int64, opts backends.PutOptions) (Written, error) {
	targets := g.stores[:g.ack]
	infos, errs := tee(ctx, targets, key, r, size, opts)
	for i, st := range targets {
		if opts.IfNotExists && errors.Is(errs[i], backends.ErrExists) {
			if info, ok := sameObject(ctx, st, key, size, opts.Metadata); ok {
				infos[i], errs[i] = info, nil
			}
		}
	}
	var w Written
	var failures []error
	for i, st := range targets {
		if errs[i] != nil {
			failures = append(failures, fmt.Errorf("%s: %w", st.name, errs[i]))
			var sat *SaturatedError
			if !isCallerError(errs[i]) && !errors.Is(errs[i], backends.ErrExists) && !errors.As(errs[i], &sat) {
				st.fail(errs[i])
			}
			continue
		}
		st.ok()
		if len(w.Held) == 0 {
			w.Info = infos[i]
		}
		w.Held = append(w.Held, st.name)
	}
	if len(w.Held) == 0 {
		return w, errors.Join(failures...)
	}
	if len(w.Held) < g.ack && g.strict {
		return w, errors.Join(failures...)
	}
	// A count policy: stand-ins copy from a backend that has it.
	for _, st := range g.stores[g.ack:] {
		if len(w.Held) >= g.ack {
			break
		}
		src := s.stores[w.Held[0]]
		if err := copyObject(ctx, src, st, key, w.Info.Size, "", opts); err != nil {
			st.fail(err)
			failures = append(failures, fmt.Errorf("%s: %w", st.name, err))
			continue
		}
		w.Held = append(w.Held, st.name)
	}
	if len(w.Held) < g.ack {
		return w, errors.Join(failures...)
	}
	for _, st := range g.stores {
		if !slices.Contains(w.Held, st.name) {
			w.Missing = append(w.Missing, st.name)
		}
	}
	return w, nil
}

// sameObject reports whether st holds under key an object of size bytes
// whose metadata records the SHA-256 that md records.
func sameObject(ctx context.Context, st *store, key string, size int64, md map[string]string) (backends.ObjectInfo, bool) {
	want := md[layout.MetaSHA256]
	if want == "" {
		return backends.ObjectInfo{}, false
	}
	info, err := st.b.Stat(ctx, key)
	if err != nil || (size >= 0 && info.Size != size) || info.Metadata[layout.MetaSHA256] != want {
		return backends.ObjectInfo{}, false
	}
	return info, true
}

// isCallerError tells a failure of the request body (short, too long,
// wrong hash, cancelled) from a failure of the backend.
func isCallerError(err error) bool {
	return errors.Is(err, backends.ErrSizeMismatch) || errors.Is(err, context.Canceled) || errors.Is(err, ErrBody)
}

// ErrBody marks a failure of the body a write reads (it ended early, was
// too long, had the wrong hash): the caller's failure, not the store's.
// A tee target that stopped because the body failed carries it too.
var ErrBody = errors.New("request body failed")

// teeChunk is how much of the body a tee hands on at once.
const teeChunk = 64 << 10

// tee streams r into every target at once and returns each one's result.
//
// It first takes a write slot of every target, in group order (the same
// order everywhere, so writers never wait on each other in a cycle): a
// store's slots bound the memory its uploads may buffer.
func tee(ctx context.Context, targets []*store, key string, r io.Reader, size int64, opts backends.PutOptions) ([]backends.ObjectInfo, []error) {
	infos := make([]backends.ObjectInfo, len(targets))
	errs := make([]error, len(targets))
	for i, st := range targets {
		if err := st.acquire(ctx, st.slotWait); err != nil {
			for _, held := range targets[:i] {
				held.release()
			}
			for j := range errs {
				errs[j] = err
			}
			return infos, errs
		}
	}
	defer func() {
		for _, st := range targets {
			st.release()
		}
	}()
	if len(targets) == 1 {
		infos[0], errs[0] = targets[0].b.Put(ctx, key, r, size, targets[0].putOptions(opts))
		return infos, errs
	}
	pws := make([]*io.PipeWriter, len(targets))
	var wg sync.WaitGroup
	for i, st := range targets {
		pr, pw := io.Pipe()
		pws[i] = pw
		wg.Go(func() {
			infos[i], errs[i] = st.b.Put(ctx, key, pr, size, st.putOptions(opts))
			// Unblock the writer if Put returned without reading it all.
			pr.CloseWithError(fmt.Errorf("backend %s stopped reading", st.name))
		})
	}
	buf := make([]byte, teeChunk)
	live := len(targets)
	var bodyErr error
	for live > 0 {
		n, err := r.Read(buf)
		if n > 0 {
			for i, pw := range pws {
				if pw == nil {
					continue
				}
				if _, werr := pw.Write(buf[:n]); werr != nil {
					pws[i] = nil // that target failed; the others go on
					live--
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bodyErr = err
			break
		}
	}
	for _, pw := range pws {
		if pw == nil {
			continue
		}
		if bodyErr != nil {
			pw.CloseWithError(fmt.Errorf("%w: %w", ErrBody, bodyErr))
		} else {
			pw.Close()
		}
	}
	wg.Wait()
	if bodyErr != nil {
		for i := range errs {
			if errs[i] == nil {
				// A backend that finished before the body failed cannot
				// have: its Put saw the error. Keep the cause anyway.
				errs[i] = bodyErr
			}
		}
	}
	return infos, errs
}

// copyObject copies key from src to dst, verifying the stored bytes
// against wantSHA (hex; "" skips the check) and size. opts carries the
// metadata and class for dst.
func copyObject(ctx context.Context, src, dst *store, key string, size int64, wantSHA string, opts backends.PutOptions) error {
	if err := dst.acquire(ctx, 0); err != nil {
		return err
	}
	defer dst.release()
	rc, err := src.b.Get(ctx, key, 0, -1)
	if err != nil {
		src.fail(err)
		return &sourceError{src: src.name, err: err}
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, size: size, want: wantSHA, h: sha256.New(), src: src.name, withhold: true}
	if _, err := dst.b.Put(ctx, key, vr, size, dst.putOptions(opts)); err != nil {
		if vr.err != nil {
			return &sourceError{src: src.name, err: vr.err, bad: errors.Is(vr.err, errCopyDamaged)}
		}
		return err
	}
	return nil
}

// sourceError is a copy that failed on the side of its source.
type sourceError struct {
	src string
	err error
	bad bool // the source's bytes are damaged (hash or size)
}

func (e *sourceError) Error() string { return fmt.Sprintf("reading from %s: %v", e.src, e.err) }
func (e *sourceError) Unwrap() error { return e.err }

// errCopyDamaged: a stored copy does not match the catalog.
var errCopyDamaged = errors.New("stored copy does not match the catalog")

// verifyingReader hashes what it reads and checks size and SHA-256 against
// the catalog as soon as the cataloged size has been read (or at the end):
// a damaged copy is known before its last bytes are handed on. For a copy
// (withhold) the last bytes are then withheld and the read fails, so no
// backend ever stores a complete damaged object; for a restore the bytes
// go out (the client's own check fails on them) and the next read fails.
type verifyingReader struct {
	r        io.Reader
	size     int64
	want     string
	h        hash.Hash
	n        int64
	src      string
	withhold bool
	onBad    func() // called once when the copy is found damaged
	checked  bool
	err      error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	switch {
	case v.size >= 0 && v.n > v.size:
		return 0, v.damaged(fmt.Errorf("%w: %s holds more than the %d bytes cataloged", errCopyDamaged, v.src, v.size))
	case v.size >= 0 && v.n == v.size && !v.checked || err == io.EOF && !v.checked:
		v.checked = true
		var bad error
		if v.size >= 0 && v.n != v.size {
			bad = fmt.Errorf("%w: %s holds %d bytes, the catalog %d", errCopyDamaged, v.src, v.n, v.size)
		} else if v.want != "" {
			if sum := hex.EncodeToString(v.h.Sum(nil)); sum != v.want {
				bad = fmt.Errorf("%w: %s's copy has SHA-256 %s, the catalog %s", errCopyDamaged, v.src, sum, v.want)
			}
		}
		if bad != nil {
			v.damaged(bad)
			if v.withhold || err == io.EOF {
				return 0, v.err
			}
			return n, nil
		}
	case err != nil && err != io.EOF:
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) damaged(err error) error {
	v.err = err
	if v.onBad != nil {
		v.onBad()
		v.onBad = nil
	}
	return err
}

// readOrder returns the backends to read an object from: its holders in
// group order (then holders outside the group), healthy ones first, then
// the group's other backends (the catalog may lag behind a copy).
func (s *Set) readOrder(g *Group, holders []string) []*store {
	var first, later []*store
	seen := map[string]bool{}
	add := func(st *store) {
		if st == nil || seen[st.name] {
			return
		}
		seen[st.name] = true
		if st.healthy() {
			first = append(first, st)
		} else {
			later = append(later, st)
		}
	}
	if g != nil {
		for _, st := range g.stores {
			if slices.Contains(holders, st.name) {
				add(st)
			}
		}
	}
	for _, h := range holders {
		add(s.stores[h])
	}
	order := append(first, later...)
	if g != nil {
		for _, st := range g.stores {
			if !seen[st.name] {
				seen[st.name] = true
				order = append(order, st)
			}
		}
	}
	return order
}

// OpenObject opens key for reading from the first backend that can serve
// it, failing over on errors. The reader verifies size and SHA-256 as it
// goes; a mismatch at the end (the bytes are sent by then, and the client's
// own check fails) marks that copy damaged: later reads try it last, and a
// repair from a good copy is queued.
//
// obj describes the object as a copy would (its repair is that copy).
func (s *Set) OpenObject(ctx context.Context, obj index.Copy, holders []string) (io.ReadCloser, error) {
	key, size, wantSHA := obj.Key, obj.Size, obj.SHA256
	g, _ := s.GroupFor(obj.Cluster)
	var errs []error
	var good, bad []*store
	for _, st := range s.readOrder(g, holders) {
		if s.isBad(st.name, key) {
			bad = append(bad, st)
		} else {
			good = append(good, st)
		}
	}
	// A copy found damaged or missing is not served again until a repair
	// replaced it: the client's check would only fail on it.
	missing := 0
	for _, st := range good {
		rc, err := st.b.Get(ctx, key, 0, -1)
		if err != nil {
			if !errors.Is(err, backends.ErrNotFound) {
				st.fail(err)
			} else {
				missing++
				if slices.Contains(holders, st.name) {
					s.queueRepair(obj, st.name, "missing copy: the catalog lists this backend as a holder, but it has no such object")
				}
			}
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
			continue
		}
		vr := &verifyingReader{r: rc, size: size, want: wantSHA, h: sha256.New(), src: st.name, onBad: func() { s.markBad(obj, st.name) }}
		return struct {
			io.Reader
			io.Closer
		}{vr, rc}, nil
	}
	if missing == len(good) && missing+len(bad) > 0 {
		for _, st := range bad {
			// Put back by hand meanwhile? Then it is served again.
			if s.recheck(ctx, st, obj) {
				rc, err := st.b.Get(ctx, key, 0, -1)
				if err == nil {
					vr := &verifyingReader{r: rc, size: size, want: wantSHA, h: sha256.New(), src: st.name, onBad: func() { s.markBad(obj, st.name) }}
					return struct {
						io.Reader
						io.Closer
					}{vr, rc}, nil
				}
			}
			errs = append(errs, fmt.Errorf("%s: its copy was found damaged or missing", st.name))
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrEveryCopyDamaged, key, errors.Join(errs...))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no backend can serve %s", key)
	}
	return nil, errors.Join(errs...)
}

// badCopies remembers copies found damaged until a repair replaced them.
type badCopies struct {
	mu sync.Mutex
	m  map[string]bool // backend + "\x00" + key
}

func (s *Set) isBad(backend, key string) bool {
	s.bad.mu.Lock()
	defer s.bad.mu.Unlock()
	return s.bad.m[backend+"\x00"+key]
}

func (s *Set) clearBad(backend, key string) {
	s.bad.mu.Lock()
	delete(s.bad.m, backend+"\x00"+key)
	s.bad.mu.Unlock()
}

// markBad records a damaged copy and queues its repair from a good one.
func (s *Set) markBad(obj index.Copy, backend string) {
	s.queueRepair(obj, backend, "damaged copy: its bytes do not match the catalog")
}

// BackendStatus is one backend as `walgate status` shows it.
type BackendStatus struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	Groups         []string  `json:"groups"`
	PendingObjects int       `json:"pending_objects"`
	PendingBytes   int64     `json:"pending_bytes"`
	OldestPending  time.Time `json:"oldest_pending,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}

// BackendsStatus describes every configured backend from the catalog's
// replication queue; live is the running gateway's view of last errors
// (nil offline).
func BackendsStatus(cat index.Interface, cfg config.Config, live map[string]*store) ([]BackendStatus, error) {
	cfg.Defaults()
	var out []BackendStatus
	for _, bc := range cfg.Backends {
		q, err := cat.QueueStats(bc.Name)
		if err != nil {
			return nil, err
		}
		bs := BackendStatus{Name: bc.Name, Type: bc.Type, PendingObjects: q.Count, PendingBytes: q.Bytes,
			OldestPending: q.Oldest, LastError: q.LastError, LastErrorAt: q.LastErrorAt}
		if st := live[bc.Name]; st != nil {
			if msg, at := st.LastError(); at.After(bs.LastErrorAt) {
				bs.LastError, bs.LastErrorAt = msg, at
			}
		}
		for _, g := range cfg.Groups {
			if slices.Contains(g.Backends, bc.Name) {
				bs.Groups = append(bs.Groups, g.Name)
			}
		}
		out = append(out, bs)
	}
	return out, nil
}
