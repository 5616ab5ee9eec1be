// Package client is what walgate-client does on a database host: it reads
// WAL files PostgreSQL hands to archive_command, compresses and encrypts
// them (package codec), streams them to the gateway and checks the
// gateway's acknowledgement; and it fetches, verifies and decodes them for
// restore_command.
//
// It imports the wire protocol, the codec and PostgreSQL naming, never the
// gateway, and no cloud SDK: the client is exec'd once per WAL segment, so
// its start-up is on the hot path. Library functions return typed errors
// (see Error and the Err* values); cmd/walgate-client maps them to exit
// codes and one line on stderr.
package client
