// Package e2e holds walgate's end-to-end tests: a real PostgreSQL 15
// cluster archiving through the real walgate-client binary into a real
// gateway, and restores whose table checksums must equal the source's.
// It has no non-test code.
package e2e
