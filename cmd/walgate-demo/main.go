// Command walgate-demo runs walgate's main job on embedded defaults: a
// gateway on the fs backend and a real PostgreSQL 15 cluster archiving its
// WAL through walgate-client, then a restore check of one segment. It is
// what 'make demo' runs; it needs root (the cluster runs as postgres) and
// the binaries from 'make build'.
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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *seconds, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "walgate-demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run(ctx context.Context, binDir string, seconds int, keep bool) error {
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
	return nil
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
