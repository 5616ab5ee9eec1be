// Command walgate-demo runs walgate's whole routine on embedded defaults:
// a gateway on the fs backend and a real PostgreSQL 15 cluster archiving
// its WAL through walgate-client, a full backup, a delta, a restore drill,
// a restore check of one segment, the fleet status, and the dashboard's
// URL with an admin token to log in with. It is what 'make demo' runs; it
// needs root (the cluster runs as postgres) and the binaries from 'make
// build'. Run from a terminal, it keeps the gateway serving the dashboard
// until Ctrl-C.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding walgate and walgate-client (make build)")
	seconds := flag.Int("seconds", 15, "how long pgbench writes")
	keep := flag.Bool("keep", true, "keep the demo directory afterwards for inspection")
	serve := flag.Bool("serve", isTerminal(os.Stdin), "keep the gateway serving the dashboard at the end, until Ctrl-C (default: when run from a terminal)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *seconds, *keep, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "walgate-demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func run(ctx context.Context, binDir string, seconds int, keep, serve bool) error {
	if err := pgtest.Available(); err != nil {
		return err
	}
	walgate, err := filepath.Abs(filepath.Join(binDir, "walgate"))
	if err != nil {
		return err
	}
	clientSrc := filepath.Join(binDir, "walgate-client")
	for _, p := range []string{walgate, clientSrc} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing: run 'make build' first", p)
		}
	}
	dir, err := pgtest.MakeSharedDir()
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	data := filepath.Join(dir, "gateway")
	port, err := pgtest.FreePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	step("starting the gateway: walgate serve --data %s --listen 127.0.0.1:%d", data, port)
	logFile, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	gw := exec.Command(walgate, "serve", "--data", data, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	gw.Stdout, gw.Stderr = logFile, logFile
	if err := gw.Start(); err != nil {
		return err
	}
	defer func() {
		gw.Process.Signal(syscall.SIGTERM)
		gw.Wait()
	}()
	if err := waitHealthy(ctx, url); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}

	step("creating a token: walgate token add --data %s --cluster demo --scope push,fetch", data)
	out, err := exec.Command(walgate, "token", "add", "--data", data, "--cluster", "demo", "--scope", "push,fetch", "--comment", "demo host").Output()
	if err != nil {
		return fmt.Errorf("token add: %w", err)
	}
	token := strings.TrimSpace(string(out))
	fmt.Printf("token: %s...\n", token[:20])

	env := []string{"WALGATE_URL=" + url, "WALGATE_TOKEN=" + token}
	step("creating a PostgreSQL 15 cluster archiving through walgate-client")
	pg, err := pgtest.Create(ctx, filepath.Join(dir, "pg"), pgtest.Options{Env: env, NoStart: true})
	if err != nil {
		return err
	}
	defer pg.Stop(context.Background())
	client, err := pg.InstallExecutable(clientSrc)
	if err != nil {
		return err
	}
	archiveCmd := client + " wal-push %p"
	if err := pg.AppendConf("archive_mode = on", "archive_command = "+pgtest.QuoteConf(archiveCmd)); err != nil {
		return err
	}
	if err := pg.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("data directory %s, port %d\narchive_command = '%s'\n", pg.DataDir, pg.Port, archiveCmd)

	step("writing data: pgbench -i -s 5, then pgbench -c 4 -T %d", seconds)
	if _, err := pg.Pgbench(ctx, "-i", "-s", "5", "-q"); err != nil {
		return err
	}
	if _, err := pg.Pgbench(ctx, "-c", "4", "-j", "2", "-T", fmt.Sprint(seconds), "-n"); err != nil {
		return err
	}
	step("switching WAL and waiting until the archiver is done")
	seg, err := pg.SwitchWAL(ctx)
	if err != nil {
		return err
	}
	st, err := pg.WaitArchived(ctx, seg)
	if err != nil {
		return err
	}
	fmt.Printf("pg_stat_archiver: %s\n", st)

	// The database host's routine (configs/systemd): a full backup, a
	// delta, a restore drill; here at once instead of weekly, daily and
	// quarterly.
	pgEnv := append(append(os.Environ(), env...), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", pg.Port), "PGUSER=postgres", "PGDATABASE=postgres",
		"WALGATE_DELTA_MAX_STEPS=6", "WALGATE_DRILL_DIR="+dir)
	clientRun := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, clientSrc, args...)
		cmd.Env = pgEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("walgate-client %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	step("full base backup: walgate-client backup-push --full %s", pg.DataDir)
	o, err := clientRun("backup-push", "--full", pg.DataDir)
	if err != nil {
		return err
	}
	fmt.Print(lastLines(o, 2))
	step("more writes (pgbench -T 5), then a delta: walgate-client backup-push %s (WALGATE_DELTA_MAX_STEPS=6)", pg.DataDir)
	if _, err := pg.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "5", "-n"); err != nil {
		return err
	}
	o, err = clientRun("backup-push", pg.DataDir)
	if err != nil {
		return err
	}
	fmt.Print(lastLines(o, 2))
	if seg, err = pg.SwitchWAL(ctx); err != nil {
		return err
	}
	if _, err := pg.WaitArchived(ctx, seg); err != nil {
		return err
	}
	step("the backups: walgate-client backup-list")
	o, err = clientRun("backup-list")
	if err != nil {
		return err
	}
	fmt.Print(o)
	checkSQL := filepath.Join(dir, "drill-check.sql")
	if err := os.WriteFile(checkSQL, []byte("SELECT 1 / (count(*) > 0)::int AS accounts FROM pgbench_accounts;\n"), 0o644); err != nil {
		return err
	}
	step("restore drill: walgate-client drill LATEST --check-sql %s", checkSQL)
	o, err = clientRun("drill", "LATEST", "--check-sql", checkSQL, "--timeout", "5m")
	if err != nil {
		return err
	}
	fmt.Print(lastLines(o, 4))

	step("what the gateway holds (%s)", filepath.Join(data, "store", "demo", "wal_005"))
	if err := listStore(filepath.Join(data, "store", "demo", "wal_005")); err != nil {
		return err
	}

	step("restore check: walgate-client wal-fetch %s", seg)
	dest := filepath.Join(dir, "restored-"+seg)
	fetch := exec.CommandContext(ctx, clientSrc, "wal-fetch", seg, dest)
	fetch.Env = append(os.Environ(), env...)
	if out, err := fetch.CombinedOutput(); err != nil {
		return fmt.Errorf("wal-fetch: %v: %s", err, out)
	}
	sum, size, err := fileSHA256(dest)
	if err != nil {
		return err
	}
	fmt.Printf("%s restored: %d bytes, SHA-256 %s\n", seg, size, sum[:16])
	if orig, _, err := fileSHA256(filepath.Join(pg.DataDir, "pg_wal", seg)); err == nil {
		if orig != sum {
			return fmt.Errorf("restored %s differs from pg_wal/%s", seg, seg)
		}
		fmt.Printf("identical to pg_wal/%s, byte for byte\n", seg)
	}

	if err := pg.Stop(ctx); err != nil {
		return err
	}
	step("the fleet as the storage team sees it: walgate status --data %s", data)
	// Its exit status says whether every cluster is ok; the table says why not.
	status, _ := exec.CommandContext(ctx, walgate, "status", "--data", data).CombinedOutput()
	fmt.Print(string(status))
	step("the dashboard: a fleet-wide admin token to log in with, valid for one day (shown once; the gateway keeps only its hash)")
	adminTok, err := exec.Command(walgate, "token", "add", "--data", data, "--all-clusters", "--scope", "admin", "--expires", "1d", "--comment", "demo dashboard").Output()
	if err != nil {
		return fmt.Errorf("token add --scope admin: %w", err)
	}
	fmt.Printf("  open   %s/ui/\n  token  %s\n", url, strings.TrimSpace(string(adminTok)))
	if !serve {
		fmt.Println("  (the gateway stops when the demo ends: run it from a terminal, or with -serve, to keep the dashboard up)")
	}
	step("done. To look around:")
	fmt.Printf(`  cat %s                                  # the gateway's log, one line per request
  ls -l %s
  %s token list --data %s
  %s serve --data %s --listen 127.0.0.1:%d        # serve this archive again
  WALGATE_URL=%s WALGATE_TOKEN=<token> bin/walgate-client wal-fetch %s /tmp/%s
`, logFile.Name(), filepath.Join(data, "store", "demo", "wal_005"), walgate, data, walgate, data, port, url, seg, seg)
	if keep {
		fmt.Printf("  rm -rf %s                                   # when done\n", dir)
	}
	if serve {
		fmt.Printf("\nThe gateway keeps serving the dashboard at %s/ui/ until Ctrl-C.\n", url)
		<-ctx.Done()
	}
	return nil
}

// lastLines is the last n lines of s, each ending in a newline.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n"
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the gateway did not answer on %s within 15s", url)
}

func listStore(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var total int64
	var segs int
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if len(strings.TrimSuffix(e.Name(), ".zst")) == 24 {
			segs++
		}
		fmt.Printf("  %-48s %10d bytes\n", e.Name(), info.Size())
	}
	if segs > 0 {
		fmt.Printf("%d objects, %d WAL segments, %.1f MiB stored for %d MiB of WAL (%.1fx smaller)\n",
			len(entries), segs, float64(total)/(1<<20), segs*16, float64(segs*16<<20)/float64(total))
	}
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
