// Package catalogdb starts PostgreSQL servers for tests of the PostgreSQL
// catalog (index/pgcatalog): a real PostgreSQL 15 cluster through pgtest,
// a fresh database per catalog, a login role with a password, and a TCP
// proxy that a test can cut to make the catalog unreachable. Its own test
// runs the catalog conformance suite (index/catalogtest) against it.
package catalogdb
