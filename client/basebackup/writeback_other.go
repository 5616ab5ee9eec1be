//go:build !linux

package basebackup

import (
	"errors"
	"os"
)

// startFileWriteback is Linux's sync_file_range; elsewhere the final flush
// does all the writing.
func startFileWriteback(f *os.File, off, n int64) error {
	return errors.ErrUnsupported
}
