// Package backends defines the one interface every object store walgate
// writes to implements, and the error values they share.
//
// Implementations live in sub-packages (fs today; s3, gcs and azure next),
// each with a constructor and no init-time registration. Every
// implementation runs the conformance suite in backends/backendtest against
// a real server. This package knows nothing of PostgreSQL or of the gateway:
// keys are opaque slash-separated strings.
package backends
