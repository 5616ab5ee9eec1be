// Package e2e holds walgate's end-to-end tests: a real PostgreSQL 15
// cluster archiving through the real walgate-client binary into a real
// gateway, and restores whose table checksums must equal the source's;
// one compact scenario on each of PostgreSQL 13 to 18 (versions_test.go);
// and a fleet of three `walgate serve` processes on a PostgreSQL catalog,
// one killed with SIGKILL under load (fleet_test.go).
// It has no non-test code.
package e2e
