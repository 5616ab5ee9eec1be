package gcs

import "github.com/walgate/walgate/backends"

// Classes is Google Cloud Storage's storage-class vocabulary. Every class,
// ARCHIVE included, reads at once (at a price): none needs rehydration.
func Classes() backends.Classes {
	return backends.Classes{
		Names: map[string]string{backends.ClassHot: "STANDARD", backends.ClassWarm: "NEARLINE",
			backends.ClassCold: "COLDLINE", backends.ClassArchive: "ARCHIVE"},
	}
}
