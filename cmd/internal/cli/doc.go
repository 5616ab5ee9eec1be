// Package cli parses the command lines of walgate and walgate-client: flags
// may come before, between or after a verb's arguments, a misspelt flag is
// named with the closest known one, and VERB --help prints that verb's own
// help (usage line, what it does, its flags, its exit codes) on stdout.
//
// It owns nothing but argument parsing and help text; it never opens a
// configuration, a catalog or a connection, so --help works anywhere.
package cli
