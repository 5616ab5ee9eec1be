package fs

// ObserveSteps makes b call fn before each durability step (see step):
// op is "mkdir", "write", "fsync", "rename", "link", "unlink" or
// "fsync-dir", rel the path relative to the root. An error from fn fails the
// step instead of running it.
func ObserveSteps(b *Backend, fn func(op, rel string) error) {
	b.observe = func(op fileOp, rel string) error { return fn(string(op), rel) }
}
