package backends_test

import (
	"context"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/fs"
)

// The check passes on the fs backend and leaves nothing behind. The fs
// backend has no classes: the class rows come out "not available", which
// is not a failure.
func TestCheckFS(t *testing.T) {
	root := t.TempDir()
	b, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	results := backends.Check(context.Background(), b, []string{"STANDARD_IA"})
	for _, r := range results {
		t.Logf("%-28s ok=%v %s", r.Name, r.OK, r.Detail)
		if !r.OK && r.Required {
			t.Errorf("%s failed: %s", r.Name, r.Detail)
		}
		if r.OK && !r.Required {
			t.Errorf("%s passed on a backend without classes", r.Name)
		}
	}
	var left []string
	if err := b.List(context.Background(), "", func(o backends.ObjectInfo) error { left = append(left, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the check left %q", left)
	}
}
