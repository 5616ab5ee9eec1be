package gcs_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/backends/gcs"
)

// server is the fake-gcs-server every test in the package uses.
var server *emulators.GCSServer

func TestMain(m *testing.M) {
	var err error
	server, err = emulators.StartFakeGCS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gcs tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

var ctx = context.Background()

// newBucket creates a bucket of the test's own.
func newBucket(t *testing.T) string {
	t.Helper()
	name := "walgate-" + strings.ToLower(rand.Text()[:12])
	if err := server.NewBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// emulatorConfig is a Config for bucket on the emulator.
func emulatorConfig(bucket, prefix string) gcs.Config {
	return gcs.Config{Bucket: bucket, Prefix: prefix, Endpoint: server.Endpoint, Anonymous: true}
}

func newBackend(t *testing.T, cfg gcs.Config) *gcs.Backend {
	t.Helper()
	b, err := gcs.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	bucket := newBucket(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		// No prefix: the suite writes keys of the full 1024 bytes the
		// store allows in an object name.
		return newBackend(t, emulatorConfig(bucket, ""))
	})
}
