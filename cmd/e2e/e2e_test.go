package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/certs"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// binary is a walgate program built once per test run into a directory
// the server user can enter (restore_command and the drill's server run
// the client as postgres).
type binary struct {
	pkg  string
	once sync.Once
	path string
	err  error
}

var (
	clientBinary  = &binary{pkg: "github.com/walgate/walgate/cmd/walgate-client"}
	gatewayBinary = &binary{pkg: "github.com/walgate/walgate/cmd/walgate"}
)

func (b *binary) build(t *testing.T) string {
	t.Helper()
	if err := b.make(); err != nil {
		t.Fatal(err)
	}
	return b.path
}

// make builds the program unless it is built already; safe to call from
// any goroutine, so that a test can build while it starts its servers.
func (b *binary) make() error {
	b.once.Do(func() {
		dir, err := pgtest.MakeSharedDir()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.Command("go", "build", "-o", b.path, b.pkg)
		if strings.HasSuffix(b.pkg, "/walgate-client") {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build does
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	})
	return b.err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*binary{clientBinary, gatewayBinary} {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
	os.Exit(code)
}

// walgateClient builds the client binary once per test run.
func walgateClient(t *testing.T) string { return clientBinary.build(t) }

// walgateBin builds the gateway binary once per test run.
func walgateBin(t *testing.T) string { return gatewayBinary.build(t) }

func requirePostgres(t *testing.T) {
	t.Helper()
	if err := pgtest.Available(); err != nil {
		t.Fatalf("PostgreSQL 15 is required (make deps installs it): %v", err)
	}
}

// scenario is one archive-then-restore run.
type scenario struct {
	env     []string // WALGATE_* for both archive and restore
	phases  []string // compression per load phase
	cluster string
}

// runScenario archives a pgbench workload through walgate-client, phase
// by phase, then restores the base backup taken at the start with
// restore_command through walgate-client and compares every table's
// checksum with the source's, byte for byte.
func runScenario(t *testing.T, g *gatewaytest.Gateway, sc scenario) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	token := g.Token(sc.cluster, "push", "fetch")
	env := append([]string{"WALGATE_URL=" + g.URL, "WALGATE_TOKEN=" + token, "WALGATE_RETRIES=3"}, sc.env...)

	src := pgtest.New(t, pgtest.Options{Env: env, Conf: []string{"archive_mode = on", "archive_command = '/bin/false'"}})
	bin, err := src.InstallExecutable(walgateClient(t))
	if err != nil {
		t.Fatal(err)
	}
	setArchive := func(comp string) {
		t.Helper()
		cmd := fmt.Sprintf("WALGATE_COMPRESSION=%s %s wal-push %%p", comp, bin)
		if err := src.AppendConf("archive_command = " + pgtest.QuoteConf(cmd)); err != nil {
			t.Fatal(err)
		}
		if err := src.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setArchive(sc.phases[0])
	if _, err := src.Pgbench(ctx, "-i", "-s", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := src.Exec(ctx, `CREATE TABLE probe (id int PRIMARY KEY, label text, amount numeric(12,2), blob bytea)`); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(pgtest.SharedDir(t), "base")
	if err := src.BaseBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	for i, comp := range sc.phases {
		setArchive(comp)
		if err := src.Exec(ctx, `INSERT INTO probe SELECT g, 'phase '||$1||' '||g, g*1.25, sha256(int4send(g)) FROM generate_series($2::int, $2::int+999) g`, comp, i*1000); err != nil {
			t.Fatal(err)
		}
		// Load runs while the archiver pushes the segments it fills.
		if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "4", "-n"); err != nil {
			t.Fatal(err)
		}
		seg, err := src.SwitchWAL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := src.WaitArchived(ctx, seg)
		if err != nil {
			t.Fatalf("phase %s: %v\n%s", comp, err, src.LogTail(30))
		}
		t.Logf("phase %d (%s): archived up to %s (%d archived, %d failed)", i, comp, seg, st.ArchivedCount, st.FailedCount)
	}
	want, err := src.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := src.SwitchWAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.WaitArchived(ctx, seg)
	if err != nil {
		t.Fatal(err)
	}
	if st.FailedCount != 0 {
		t.Fatalf("pg_stat_archiver.failed_count = %d (last failed %s); server log:\n%s", st.FailedCount, st.LastFailedWAL, src.LogTail(40))
	}
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	checkStore(t, g, sc)

	dst := pgtest.NewFromBackup(t, backup, pgtest.Recovery{
		RestoreCommand: bin + " wal-fetch %f %p",
	}, pgtest.Options{Env: env})
	wantRestored(t, ctx, dst, want)
	if len(want) < 5 {
		t.Fatalf("only %d tables compared", len(want))
	}
	t.Logf("restored %d tables, checksums equal: %v", len(want), want)
}

// wantRestored waits until dst's archive recovery ends, which must be by
// promotion, and compares its tables with want, the source's checksums.
func wantRestored(t *testing.T, ctx context.Context, dst *pgtest.Cluster, want map[string]pgtest.Checksum) {
	t.Helper()
	outcome, err := dst.WaitRecoveryEnd(ctx)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if outcome != pgtest.RecoveryPromoted {
		t.Fatalf("recovery ended %s, want promoted", outcome)
	}
	got, err := dst.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := pgtest.DiffChecksums(want, got); d != "" {
		t.Fatalf("restored tables differ from the source:\n%s", d)
	}
}

// checkStore: every phase's compression left objects with its extension,
// and nothing half-written is visible.
func checkStore(t *testing.T, g *gatewaytest.Gateway, sc scenario) {
	t.Helper()
	dir := filepath.Join(g.Data, "store", sc.cluster, "wal_005")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	exts := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			t.Errorf("temp file visible in the store: %s", name)
		}
		ext := ""
		for _, e := range []string{".zst", ".lz4", ".br"} {
			if strings.HasSuffix(name, e) {
				ext = e
			}
		}
		if _, err := protocol.ValidateWALName(strings.TrimSuffix(name, ext)); err != nil {
			t.Errorf("unexpected object in the store: %s", name)
		}
		exts[ext]++
	}
	want := map[string]string{"zstd": ".zst", "lz4": ".lz4", "brotli": ".br", "none": ""}
	for _, comp := range sc.phases {
		if exts[want[comp]] == 0 {
			t.Errorf("no object with compression %s (%q) in %s: %v", comp, want[comp], dir, exts)
		}
	}
}

