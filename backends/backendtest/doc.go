// Package backendtest is the conformance suite every backends.Backend runs,
// and the fault-injection wrappers other packages use to test how they cope
// with a store that fails.
//
// Run checks each contract written in backends.Backend: round trips with
// metadata, a 64 MiB object streamed in bounded memory, unknown sizes,
// range reads, odd and invalid keys, IfNotExists (also raced by eight
// writers, and on 7 MiB objects of known and unknown size), atomic overwrites, broken, cancelled and mis-sized uploads
// leaving nothing behind, listing order and prefixes, Delete and SetClass.
// A backend's own test file is a few lines:
//
//	func TestBackend(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backends.Backend {
//			b, err := fs.New(t.TempDir(), fs.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// Each subtest writes under its own random key prefix, so cloud backends can
// run the suite against an emulator with one shared bucket.
//
// FailingReader and FailAfter wrap a real reader or backend; there are no
// mocks here. A contract the suite does not check is not a contract: when
// backend.go gains one, this package gains its test.
//
// This package must never depend on a particular backend, talk to a network
// service itself, or be imported by non-test code.
package backendtest
