package main

import (
	"context"
	"fmt"
	"github.com/walgate/walgate/cmd/internal/cli"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/protocol"
)

// drillFailedError is a drill that ran and failed; its report was sent.
type drillFailedError struct{ msg string }

func (e *drillFailedError) Error() string { return e.msg }

// serverEnvNames are the variables the drill's server (and so its
// restore_command) must see as this process sees them through getenv.
func serverEnvNames() []string {
	names := []string{"WALGATE_TOKEN_FILE", "WALGATE_ENCRYPTION_KEY_FILE", "WALG_LIBSODIUM_KEY_PATH", "WALGATE_CLIENT_KEY"}
	for _, v := range client.EnvVars {
		names = append(names, v.Name)
		if v.Also != "" {
			names = append(names, v.Also)
		}
	}
	return names
}

// drillEnv is the process environment with the client settings as getenv
// reports them (identical in the binary; tests pass a map).
func drillEnv(getenv func(string) string) []string {
	override := map[string]bool{}
	for _, n := range serverEnvNames() {
		override[n] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !override[k] {
			env = append(env, kv)
		}
	}
	for _, n := range serverEnvNames() {
		if v := getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	return env
}

func runDrill(ctx context.Context, c *client.Client, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("walgate-client drill")
	targetTime := fs.String("target-time", "", "recover up to `TIME` (RFC 3339 or PostgreSQL timestamp with zone) instead of the newest WAL")
	checkSQL := fs.String("check-sql", "", "run the SQL in `FILE` against the recovered copy; the drill fails if it errors")
	keep := fs.Bool("keep", false, "keep the scratch directory (stopped) for a look")
	timeout := fs.Duration("timeout", client.DefaultDrillTimeout, "give up after this long, e.g. 30m")
	pgBin := fs.String("pg-bin", "", "PostgreSQL server programs `DIR` (default: found from pg_config or PATH)")
	pos, err := cli.Parse(fs, drillHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError("drill takes at most one argument, the backup name (default LATEST)")
	}
	name := protocol.Latest
	if len(pos) == 1 {
		name = pos[0]
	}
	if err := checkBackupName(name); err != nil {
		return err
	}
	if *targetTime != "" {
		if _, *targetTime, err = client.ParseTargetTime(*targetTime); err != nil {
			return usageError("--target-time: %v", err)
		}
	}
	if *timeout <= 0 {
		return usageError("--timeout must be positive, e.g. 30m")
	}
	opts := client.DrillOptions{
		Backup: name, TargetTime: *targetTime, Keep: *keep, Timeout: *timeout,
		Env: drillEnv(getenv), ScratchBase: getenv("WALGATE_DRILL_DIR"), PgUser: getenv("PGUSER"),
	}
	if *pgBin != "" {
		if opts.PgBin, err = filepath.Abs(*pgBin); err != nil {
			return usageError("--pg-bin: %v", err)
		}
	}
	if *checkSQL != "" {
		b, err := os.ReadFile(*checkSQL)
		if err != nil {
			return usageError("--check-sql: %v", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return usageError("--check-sql: %s is empty", *checkSQL)
		}
		opts.CheckSQL, opts.CheckSQLName = string(b), filepath.Base(*checkSQL)
	}
	if opts.Concurrency, err = downloadConcurrency(getenv); err != nil {
		return err
	}
	if opts.Executable, err = os.Executable(); err != nil {
		return fmt.Errorf("cannot find this program's path for restore_command: %w", err)
	}
	if isTerminal(stderr) {
		opts.Progress = stderr
	}

	res, err := c.Drill(ctx, opts)
	printDrillSummary(stdout, res)
	rep := res.Report
	if err != nil {
		verdict := "passed"
		if !rep.Passed {
			verdict = "failed"
		}
		return fmt.Errorf("the drill %s, but its report could not be sent to the gateway: %w", verdict, err)
	}
	if !rep.Passed {
		return &drillFailedError{fmt.Sprintf("drill of %s failed: %s (report sent to the gateway)", rep.Backup, rep.Reason())}
	}
	return nil
}

// printDrillSummary prints what the drill found, for a human.
func printDrillSummary(w io.Writer, res client.DrillResult) {
	rep := res.Report
	verdict := "PASSED"
	if !rep.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "drill %s: backup %s of cluster %s on %s\n", verdict, rep.Backup, rep.Cluster, rep.Host)
	fmt.Fprintf(w, "  fetch %.1fs, recovery %.1fs, total %s\n", rep.FetchSeconds, rep.RecoverySeconds, rep.Finished.Sub(rep.Started).Round(100*time.Millisecond))
	if rep.TargetTime != "" {
		fmt.Fprintf(w, "  recovery target time %s\n", rep.TargetTime)
	}
	if rep.RecoveryEndLSN != "" {
		fmt.Fprintf(w, "  recovered to LSN %s, last transaction %s\n", rep.RecoveryEndLSN, orNone(rep.RecoveryEndTime))
	}
	for _, ch := range rep.Checks {
		mark := "ok  "
		if !ch.Passed {
			mark = "FAIL"
		}
		first, _, _ := strings.Cut(ch.Output, "\n")
		if !ch.Passed {
			first = lastLine(ch.Output)
		}
		if first != "" {
			first = ": " + first
		}
		fmt.Fprintf(w, "  %s %s%s\n", mark, ch.Name, first)
	}
	if rep.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", strings.ReplaceAll(rep.Error, "\n", "\n    "))
	}
	if res.Scratch != "" {
		fmt.Fprintf(w, "  scratch directory kept: %s\n", res.Scratch)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none replayed)"
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
