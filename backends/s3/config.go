package s3

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config describes one bucket (and a key prefix in it).
type Config struct {
	// Bucket is required.
	Bucket string `yaml:"bucket"`
	// Prefix is prepended (with a slash) to every key; "" for none.
	Prefix string `yaml:"prefix"`
	// Region, e.g. eu-central-1. Empty: the SDK's chain (AWS_REGION, the
	// shared config), or us-east-1 with a custom Endpoint.
	Region string `yaml:"region"`
	// Endpoint is the store's URL for S3-compatible stores
	// (https://s3.example.net); empty for AWS.
	Endpoint string `yaml:"endpoint"`
	// PathStyle addresses the bucket in the path (endpoint/bucket/key)
	// instead of the host name; most S3-compatible stores need it.
	PathStyle bool `yaml:"path_style"`
	// AccessKeyID and SecretAccessKey (and SessionToken) are explicit
	// credentials. Empty: the SDK's default chain (AWS_ACCESS_KEY_ID...,
	// AWS_PROFILE and the shared files, web identity, ECS/EC2 roles).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// Profile picks a profile of the shared config files for the chain.
	Profile string `yaml:"profile"`
	// CAFile is a PEM bundle to trust for the endpoint's certificate in
	// addition to the system's.
	CAFile string `yaml:"ca_file"`
	// PartSize is the multipart part size (at least 5 MiB, S3's minimum;
	// default 8 MiB). An upload of unknown size buffers one part.
	PartSize int64 `yaml:"part_size"`
	// MultipartThreshold: known-size objects larger than this go in a
	// multipart upload (default 256 MiB, at most 5 GiB).
	MultipartThreshold int64 `yaml:"multipart_threshold"`
	// Timeout bounds connecting and waiting for each response's headers
	// (not a whole transfer). Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how often a request that failed transiently is tried,
	// the buffered parts of an upload of unknown size included (a request
	// whose body is streamed from the caller is tried once: the caller
	// retries). Default 3.
	MaxAttempts int `yaml:"max_attempts"`
}

const (
	minPartSize         = 5 << 20
	defaultPartSize     = 8 << 20
	maxSinglePut        = 5 << 30
	defaultThreshold    = 256 << 20
	defaultTimeout      = 60 * time.Second
	defaultMaxAttempts  = 3
	maxParts            = 10000
	defaultRegionCustom = "us-east-1"
)

func (c Config) withDefaults() Config {
	if c.PartSize == 0 {
		c.PartSize = defaultPartSize
	}
	if c.MultipartThreshold == 0 {
		c.MultipartThreshold = defaultThreshold
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	return c
}

// Validate reports what is wrong with the config, all at once.
func (c Config) Validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("endpoint %q: want a URL starting with https:// (or http://)", c.Endpoint))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("access_key_id and secret_access_key go together: set both, or neither to use the SDK's credential chain"))
	}
	if c.PartSize != 0 && c.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("part_size %d: S3 needs at least 5 MiB (%d)", c.PartSize, minPartSize))
	}
	if c.MultipartThreshold < 0 || c.MultipartThreshold > maxSinglePut {
		errs = append(errs, fmt.Errorf("multipart_threshold %d: want 0 (default) up to 5 GiB", c.MultipartThreshold))
	}
	if c.Timeout < 0 || c.MaxAttempts < 0 {
		errs = append(errs, errors.New("timeout and max_attempts must not be negative"))
	}
	if strings.Contains(c.Prefix, "//") || strings.Contains(c.Prefix, "\\") {
		errs = append(errs, fmt.Errorf("prefix %q: no double slashes or backslashes", c.Prefix))
	}
	return errors.Join(errs...)
}

// String describes the config with its secrets masked.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return fmt.Sprintf("s3{bucket=%s prefix=%s region=%s endpoint=%s path_style=%t access_key_id=%s secret_access_key=%s session_token=%s profile=%s}",
		c.Bucket, c.Prefix, c.Region, c.Endpoint, c.PathStyle, c.AccessKeyID, mask(c.SecretAccessKey), mask(c.SessionToken), c.Profile)
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }
