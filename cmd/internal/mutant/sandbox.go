package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// A mutant's tests run as root can do anything the mutant makes them do:
// a negated condition in a clean-up that climbs to the top directory it
// created ends in os.RemoveAll("/"). So as root every mutant's tests run in
// a mount namespace of their own where the root filesystem is read-only,
// except /tmp (where tests keep their files and clusters), /dev/shm and
// the Go build cache. Mutated code can then damage at most those.

// sandboxScript sets the namespace up and runs its arguments; the paths
// to keep writable come in $MUTANT_WRITABLE, separated by ':'.
const sandboxScript = `set -e
mount --make-rprivate /
IFS=:
for p in $MUTANT_WRITABLE; do
	[ -d "$p" ] && mount --bind "$p" "$p"
done
unset IFS
mount -o remount,bind,ro /
unset MUTANT_WRITABLE
exec "$@"`

// sandboxed is exec.CommandContext, in a read-only root when run as
// root. writable lists what stays writable besides /tmp and /dev/shm.
func sandboxed(ctx context.Context, writable []string, name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.CommandContext(ctx, name, args...)
	}
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--", "sh", "-c", sandboxScript, "sh", name}, args...)...)
	keep := append([]string{"/tmp", "/dev/shm"}, writable...)
	cmd.Env = append(os.Environ(), "MUTANT_WRITABLE="+strings.Join(keep, ":"))
	return cmd
}

// checkSandbox makes sure mutants can be run: as root, a sandboxed
// command must not be able to write outside what stays writable.
func checkSandbox(writable []string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	probe, err := os.CreateTemp(".", ".mutant-sandbox-")
	if err != nil {
		return fmt.Errorf("sandbox check: %v", err)
	}
	probe.Close()
	defer os.Remove(probe.Name())
	out, err := sandboxed(context.Background(), writable, "sh", "-c", `touch "$1" 2>/dev/null && echo writable; t=$(mktemp) && rm "$t" && echo tmp`, "sh", probe.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("as root, mutants run in a read-only mount namespace (unshare --mount), which failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "writable") || !strings.Contains(string(out), "tmp") {
		return fmt.Errorf("the read-only mount namespace for mutants does not hold (%q); refusing to run mutants as root without it", out)
	}
	return nil
}
