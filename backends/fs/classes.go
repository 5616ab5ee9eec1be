package fs

import "github.com/walgate/walgate/backends"

// Classes is the fs store's storage-class vocabulary: it has none. Nothing
// is ever moved, and its bytes count as hot.
func Classes() backends.Classes { return backends.Classes{} }
