//go:build !linux

package client

// syncFilesystems makes everything under dirs durable. Without Linux's
// syncfs(2) that is an fsync of every regular file and directory there
// (syncTree): slower than one flush per filesystem, as durable. done is
// told of each dir.
func syncFilesystems(dirs []string, done func(op, path string)) error {
	for _, d := range dirs {
		if err := syncTree(d); err != nil {
			return err
		}
		done("syncfs", d)
	}
	return nil
}

// startWriteback is Linux's sync_file_range; elsewhere PostgreSQL's own
// fsync of the restored segment does all the writing.
func startWriteback(string) {}
