package emulators

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account (documented by Microsoft; it is
// no secret).
const (
	AzuriteAccount    = "devstoreaccount1"
	AzuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azuriteStartTimeout bounds how long StartAzurite waits for the server
// (5–12 s measured on a loaded machine).
const azuriteStartTimeout = 60 * time.Second

// AzuriteServer is a running Azurite blob service holding its data in
// memory, listening on 127.0.0.1 only.
type AzuriteServer struct {
	*Process
	Port       int
	Account    string // devstoreaccount1
	AccountKey string // its well-known key
	Endpoint   string // http://127.0.0.1:PORT/devstoreaccount1
}

// StartAzurite starts azurite-blob from the tools cache on a free loopback
// port, without telemetry, and waits until it answers.
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
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence",
		// azblob v1.8.3 sends an API version newer than Azurite 3.35 knows.
		"--skipApiVersionCheck",
		"--disableTelemetry",
		"--silent",
	)
	if err != nil {
		return nil, err
	}
	s := &AzuriteServer{
		Process:    p,
		Port:       port,
		Account:    AzuriteAccount,
		AccountKey: AzuriteAccountKey,
		Endpoint:   fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount),
	}
	// Any HTTP answer (an unauthenticated list is refused) means it serves.
	if err := p.waitReady(azuriteStartTimeout, httpProbe(s.Endpoint+"?comp=list", func(int) bool { return true })); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// ConnectionString returns the connection string of the emulator's account.
func (s *AzuriteServer) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		s.Account, s.AccountKey, s.Endpoint)
}

// ContainerClient returns a client of the container name, authenticated
// with the account key.
func (s *AzuriteServer) ContainerClient(name string) (*container.Client, error) {
	cred, err := container.NewSharedKeyCredential(s.Account, s.AccountKey)
	if err != nil {
		return nil, err
	}
	return container.NewClientWithSharedKeyCredential(s.Endpoint+"/"+name, cred, nil)
}

// NewContainer creates the container name (3–63 characters of a-z, 0-9 and
// '-'). An existing container of that name is an error, so that a test
// starts empty.
func (s *AzuriteServer) NewContainer(ctx context.Context, name string) error {
	c, err := s.ContainerClient(name)
	if err != nil {
		return err
	}
	if _, err := c.Create(ctx, nil); err != nil {
		if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return fmt.Errorf("azurite: container %q already exists", name)
		}
		return fmt.Errorf("azurite: creating container %q: %w", name, err)
	}
	return nil
}
