package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// Set is the gateway's configured stores: each backend with its health and
// write slots, the cluster groups over them, the copies found damaged, and
// the replicator that fills each backend's queue.
type Set struct {
	cfg     config.Config
	log     *slog.Logger
	catalog index.Interface
	stores  map[string]*store // by backend name
	order   []*store          // as configured
	groups  []*Group
	repl    *replicator
	bad     badCopies
	lost    lostObjects // objects without a good copy anywhere

	// OnLost, when set before Start, is called once for each object found
	// without a good copy on any backend (the gateway counts them).
	OnLost func(index.Copy)
	// Owner names this process in the catalog's claims on queued copies;
	// set before Start (the gateway's instance name). Start makes one up
	// when it is empty.
	Owner string
}

// Wrap, when set, wraps each opened backend (fault-injection tests put
// faults between the gateway and real backends this way).
type Wrap func(name string, b backends.Backend) backends.Backend

// Options say how Open opens the stores.
type Options struct {
	Log *slog.Logger
	// Wrap, when set, wraps each backend.
	Wrap Wrap
	// Recover removes what writes interrupted by a crash left behind (the
	// daemon); read-only verbs leave the stores as they are.
	Recover bool
}

// Open opens every backend cfg lists (backends/all) and resolves the
// groups over them. Nothing runs in the background until Start. cfg must
// have its defaults applied and be valid.
func Open(ctx context.Context, cfg config.Config, cat index.Interface, opts Options) (*Set, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{cfg: cfg, log: log, catalog: cat, stores: map[string]*store{}}
	for _, bc := range cfg.Backends {
		be, err := all.Open(ctx, bc)
		if err != nil {
			s.closeBackends()
			return nil, err
		}
		if opts.Recover {
			if n, err := all.Recover(be); err != nil {
				log.Warn("cleaning temp files", "backend", bc.Name, "err", err)
			} else if n > 0 {
				log.Info("removed temp files of interrupted writes", "backend", bc.Name, "count", n)
			}
		}
		if opts.Wrap != nil {
			be = opts.Wrap(bc.Name, be)
		}
		st := &store{name: bc.Name, b: be, writeClass: bc.Classes[backends.ClassHot]}
		if bc.MaxWrites > 0 {
			st.slots = make(chan struct{}, bc.MaxWrites)
			st.slotWait = cfg.Limits.WriteSlotWait
		}
		s.stores[bc.Name] = st
		s.order = append(s.order, st)
	}
	var err error
	if s.groups, err = buildGroups(cfg.Groups, s.stores); err != nil {
		s.closeBackends()
		return nil, err
	}
	s.repl = newReplicator(s)
	return s, nil
}

// Start starts the replicator: one worker per backend.
func (s *Set) Start() {
	if s.Owner == "" {
		s.Owner = fmt.Sprintf("replicator/%d/%p", os.Getpid(), s)
	}
	s.repl.start()
}

// Close stops the replicator (copies in flight stay queued) and closes
// every backend.
func (s *Set) Close() error {
	s.repl.close()
	return s.closeBackends()
}

func (s *Set) closeBackends() error {
	var errs []error
	for _, st := range s.order {
		if err := st.b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", st.name, err))
		}
	}
	return errors.Join(errs...)
}

// Names lists the backends in configured order.
func (s *Set) Names() []string {
	out := make([]string, len(s.order))
	for i, st := range s.order {
		out[i] = st.name
	}
	return out
}

// Backend is the named backend (false: not configured).
func (s *Set) Backend(name string) (backends.Backend, bool) {
	st := s.stores[name]
	if st == nil {
		return nil, false
	}
	return st.b, true
}

// WriteClass is the class the named backend writes new objects in (its
// configured classes.hot; "" is the backend's default).
func (s *Set) WriteClass(name string) string {
	if st := s.stores[name]; st != nil {
		return st.writeClass
	}
	return ""
}

// Policy is the lifecycle policy of the cluster's group.
func (s *Set) Policy(cluster string) (lifecycle.Policy, error) {
	g, err := s.GroupFor(cluster)
	if err != nil {
		return lifecycle.Policy{}, err
	}
	return g.policy, nil
}

// LifecycleBackends describes every backend to the lifecycle planner: its
// driver's class names with the config's overrides.
func (s *Set) LifecycleBackends() ([]lifecycle.Backend, error) {
	out := make([]lifecycle.Backend, 0, len(s.cfg.Backends))
	for _, bc := range s.cfg.Backends {
		classes, err := bc.StorageClasses()
		if err != nil {
			return nil, err
		}
		out = append(out, lifecycle.NewBackend(bc.Name, classes))
	}
	return out, nil
}

// Wake tells backend's replication worker that its queue grew.
func (s *Set) Wake(backend string) { s.repl.wake(backend) }

// BackendsStatus describes the backends with this set's last errors.
func (s *Set) BackendsStatus() ([]BackendStatus, error) {
	return BackendsStatus(s.catalog, s.cfg, s.stores)
}
