package emulators

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// GCSServer is a running fake-gcs-server (in-memory, plain HTTP, loopback).
type GCSServer struct {
	*Process
	// Endpoint is the JSON API base a client passes to
	// option.WithEndpoint ("http://127.0.0.1:PORT/storage/v1/").
	Endpoint string
	// Host is "127.0.0.1:PORT", the form STORAGE_EMULATOR_HOST takes.
	Host string
}

// StartFakeGCS starts fake-gcs-server from the tools cache on a free
// 127.0.0.1 port with its in-memory backend and waits until it answers.
// The caller stops it with Stop.
func StartFakeGCS() (*GCSServer, error) {
	bin, err := Tool("fake-gcs-server")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	host := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProcess("fake-gcs-server", bin, nil,
		"-scheme", "http",
		"-host", "127.0.0.1",
		"-port", strconv.Itoa(port),
		"-backend", "memory",
		"-external-url", "http://"+host,
		"-public-host", host,
		"-log-level", "warn",
	)
	if err != nil {
		return nil, err
	}
	s := &GCSServer{Process: p, Endpoint: "http://" + host + "/storage/v1/", Host: host}
	probe := httpProbe(s.Endpoint+"b", func(status int) bool { return status == http.StatusOK })
	if err := p.waitReady(30*time.Second, probe); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// NewBucket creates an empty bucket called name (3-63 characters of
// [a-z0-9-_.]) through the JSON API, so that each test can have its own.
func (s *GCSServer) NewBucket(ctx context.Context, name string) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"b?project=walgate-test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fake-gcs-server: creating bucket %q: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("fake-gcs-server: creating bucket %q: %s: %s", name, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
