// Package all is the one place that knows every store driver: it holds a
// configured store's settings (Config, strict YAML), checks them, opens the
// store with its driver's constructor, and gives the driver's storage-class
// vocabulary with the config's overrides.
//
// It owns the list of drivers and nothing else: no retries, no caching, no
// package-level state and no init() registration. Adding a driver means a
// case in Open, Validate and Classes and a section in Config. It never
// imports anything of walgate's above backends/, and it never contacts a
// remote store while opening it (`walgate backend check` does).
package all