// Encryption on, and every compression method, one after another in one
// archive: the restore reads each object with the method it was stored with.
func TestArchiveRestoreEncryptedEveryCompression(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	runScenario(t, g, scenario{
		cluster: "enc",
		env:     []string{"WALGATE_ENCRYPTION_KEY=ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d", "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex"},
		phases:  []string{"zstd", "lz4", "brotli", "none"},
	})
}

// Without encryption, over TLS with mutual authentication, each
// compression method.
func TestArchiveRestoreTLS(t *testing.T) {
	requirePostgres(t)
	pki, err := certs.InitTrialPKI(filepath.Join(pgtest.SharedDir(t), "pki"), []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The server user (postgres) runs the client: it must read the client key.
	for _, f := range []string{pki.ClientKey, pki.ClientCert, pki.CACert} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{
		TLS: gateway.TLSConfig{Cert: pki.ServerCert, Key: pki.ServerKey, ClientCA: pki.CACert},
	}})
	if !strings.HasPrefix(g.URL, "https://") {
		t.Fatalf("gateway not on TLS: %s", g.URL)
	}
	runScenario(t, g, scenario{
		cluster: "tls",
		env:     []string{"WALGATE_CA_FILE=" + pki.CACert, "WALGATE_CLIENT_CERT=" + pki.ClientCert, "WALGATE_CLIENT_KEY=" + pki.ClientKey},
		phases:  []string{"zstd", "lz4", "brotli", "none"},
	})
}
