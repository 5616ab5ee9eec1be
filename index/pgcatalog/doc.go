// Package pgcatalog is the catalog in a PostgreSQL database, shared by a
// fleet of gateways: the same records as the bbolt catalog (index.Catalog),
// behind the same index.Interface, one row per record in the schema
// "walgate". It creates and migrates its schema at Open under an advisory
// lock and refuses a schema newer than it knows.
//
// Rules: every change the bbolt catalog makes in one transaction is one
// PostgreSQL transaction here; a WAL name is claimed with an
// insert-if-absent inside the transaction that records it; replication
// entries are claimed row by row (FOR UPDATE SKIP LOCKED, a lease in the
// row) so that no two gateways copy one at once; no store I/O
// runs inside a transaction; the DSN's password never appears in an error
// or a log line.
package pgcatalog
