package backends

// The abstract storage classes, warmest first, that walgate's lifecycle
// policies speak of. Each store maps them to its own class names.
const (
	ClassHot     = "hot"
	ClassWarm    = "warm"
	ClassCold    = "cold"
	ClassArchive = "archive"
)

// AbstractClasses lists the abstract classes, warmest first.
var AbstractClasses = []string{ClassHot, ClassWarm, ClassCold, ClassArchive}

// Classes is a store's storage-class vocabulary, as its driver states it.
type Classes struct {
	// Names maps abstract classes (ClassHot ...) to the store's class
	// names. Empty: the store has no classes (fs).
	Names map[string]string
	// Rehydration lists the store's class names whose objects must be
	// rehydrated before they can be read (S3 GLACIER, Azure Archive).
	Rehydration []string
}

// NeedsRehydration reports whether objects of the store's class name must
// be rehydrated before a read.
func (c Classes) NeedsRehydration(name string) bool {
	for _, r := range c.Rehydration {
		if r == name {
			return true
		}
	}
	return false
}
