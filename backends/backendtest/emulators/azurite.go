package emulators

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is a running Azurite blob service (in memory, plain HTTP,
// loopback, telemetry off).
type AzuriteServer struct {
	*Process
	// Endpoint is the account's blob endpoint,
	// http://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	Account  string
	Key      string
}

// StartAzurite starts azurite-blob from the tools cache on a free
// 127.0.0.1 port and waits until it answers. --skipApiVersionCheck is
// needed: the SDK speaks a newer API version than Azurite knows.
func StartAzurite() (*AzuriteServer, error) {
	bin, err := Tool("azurite-blob")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := startProcess("azurite", bin, nil,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--extentMemoryLimit", "2048",
		"--skipApiVersionCheck", "--disableTelemetry", "--silent")
	if err != nil {
		return nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	s := &AzuriteServer{Process: p, Endpoint: base + "/" + AzuriteAccount, Account: AzuriteAccount, Key: AzuriteKey}
	// Any HTTP answer means it listens (an anonymous GET is a 400).
	if err := p.waitReady(60*time.Second, httpProbe(base+"/", func(int) bool { return true })); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// ConnectionString is the account's connection string.
func (s *AzuriteServer) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", s.Account, s.Key, s.Endpoint)
}

// NewContainer creates a container (3-63 lower-case letters, digits, '-').
func (s *AzuriteServer) NewContainer(ctx context.Context, name string) error {
	cred, err := azblob.NewSharedKeyCredential(s.Account, s.Key)
	if err != nil {
		return err
	}
	c, err := container.NewClientWithSharedKeyCredential(s.Endpoint+"/"+name, cred, nil)
	if err != nil {
		return err
	}
	if _, err := c.Create(ctx, nil); err != nil {
		return fmt.Errorf("azurite: creating container %s: %w", name, err)
	}
	return nil
}
