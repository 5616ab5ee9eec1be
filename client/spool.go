package client

import (
	"bytes"
	"io"
	"os"
)

// SpoolMemory is how much encoded data a push keeps in memory before it
// spills to a temporary file. Compressed WAL segments almost always fit.
const SpoolMemory = 4 << 20

// spool holds an encoded object so that its exact size and hash are known
// before it is sent, and so that a retry can send it again, with memory
// bounded by SpoolMemory.
type spool struct {
	dir  string
	mem  []byte
	file *os.File
	size int64
}

func newSpool(dir string) *spool { return &spool{dir: dir} }

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && len(s.mem)+len(p) <= SpoolMemory {
		if s.mem == nil {
			// One allocation; pages are touched only as they fill.
			s.mem = make([]byte, 0, SpoolMemory)
		}
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return len(p), nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "walgate-push-*")
		if err != nil {
			return 0, err
		}
		// Unlinked at once: nothing is left behind whatever happens next.
		os.Remove(f.Name())
		s.file = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, err
		}
		s.mem = nil
	}
	n, err := s.file.Write(p)
	s.size += int64(n)
	return n, err
}

// Reader returns a fresh reader over everything written so far.
func (s *spool) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem)
}

// Size is the number of bytes written.
func (s *spool) Size() int64 { return s.size }

// Close drops the spooled data.
func (s *spool) Close() error {
	s.mem = nil
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
