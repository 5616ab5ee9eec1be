// Package protocol is walgate's wire protocol, version 1: the paths, headers,
// JSON bodies and error codes that walgate-client and the gateway speak, and
// the token and cluster-name grammars both sides check.
//
// Both binaries import it; it imports nothing of walgate's but PostgreSQL
// naming, and does no I/O. docs/architecture.md specifies the protocol verb
// by verb; this package is its single source of truth in code.
package protocol
