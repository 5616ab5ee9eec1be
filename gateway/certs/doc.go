// Package certs makes the trial PKI of `walgate cert init`: a CA, a server
// certificate for the given hosts and a client certificate, as PEM files
// with owner-only keys.
//
// It only writes new files into the directory it is given. It never
// loads, renews or trusts certificates for the running gateway (the
// gateway's TLS settings do), and it is for trials: production sites bring
// their own PKI.
package certs
