package azure

import "github.com/walgate/walgate/backends"

// Classes is Azure Blob Storage's access-tier vocabulary. Blobs in the
// Archive tier must be rehydrated before a read.
func Classes() backends.Classes {
	return backends.Classes{
		Names: map[string]string{backends.ClassHot: "Hot", backends.ClassWarm: "Cool",
			backends.ClassCold: "Cold", backends.ClassArchive: "Archive"},
		Rehydration: []string{"Archive"},
	}
}
