package emulators

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestFakeGCS(t *testing.T) {
	start := time.Now()
	s, err := StartFakeGCS()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	t.Logf("fake-gcs-server ready at %s after %v", s.Endpoint, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	if err := s.NewBucket(ctx, "walgate-emulator-test"); err != nil {
		t.Fatal(err)
	}
	if err := s.NewBucket(ctx, "walgate-emulator-test"); err == nil {
		t.Error("creating the same bucket twice succeeded")
	}
	resp, err := http.Get(s.Endpoint + "b/walgate-emulator-test/o")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("listing the new bucket: %s", resp.Status)
	}
}
