// Package emulators starts the object-store servers walgate's tests run
// against, on free 127.0.0.1 ports in temp directories: SeaweedFS (S3),
// fake-gcs-server (GCS) and Azurite (Azure Blob). The binaries come from the
// tools cache .ci/install-deps.sh fills ($WALGATE_TOOLS, default
// /var/cache/walgate-tools/v1); a missing one is an error naming `make deps`,
// never a skip.
//
// A test package starts each server once in TestMain and stops it at the end;
// the servers die with the test process even when it is killed (Pdeathsig).
package emulators
