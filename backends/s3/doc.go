// Package s3 stores objects in an Amazon S3 bucket or an S3-compatible
// store (SeaweedFS, MinIO, Ceph RGW, ...), through aws-sdk-go-v2.
//
// Uploads stream. An object of known size up to Config.MultipartThreshold
// goes in one PutObject whose body is the caller's reader (sent as
// UNSIGNED-PAYLOAD with an explicit Content-Length: the SDK cannot sign a
// body it cannot rewind, and TLS or the catalog's sha256 protect the bytes);
// larger objects and objects of unknown size go in a multipart upload. Parts
// of a known-size object stream the same way; parts of an unknown-size
// object are buffered one at a time (Config.PartSize), so a Put holds at most
// one part in memory. A failed or cancelled multipart upload is aborted, so
// nothing becomes visible.
//
// Conditional create uses If-None-Match: * on PutObject and on
// CompleteMultipartUpload. Classes are S3 storage classes (STANDARD,
// STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER,
// DEEP_ARCHIVE, ...); SetClass copies the object onto itself with the new
// class, keeping its metadata (CopyObject: objects up to 5 GiB). Metadata is
// S3 user metadata (x-amz-meta-*); List reads it with one HeadObject per
// object, since ListObjectsV2 does not return it.
package s3
