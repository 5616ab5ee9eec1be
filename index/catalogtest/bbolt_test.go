package catalogtest_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/catalogtest"
)

func TestBbolt(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) index.Interface {
		c, err := index.Open(filepath.Join(t.TempDir(), "catalog.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}
