package emulators

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAzurite(t *testing.T) {
	start := time.Now()
	s, err := StartAzurite()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	t.Logf("Azurite ready in %s at %s", time.Since(start).Round(time.Millisecond), s.Endpoint)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") || !strings.HasSuffix(s.Endpoint, "/devstoreaccount1") {
		t.Errorf("Endpoint = %q", s.Endpoint)
	}
	if cs := s.ConnectionString(); !strings.Contains(cs, "BlobEndpoint="+s.Endpoint+";") || !strings.Contains(cs, "AccountName=devstoreaccount1;") {
		t.Errorf("ConnectionString() = %q", cs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.NewContainer(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	if err := s.NewContainer(ctx, "first"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second NewContainer of one name: %v, want an error saying it exists", err)
	}
	c, err := s.ContainerClient("first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetProperties(ctx, nil); err != nil {
		t.Errorf("GetProperties of the new container: %v", err)
	}
	s.Stop()
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second) // the SDK retries
	defer cancel()
	if _, err := c.GetProperties(ctx, nil); err == nil {
		t.Errorf("the emulator still answers after Stop")
	}
}
