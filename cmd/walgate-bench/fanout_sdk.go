package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	s3be "github.com/walgate/walgate/backends/s3"
)

// The S3 baselines: the same objects (size, count, concurrency) PUT into
// the same SeaweedFS without the gateway, once straight through the AWS
// SDK on its defaults (a fresh client, connection pool as wide as the
// streams) and once through walgate's own s3 driver in this process. The
// gateway's s3 figure over the first is what the gateway path costs; over
// the second, what the driver's choices (unsigned streamed payload, no
// SDK checksums) cost or save.

// sdkBaselines measures both baselines at the given concurrency.
func sdkBaselines(ctx context.Context, srv *emulators.SeaweedFS, bucket string, streams int) ([]fanoutRun, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, MaxIdleConns: streams}}
	sdk := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:   hc,
	})
	sdkRun, err := putLoad(ctx, srv.Pid(), fmt.Sprintf("S3 SDK alone (PutObject on its defaults, in process), %d at once", streams), streams,
		func(ctx context.Context, key string, body []byte) error {
			_, err := sdk.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("sdk/" + key),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
			return err
		})
	if err != nil {
		return nil, err
	}
	drv, err := s3be.New(ctx, s3be.Config{Bucket: bucket, Prefix: "driver", Endpoint: srv.Endpoint, PathStyle: true,
		Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	defer drv.Close()
	drvRun, err := putLoad(ctx, srv.Pid(), fmt.Sprintf("walgate's s3 driver alone (backends/s3 Put, in process), %d at once", streams), streams,
		func(ctx context.Context, key string, body []byte) error {
			_, err := drv.Put(ctx, key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{})
			return err
		})
	if err != nil {
		return nil, err
	}
	return []fanoutRun{sdkRun, drvRun}, nil
}

// putLoad runs streams goroutines that together put streams x
// fanoutPerConn distinct objects of fanoutObject random bytes, and
// measures the CPU time of this process and of the store (storePid).
func putLoad(ctx context.Context, storePid int, name string, streams int, put func(ctx context.Context, key string, body []byte) error) (fanoutRun, error) {
	run := fanoutRun{name: name, streams: streams, baseline: true}
	body := make([]byte, fanoutObject)
	if _, err := rand.Read(body); err != nil {
		return run, err
	}
	total := streams * fanoutPerConn
	var next, failed, stored atomic.Int64
	var firstErr sync.Once
	var errMsg string
	cpu0 := sampleFanoutCPU(0, storePid)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			buf := bytes.Clone(body)
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				copy(buf, fmt.Sprintf("%016x", i))
				if err := put(ctx, fmt.Sprintf("wal/%016X", i), buf); err != nil {
					failed.Add(1)
					firstErr.Do(func() { errMsg = err.Error() })
					continue
				}
				stored.Add(int64(len(buf)))
			}
		})
	}
	wg.Wait()
	run.elapsed = time.Since(t0)
	_, run.storeCPU, run.pusherCPU = sampleFanoutCPU(0, storePid).since(cpu0)
	run.objects, run.bytes, run.failed = total-int(failed.Load()), stored.Load(), int(failed.Load())
	if run.failed > 0 {
		logf("fan-out: %s: %d failed, first: %s", name, run.failed, errMsg)
	}
	return run, nil
}
