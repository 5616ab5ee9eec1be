// Package cpuprofile writes a Go CPU profile of a walgate-client
// process when WALGATE_CPUPROFILE names a path: for performance work, off
// unless asked for. It owns nothing else.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Start writes a CPU profile of this process to path.PID until the
// returned function is called; with path empty, or when the file cannot
// be made, it does nothing.
func Start(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
