package lifecycle

import "github.com/walgate/walgate/backends"

// Backend is what the planner knows of one object store: its name (as the
// catalog names holders) and its class names.
type Backend struct {
	Name string
	// Classes maps abstract classes to the backend's class names. A class
	// missing from the map falls back to the next warmer one that is
	// there. Empty (fs): the backend has no classes, nothing is moved, and
	// its bytes count as Hot in the cost estimate.
	Classes map[Class]string
	// Rehydration lists the backend's class names whose objects must be
	// rehydrated before they can be read.
	Rehydration []string
}

// NewBackend describes a store to the planner from the class vocabulary
// its driver states (backends/all gives it with the config's overrides).
func NewBackend(name string, c backends.Classes) Backend {
	b := Backend{Name: name, Rehydration: c.Rehydration}
	if len(c.Names) > 0 {
		b.Classes = make(map[Class]string, len(c.Names))
		for abstract, n := range c.Names {
			b.Classes[Class(abstract)] = n
		}
	}
	return b
}

// backendView is a Backend prepared for lookups.
type backendView struct {
	Backend
	// name of each abstract class after fallback, by rank; "" = no classes
	names [4]string
	// abstract class of each backend class name ("" is the default: Hot)
	abstract map[string]Class
	rehyd    map[string]bool
}

func newBackendView(b Backend) *backendView {
	v := &backendView{Backend: b, abstract: map[string]Class{"": Hot}, rehyd: map[string]bool{}}
	for _, r := range b.Rehydration {
		v.rehyd[r] = true
	}
	if len(b.Classes) == 0 {
		return v
	}
	prev := ""
	for i, c := range Classes {
		if n, ok := b.Classes[c]; ok {
			prev = n
			if _, seen := v.abstract[n]; !seen {
				v.abstract[n] = c
			}
		}
		v.names[i] = prev
	}
	for _, r := range b.Rehydration {
		if _, ok := v.abstract[r]; !ok {
			v.abstract[r] = Archive // e.g. DEEP_ARCHIVE when GLACIER is mapped
		}
	}
	return v
}

func (v *backendView) hasClasses() bool { return len(v.Classes) > 0 }

// classOf is the abstract class of a stored object's class name; ok is
// false for a name the mapping does not know.
func (v *backendView) classOf(name string) (Class, bool) {
	if !v.hasClasses() {
		return Hot, true
	}
	c, ok := v.abstract[name]
	return c, ok
}

// instant is the coldest class at most as cold as c whose objects read
// without rehydration on this backend.
func (v *backendView) instant(c Class) Class {
	for r := c.rank(); r > 0; r-- {
		if !v.rehyd[v.names[r]] {
			return Classes[r]
		}
	}
	return Hot
}
