package all

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/backends/gcs"
	"github.com/walgate/walgate/backends/s3"
)

// Types lists the store types Open knows.
var Types = []string{"fs", "s3", "gcs", "azure"}

// Config describes one object store. Type picks which of the per-type
// sections applies; secrets in them are never logged (each section's
// String masks them).
type Config struct {
	Name string `yaml:"name"` // unique, used in logs and the catalog
	Type string `yaml:"type"` // fs, s3, gcs or azure
	Path string `yaml:"path"` // fs: root directory
	// S3 configures a bucket of Amazon S3 or an S3-compatible store.
	S3 *s3.Config `yaml:"s3"`
	// GCS configures a Google Cloud Storage bucket.
	GCS *gcs.Config `yaml:"gcs"`
	// Azure configures an Azure Blob Storage container.
	Azure *azure.Config `yaml:"azure"`
	// Classes maps walgate's abstract classes (hot, warm, cold, archive)
	// to this backend's own class names (lifecycle).
	Classes map[string]string `yaml:"classes"`
	// MaxWrites bounds the uploads to this backend at once (pushes and
	// replication together; more wait their turn). Uploads to gcs and
	// azure, and to s3 of unknown size, buffer one chunk, block or part
	// each, so this bounds the gateway's memory: default 32 for s3, gcs
	// and azure (about 128 MiB at the default 4 MiB chunks), unbounded
	// (0) for fs, which streams.
	MaxWrites int `yaml:"max_writes"`
}

// Open opens the store c describes with its driver's constructor. It does
// not contact remote stores; an fs store's directory is created.
func Open(ctx context.Context, c Config) (backends.Backend, error) {
	var (
		b   backends.Backend
		err error
	)
	switch c.Type {
	case "fs":
		if err := os.MkdirAll(c.Path, 0o750); err != nil {
			return nil, fmt.Errorf("backend %s: %w", c.Name, err)
		}
		b, err = fs.New(c.Path, fs.Options{})
	case "s3":
		if c.S3 == nil {
			return nil, fmt.Errorf("backend %s: type s3 needs an s3: section", c.Name)
		}
		b, err = s3.New(ctx, *c.S3)
	case "gcs":
		if c.GCS == nil {
			return nil, fmt.Errorf("backend %s: type gcs needs a gcs: section", c.Name)
		}
		b, err = gcs.New(ctx, *c.GCS)
	case "azure":
		if c.Azure == nil {
			return nil, fmt.Errorf("backend %s: type azure needs an azure: section", c.Name)
		}
		b, err = azure.New(ctx, *c.Azure)
	default:
		return nil, fmt.Errorf("backend %s: type %q is not available", c.Name, c.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", c.Name, err)
	}
	return b, nil
}

// Recover removes what writers killed mid-stream left in b, as opened by
// Open: an fs store's temp files (none of them is ever visible). Other
// stores keep nothing of an unfinished write. It returns how many objects
// it removed. The daemon calls it at start; read-only verbs never do.
func Recover(b backends.Backend) (int, error) {
	if fb, ok := b.(*fs.Backend); ok {
		return fb.CleanTemp(0)
	}
	return 0, nil
}

// Validate checks c's type and its section, and its classes mapping
// against the driver's classes. Each error says what to change.
func (c Config) Validate() []error {
	var errs []error
	switch c.Type {
	case "fs":
		if c.Path == "" {
			errs = append(errs, errors.New("fs needs path"))
		}
	case "s3":
		if c.S3 == nil {
			errs = append(errs, errors.New("type s3 needs an s3: section (bucket, region or endpoint, ...)"))
		} else if err := c.S3.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("s3: %w", err))
		}
	case "gcs":
		if c.GCS == nil {
			errs = append(errs, errors.New("type gcs needs a gcs: section (bucket, ...)"))
		} else if err := c.GCS.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("gcs: %w", err))
		}
	case "azure":
		if c.Azure == nil {
			errs = append(errs, errors.New("type azure needs an azure: section (account, container, credentials)"))
		} else if err := c.Azure.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("azure: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown type %q; use fs, s3, gcs or azure", c.Type))
	}
	for typ, set := range map[string]bool{"s3": c.S3 != nil, "gcs": c.GCS != nil, "azure": c.Azure != nil} {
		if set && c.Type != typ {
			errs = append(errs, fmt.Errorf("an %s: section on a %s backend", typ, c.Type))
		}
	}
	if c.MaxWrites < 0 {
		errs = append(errs, errors.New("max_writes must not be negative"))
	}
	if std, err := driverClasses(c.Type); err == nil && len(std.Names) == 0 && len(c.Classes) > 0 {
		errs = append(errs, fmt.Errorf("an %s backend has no storage classes; remove classes:", c.Type))
	}
	for abstract := range c.Classes {
		if !slices.Contains(backends.AbstractClasses, abstract) {
			errs = append(errs, fmt.Errorf("classes: %q is not one of hot, warm, cold, archive", abstract))
		}
	}
	return errs
}

// StorageClasses is the store's class vocabulary: its driver's, with the
// config's classes: mapping laid over it.
func (c Config) StorageClasses() (backends.Classes, error) {
	std, err := driverClasses(c.Type)
	if err != nil {
		return backends.Classes{}, fmt.Errorf("backend %s: %w", c.Name, err)
	}
	if len(std.Names) == 0 {
		return std, nil
	}
	names := make(map[string]string, len(std.Names))
	for abstract, name := range std.Names {
		names[abstract] = name
	}
	for abstract, name := range c.Classes {
		names[abstract] = name
	}
	std.Names = names
	return std, nil
}

// DefaultMaxWrites bounds the store's concurrent uploads when the config
// sets no max_writes: unbounded (0) for fs, which streams; 32 for the
// others, whose uploads buffer one chunk, block or part each.
func (c Config) DefaultMaxWrites() int {
	if c.Type == "fs" {
		return 0
	}
	return 32
}

// driverClasses is a store type's own class vocabulary.
func driverClasses(typ string) (backends.Classes, error) {
	switch typ {
	case "fs":
		return fs.Classes(), nil
	case "s3":
		return s3.Classes(), nil
	case "gcs":
		return gcs.Classes(), nil
	case "azure":
		return azure.Classes(), nil
	}
	return backends.Classes{}, fmt.Errorf("type %q: want s3, gcs, azure or fs", typ)
}
