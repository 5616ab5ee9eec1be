package fs

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends"
)

// xattrPrefix starts the extended attribute that holds each metadata entry:
// metadata "wal-hash" is the attribute "user.walgate.wal-hash".
const xattrPrefix = "user.walgate."

// maxXattrName is the longest attribute name Linux takes.
const maxXattrName = 255

// validateMetadata checks metadata against backends.ValidateMetadata and
// the length of an extended attribute name.
func validateMetadata(md map[string]string) error {
	if err := backends.ValidateMetadata(md); err != nil {
		return err
	}
	for k := range md {
		if len(xattrPrefix)+len(k) > maxXattrName {
			return fmt.Errorf("%w: key %q is longer than %d bytes", backends.ErrInvalidMetadata, k, maxXattrName-len(xattrPrefix))
		}
	}
	return nil
}

func copyMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	return maps.Clone(md)
}

func isNotSupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// setMetadata stores md as extended attributes of the open file fd.
func setMetadata(fd int, md map[string]string) error {
	for k, v := range md {
		err := unix.Fsetxattr(fd, xattrPrefix+k, []byte(v), 0)
		if isNotSupported(err) {
			return fmt.Errorf("storing metadata: the filesystem does not support extended attributes "+
				"(set IgnoreMetadata to store objects without metadata): %w", backends.ErrUnsupported)
		}
		if err != nil {
			return fmt.Errorf("storing metadata %q as an extended attribute: %w", k, err)
		}
	}
	return nil
}

// readMetadata returns the walgate metadata of the open file fd, nil when
// there is none or the filesystem has no extended attributes.
func readMetadata(fd int) (map[string]string, error) {
	names, err := listXattr(fd)
	if isNotSupported(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var md map[string]string
	for _, name := range names {
		k, ok := strings.CutPrefix(name, xattrPrefix)
		if !ok {
			continue // security.selinux and the like
		}
		v, err := getXattr(fd, name)
		if errors.Is(err, errNoAttr) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if md == nil {
			md = make(map[string]string)
		}
		md[k] = string(v)
	}
	return md, nil
}

func listXattr(fd int) ([]string, error) {
	for {
		sz, err := unix.Flistxattr(fd, nil)
		if err != nil || sz == 0 {
			return nil, err
		}
		buf := make([]byte, sz)
		n, err := unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for name := range bytes.SplitSeq(bytes.TrimRight(buf[:n], "\x00"), []byte{0}) {
			names = append(names, string(name))
		}
		return names, nil
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	for {
		sz, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, sz)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
