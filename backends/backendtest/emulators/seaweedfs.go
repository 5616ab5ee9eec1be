package emulators

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SeaweedFS is a running `weed mini`: an S3 server that checks SigV4
// signatures, with one access key.
type SeaweedFS struct {
	*Process
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
}

// StartSeaweedFS starts `weed mini` with every listener on 127.0.0.1 (its
// gRPC ports are the HTTP ports + 10000), telemetry, WebDAV, the admin UI
// and the Iceberg/Lance catalogs off, and waits until an object can be
// written and read.
func StartSeaweedFS() (*SeaweedFS, error) {
	bin, err := Tool("weed")
	if err != nil {
		return nil, err
	}
	ports, err := grpcPairedPorts(4)
	if err != nil {
		return nil, err
	}
	s := &SeaweedFS{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(ports[3]),
		AccessKey: "walgatetest",
		SecretKey: "walgate-test-secret-key",
		Region:    "us-east-1",
	}
	p, err := startProcess("seaweedfs", bin,
		[]string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey},
		"mini", "-dir=.", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+strconv.Itoa(ports[0]),
		"-volume.port="+strconv.Itoa(ports[1]),
		"-filer.port="+strconv.Itoa(ports[2]),
		"-s3.port="+strconv.Itoa(ports[3]),
		"-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-admin.port.legacy=0",
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.volumeSizeLimitMB=64", "-bucket=walgate-ready")
	if err != nil {
		return nil, err
	}
	s.Process = p
	client := s.Client()
	if err := p.waitReady(90*time.Second, func(ctx context.Context) error {
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("walgate-ready"), Key: aws.String("probe"),
			Body: strings.NewReader("ok"), ContentLength: aws.Int64(2),
		}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
		return err
	}); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// Client returns an S3 client for the server (path-style, its key).
func (s *SeaweedFS) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a bucket (names: 3-63 lower-case letters, digits, '-').
func (s *SeaweedFS) NewBucket(ctx context.Context, name string) error {
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("creating bucket %s on SeaweedFS: %w", name, err)
	}
	return nil
}

// grpcPairedPorts returns n free ports p on 127.0.0.1 whose p+10000 is free
// too (SeaweedFS puts each service's gRPC there).
func grpcPairedPorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 200; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			l.Close()
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, l2)
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("could not find %d free port pairs on 127.0.0.1", n)
	}
	return ports, nil
}
