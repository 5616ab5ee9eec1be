// Package config is the gateway's configuration: the strict YAML schema
// (unknown keys are errors), its defaults, and the checks that say what to
// change. It also names the files of the data directory (CatalogPath).
//
// It owns parsing and checking only: it never opens a store, a catalog or
// a socket (backends/all opens stores from a BackendConfig), and it holds
// no state beyond the values it returns.
package config
