package s3

import "github.com/walgate/walgate/backends"

// Classes is S3's storage-class vocabulary. Archive is GLACIER (Flexible
// Retrieval); a config may map archive to DEEP_ARCHIVE, the cheaper,
// slower one. Both must be rehydrated (restored) before a read.
func Classes() backends.Classes {
	return backends.Classes{
		Names: map[string]string{backends.ClassHot: "STANDARD", backends.ClassWarm: "STANDARD_IA",
			backends.ClassCold: "GLACIER_IR", backends.ClassArchive: "GLACIER"},
		Rehydration: []string{"GLACIER", "DEEP_ARCHIVE"},
	}
}
