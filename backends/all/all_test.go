package all

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/s3"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{Name: "a", Type: "fs", Path: "/x"}, ""},
		{Config{Name: "a", Type: "fs"}, "fs needs path"},
		{Config{Name: "a", Type: "s3"}, "type s3 needs an s3: section"},
		{Config{Name: "a", Type: "ftp"}, `unknown type "ftp"`},
		{Config{Name: "a", Type: "fs", Path: "/x", S3: &s3.Config{}}, "an s3: section on a fs backend"},
		{Config{Name: "a", Type: "fs", Path: "/x", Classes: map[string]string{"cold": "X"}}, "an fs backend has no storage classes"},
		{Config{Name: "a", Type: "s3", S3: &s3.Config{Bucket: "b", Region: "r"}, Classes: map[string]string{"frozen": "X"}}, `"frozen" is not one of hot, warm, cold, archive`},
		{Config{Name: "a", Type: "fs", Path: "/x", MaxWrites: -1}, "max_writes must not be negative"},
	} {
		err := errors.Join(c.cfg.Validate()...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// Each driver states its classes; the config's mapping lays over them.
func TestStorageClasses(t *testing.T) {
	c, err := Config{Name: "a", Type: "s3", Classes: map[string]string{backends.ClassArchive: "DEEP_ARCHIVE"}}.StorageClasses()
	if err != nil {
		t.Fatal(err)
	}
	if c.Names[backends.ClassArchive] != "DEEP_ARCHIVE" || c.Names[backends.ClassWarm] != "STANDARD_IA" || !c.NeedsRehydration("DEEP_ARCHIVE") || c.NeedsRehydration("GLACIER_IR") {
		t.Errorf("s3 with archive: DEEP_ARCHIVE: %+v", c)
	}
	if c, _ := (Config{Type: "s3"}).StorageClasses(); c.Names[backends.ClassArchive] != "GLACIER" {
		t.Errorf("the override leaked into the driver's mapping: %+v", c)
	}
	for typ, rehydrate := range map[string][]string{"gcs": nil, "azure": {"Archive"}, "fs": nil} {
		c, err := Config{Type: typ}.StorageClasses()
		if err != nil || !slices.Equal(c.Rehydration, rehydrate) {
			t.Errorf("%s: %+v, %v", typ, c, err)
		}
		if (typ == "fs") != (len(c.Names) == 0) {
			t.Errorf("%s: classes %v", typ, c.Names)
		}
	}
	if _, err := (Config{Name: "x", Type: "ftp"}).StorageClasses(); err == nil {
		t.Error("an unknown type has classes")
	}
	for typ, n := range map[string]int{"fs": 0, "s3": 32, "gcs": 32, "azure": 32} {
		if got := (Config{Type: typ}).DefaultMaxWrites(); got != n {
			t.Errorf("%s: DefaultMaxWrites %d, want %d", typ, got, n)
		}
	}
}

// Open makes an fs store's directory; Recover removes what a write killed
// mid-stream left there (a temp file), and only that.
func TestOpenAndRecover(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b, err := Open(context.Background(), Config{Name: "a", Type: "fs", Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Put(context.Background(), "db/kept", strings.NewReader("x"), 1, backends.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// What a writer killed mid-Put leaves behind.
	left := filepath.Join(dir, "db", ".walgate-tmp-killed")
	if err := os.WriteFile(left, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := Recover(b); err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temp file is still there: %v", err)
	}
	if _, err := b.Stat(context.Background(), "db/kept"); err != nil {
		t.Errorf("Recover removed a stored object: %v", err)
	}
	if _, err := Open(context.Background(), Config{Name: "x", Type: "ftp"}); err == nil || !strings.Contains(err.Error(), `type "ftp"`) {
		t.Errorf("Open of an unknown type: %v", err)
	}
}
