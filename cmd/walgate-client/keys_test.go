package main

import (
	"path/filepath"
	"testing"

	"github.com/walgate/walgate/gateway/gatewaytest"
)

// TestMisspeltVariables: a misspelt key variable stops wal-push with exit
// 2 (wal-fetch 200) before anything is sent, naming the variable meant;
// WAL-G's own variables are ignored.
func TestMisspeltVariables(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	base := clientEnv(g.URL, g.Token(cluster, "push", "fetch"))
	src, dst := t.TempDir(), t.TempDir()
	p := writeFile(t, src, seg1, randBytes(t, 256<<10))
	dest := filepath.Join(dst, "RECOVERYXLOG")

	typo := clientEnv(g.URL, base["WALGATE_TOKEN"], "WALGATE_ENCRYPTON_KEY", keyHex)
	expectExit(t, "wal-push with WALGATE_ENCRYPTON_KEY", walClient(t, typo, "wal-push", p), 2,
		"WALGATE_ENCRYPTON_KEY", "did you mean WALGATE_ENCRYPTION_KEY?")
	if files := gatewaytest.ListFiles(t, filepath.Join(g.Data, "store")); len(files) != 0 {
		t.Fatalf("the refused push stored %q", files)
	}
	expectExit(t, "wal-fetch with WALGATE_ENCRYPTON_KEY", walClient(t, typo, "wal-fetch", seg1, dest), 200, "did you mean WALGATE_ENCRYPTION_KEY?")
	walgTypo := clientEnv(g.URL, base["WALGATE_TOKEN"], "WALG_LIBSODIUM_KEYY", keyHex)
	expectExit(t, "wal-push with WALG_LIBSODIUM_KEYY", walClient(t, walgTypo, "wal-push", p), 2, "did you mean WALG_LIBSODIUM_KEY?")

	walg := withKey(clientEnv(g.URL, base["WALGATE_TOKEN"], "WALG_S3_PREFIX", "s3://bucket/db", "WALG_UPLOAD_DISK_CONCURRENCY", "4"), keyHex)
	expectExit(t, "wal-push with WAL-G's variables", walClient(t, walg, "wal-push", p), 0)
	expectExit(t, "wal-fetch with WAL-G's variables", walClient(t, walg, "wal-fetch", seg1, dest), 0)
}

// TestForgedPlaintext: a plaintext segment stored with a push token (here
// by a client without a key) is refused by a keyed wal-fetch with 200,
// and nothing appears at %p; WALGATE_ALLOW_PLAINTEXT_READ=true restores it.
func TestForgedPlaintext(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	forger := clientEnv(g.URL, g.Token(cluster, "push"))
	src, dst := t.TempDir(), t.TempDir()
	expectExit(t, "plaintext push", walClient(t, forger, "wal-push", writeFile(t, src, seg1, randBytes(t, 256<<10))), 0)
	host := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch")), keyHex)
	dest := filepath.Join(dst, "RECOVERYXLOG")
	expectExit(t, "keyed wal-fetch of plaintext", walClient(t, host, "wal-fetch", seg1, dest), 200, "unencrypted", "WALGATE_ALLOW_PLAINTEXT_READ")
	dirHolds(t, dst)
	host["WALGATE_ALLOW_PLAINTEXT_READ"] = "true"
	expectExit(t, "with WALGATE_ALLOW_PLAINTEXT_READ", walClient(t, host, "wal-fetch", seg1, dest), 0)
}
