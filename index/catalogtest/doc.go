// Package catalogtest is the one conformance suite every catalog
// implementation (index.Interface) runs: the bbolt catalog in its own test,
// the PostgreSQL catalog against a real PostgreSQL server. A contract holds
// only where this suite checks it; an implementation's own test file is a
// few lines that open a fresh catalog and call Run.
//
// It imports only index and the standard library, and never reads files
// outside the test's temporary directory.
package catalogtest
