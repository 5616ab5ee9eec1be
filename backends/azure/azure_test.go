package azure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"gopkg.in/yaml.v3"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/backendtest/emulators"
)

// server is the Azurite every test uses; testContainer exists on it.
var server *emulators.AzuriteServer

const testContainer = "walgate-test"

func TestMain(m *testing.M) {
	start := time.Now()
	s, err := emulators.StartAzurite()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting Azurite:", err)
		os.Exit(1)
	}
	server = s
	fmt.Fprintf(os.Stderr, "Azurite ready on %s in %s\n", s.Endpoint, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = s.NewContainer(ctx, testContainer)
	cancel()
	if err != nil {
		s.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

var ctx = context.Background()

// config returns a Config of the test container with the account key.
func config() azure.Config {
	return azure.Config{
		Account:    server.Account,
		AccountKey: server.AccountKey,
		Container:  testContainer,
		Endpoint:   server.Endpoint,
	}
}

func newBackend(t *testing.T, cfg azure.Config) *azure.Backend {
	t.Helper()
	b, err := azure.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := azure.New(ctx, config())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestConformanceSmallBlocks runs the suite with blocks so small that most
// objects are staged in several blocks.
func TestConformanceSmallBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := config()
	cfg.BlockSize = 64 << 10
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		b, err := azure.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func put(t *testing.T, b backends.Backend, key, data string, opts backends.PutOptions) backends.ObjectInfo {
	t.Helper()
	info, err := b.Put(ctx, key, strings.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, b backends.Backend, key string) string {
	t.Helper()
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): reading: %v", key, err)
	}
	return string(data)
}

func stat(t *testing.T, b backends.Backend, key string) backends.ObjectInfo {
	t.Helper()
	info, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func listInfos(t *testing.T, b backends.Backend, prefix string) []backends.ObjectInfo {
	t.Helper()
	var infos []backends.ObjectInfo
	if err := b.List(ctx, prefix, func(info backends.ObjectInfo) error {
		infos = append(infos, info)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func uniqueKey(t *testing.T, s string) string {
	return fmt.Sprintf("%s-%d/%s", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano(), s)
}

func TestClasses(t *testing.T) {
	b := newBackend(t, config())
	key := uniqueKey(t, "classy")
	md := map[string]string{"sha256": "abc", "codec-v": "zstd 1"}

	info := put(t, b, key, "data", backends.PutOptions{Class: azure.ClassCool, Metadata: md})
	if info.Class != azure.ClassCool {
		t.Errorf("Put returned class %q, want Cool", info.Class)
	}
	if st := stat(t, b, key); st.Class != azure.ClassCool {
		t.Errorf("Stat class after Put with Cool = %q", st.Class)
	}
	if infos := listInfos(t, b, key); len(infos) != 1 || infos[0].Class != azure.ClassCool {
		t.Errorf("List = %+v, want one object of class Cool", infos)
	}

	for _, class := range []string{azure.ClassCold, azure.ClassHot, azure.ClassArchive} {
		if err := b.SetClass(ctx, key, class); err != nil {
			t.Fatalf("SetClass(%s): %v", class, err)
		}
		st := stat(t, b, key)
		if st.Class != class {
			t.Errorf("Stat class after SetClass(%s) = %q", class, st.Class)
		}
		if !maps(st.Metadata, md) {
			t.Errorf("metadata after SetClass(%s) = %v, want %v", class, st.Metadata, md)
		}
	}

	// Archived: no data until rehydrated.
	_, err := b.Get(ctx, key, 0, -1)
	if !errors.Is(err, azure.ErrArchived) || !errors.Is(err, backends.ErrUnsupported) {
		t.Fatalf("Get of an archived blob: %v, want ErrArchived (wrapping ErrUnsupported)", err)
	}
	if !strings.Contains(err.Error(), "Archive tier") || !strings.Contains(err.Error(), "rehydrated") {
		t.Errorf("Get of an archived blob: %q does not say it is archived and needs rehydration", err)
	}
	t.Logf("Get of an archived blob: %v", err)
	// Azurite rehydrates at once; Azure takes hours (and Stat says
	// Archive meanwhile).
	if err := b.SetClass(ctx, key, ""); err != nil {
		t.Fatalf("SetClass(default): %v", err)
	}
	if got := get(t, b, key); got != "data" {
		t.Errorf("Get after rehydration = %q", got)
	}
	if st := stat(t, b, key); st.Class != azure.ClassHot || !maps(st.Metadata, md) {
		t.Errorf("after SetClass(\"\"): class %q metadata %v, want Hot and %v", st.Class, st.Metadata, md)
	}

	// Archive at write.
	cold := uniqueKey(t, "archived-at-write")
	put(t, b, cold, "frozen", backends.PutOptions{Class: azure.ClassArchive})
	if st := stat(t, b, cold); st.Class != azure.ClassArchive {
		t.Errorf("Stat class after Put with Archive = %q", st.Class)
	}
	if _, err := b.Get(ctx, cold, 0, -1); !errors.Is(err, azure.ErrArchived) {
		t.Errorf("Get of a blob archived at write: %v, want ErrArchived", err)
	}
	// Staged blocks take the class at the commit too.
	big := uniqueKey(t, "staged-cool")
	cfg := config()
	cfg.BlockSize = 64 << 10
	small := newBackend(t, cfg)
	data := strings.Repeat("z", 200<<10)
	put(t, small, big, data, backends.PutOptions{Class: azure.ClassCool})
	if st := stat(t, b, big); st.Class != azure.ClassCool || st.Size != int64(len(data)) {
		t.Errorf("staged Put with Cool: Stat = %+v", st)
	}

	// Unknown classes, and the class names are Azure's, case included.
	for _, class := range []string{"STANDARD", "hot", "Premium", "GLACIER"} {
		k := uniqueKey(t, "bad-class")
		_, err := b.Put(ctx, k, strings.NewReader("x"), 1, backends.PutOptions{Class: class})
		if !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("Put with class %q: %v, want ErrUnsupported", class, err)
		}
		if _, err := b.Stat(ctx, k); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("after Put with class %q: Stat %v, want ErrNotFound", class, err)
		}
		if err := b.SetClass(ctx, key, class); !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("SetClass(%q): %v, want ErrUnsupported", class, err)
		}
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestMetadataMapping(t *testing.T) {
	b := newBackend(t, config())
	key := uniqueKey(t, "md")
	md := map[string]string{
		"1starts-with-digit": "v",
		"a-b-c":              "dashes",
		"abc":                "plain",
		"edge-spaces":        "  padded  ",
		"percent":            "100% sure %41",
		"punct":              `!"#$&'()*+,-./:;<=>?@[\]^_{|}~`,
		strings.Repeat("k", backends.MaxMetadataKeyLen): strings.Repeat("v", backends.MaxMetadataValueLen),
	}
	put(t, b, key, "x", backends.PutOptions{Metadata: md})
	if st := stat(t, b, key); !maps(st.Metadata, md) {
		t.Errorf("Stat metadata = %q\nwant %q", st.Metadata, md)
	}
	if infos := listInfos(t, b, key); len(infos) != 1 || !maps(infos[0].Metadata, md) {
		t.Errorf("List = %+v\nwant metadata %q", infos, md)
	}
	if err := b.SetClass(ctx, key, azure.ClassCool); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, b, key); !maps(st.Metadata, md) {
		t.Errorf("Stat metadata after SetClass = %q\nwant %q", st.Metadata, md)
	}

	// Metadata someone else put on a blob is not walgate's and not shown.
	blobName := key
	cc, err := server.ContainerClient(testContainer)
	if err != nil {
		t.Fatal(err)
	}
	other := "other"
	if _, err := cc.NewBlobClient(blobName).SetMetadata(ctx, map[string]*string{"Foreign": &other, "wg_abc": &other}, nil); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, b, key); !maps(st.Metadata, map[string]string{"abc": "other"}) {
		t.Errorf("Stat metadata after a foreign SetMetadata = %q, want only abc=other", st.Metadata)
	}
}

func TestPrefix(t *testing.T) {
	cfg := config()
	cfg.Prefix = uniqueKey(t, "tenant")
	b := newBackend(t, cfg)
	if got, want := b.Name(), "azure:"+testContainer+"/"+cfg.Prefix; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	put(t, b, "a/one", "1", backends.PutOptions{})
	put(t, b, "b", "2", backends.PutOptions{})
	var keys []string
	for _, info := range listInfos(t, b, "") {
		keys = append(keys, info.Key)
	}
	if strings.Join(keys, ",") != "a/one,b" {
		t.Errorf("List = %q, want [a/one b]", keys)
	}
	if infos := listInfos(t, b, "a/"); len(infos) != 1 || infos[0].Key != "a/one" {
		t.Errorf("List(a/) = %+v", infos)
	}
	// The blob is under the prefix, seen without it.
	root := newBackend(t, config())
	if got := get(t, root, cfg.Prefix+"/a/one"); got != "1" {
		t.Errorf("blob %s/a/one = %q", cfg.Prefix, got)
	}
	// A key too long for the prefix is refused before any request.
	long := strings.Repeat("k", backends.MaxKeyLen)
	if _, err := b.Put(ctx, long, strings.NewReader("x"), 1, backends.PutOptions{}); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("Put of a %d-byte key under a prefix: %v, want ErrUnsupported", len(long), err)
	}
}

func TestNameWithoutPrefix(t *testing.T) {
	if got := newBackend(t, config()).Name(); got != "azure:"+testContainer+"/" {
		t.Errorf("Name() = %q", got)
	}
}

const (
	secretKey = "c2VjcmV0LWtleS1zaG91bGQtbmV2ZXItc2hvdw=="
	secretSAS = "sv=2026-12-06&ss=b&sig=TOPSECRETSIGNATURE%3D"
	secretCS  = "AccountName=acct;AccountKey=" + secretKey + ";BlobEndpoint=http://127.0.0.1:1/acct"
)

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{secretKey, "TOPSECRET", "secret-key"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows a secret: %s", what, s)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := azure.Config{Account: "acct1", Container: "wal", AccountKey: secretKey}
	for _, tc := range []struct {
		name string
		edit func(*azure.Config)
		want string // in the error; "" = valid
	}{
		{"good", func(*azure.Config) {}, ""},
		{"sas", func(c *azure.Config) { c.AccountKey, c.SASToken = "", "?"+secretSAS }, ""},
		{"connection string", func(c *azure.Config) { c.AccountKey, c.Account, c.ConnectionString = "", "", secretCS }, ""},
		{"endpoint", func(c *azure.Config) { c.Endpoint = "http://127.0.0.1:10000/devstoreaccount1/" }, ""},
		{"prefix", func(c *azure.Config) { c.Prefix = "tenant/a" }, ""},
		{"no credential", func(c *azure.Config) { c.AccountKey = "" }, "account_key (shared key), sas_token or connection_string"},
		{"two credentials", func(c *azure.Config) { c.SASToken = secretSAS }, "only one of"},
		{"no account", func(c *azure.Config) { c.Account = "" }, "account is empty"},
		{"bad account", func(c *azure.Config) { c.Account = "My_Account" }, "account \"My_Account\""},
		{"no container", func(c *azure.Config) { c.Container = "" }, "container is empty"},
		{"bad container", func(c *azure.Config) { c.Container = "WAL" }, "container \"WAL\""},
		{"container dashes", func(c *azure.Config) { c.Container = "a--b" }, "container \"a--b\""},
		{"prefix slash", func(c *azure.Config) { c.Prefix = "/tenant/" }, "prefix"},
		{"prefix dots", func(c *azure.Config) { c.Prefix = "a/../b" }, "prefix"},
		{"endpoint scheme", func(c *azure.Config) { c.Endpoint = "ftp://x" }, "endpoint"},
		{"endpoint with query", func(c *azure.Config) { c.Endpoint = "https://x.example/?" + secretSAS }, "endpoint must not carry a query"},
		{"key not base64", func(c *azure.Config) { c.AccountKey = "not base64!" + secretKey }, "account_key is not base64"},
		{"block size", func(c *azure.Config) { c.BlockSize = 1000 }, "block_size"},
		{"timeout", func(c *azure.Config) { c.Timeout = -time.Second }, "timeout"},
		{"connection string and account", func(c *azure.Config) { c.AccountKey, c.ConnectionString = "", secretCS }, "leave account and endpoint empty"},
		{"malformed connection string", func(c *azure.Config) {
			c.AccountKey, c.Account, c.ConnectionString = "", "", "garbage;AccountKey="+secretKey
		}, "connection_string is malformed"},
	} {
		cfg := good
		tc.edit(&cfg)
		b, err := azure.New(ctx, cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: New: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: New succeeded, want an error saying %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: New: %q, want it to say %q", tc.name, err, tc.want)
		}
		if err != nil {
			noSecret(t, tc.name+": error", err.Error())
		}
		if b != nil {
			noSecret(t, tc.name+": Name()", b.Name())
			b.Close()
		}
	}
}

func TestConfigRedaction(t *testing.T) {
	cfg := azure.Config{Account: "acct1", Container: "wal", AccountKey: secretKey, SASToken: secretSAS, ConnectionString: secretCS}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(format, cfg)
		noSecret(t, format, s)
		if !strings.Contains(s, "REDACTED") || !strings.Contains(s, "acct1") {
			t.Errorf("%s = %s, want the account and REDACTED secrets", format, s)
		}
	}
	noSecret(t, "pointer %v", fmt.Sprintf("%v", &cfg))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "azure", cfg)
	noSecret(t, "slog", buf.String())
	if !strings.Contains(buf.String(), `"container":"wal"`) {
		t.Errorf("slog = %s, want the container", buf.String())
	}
	r := cfg.Redacted()
	if r.AccountKey != "REDACTED" || r.SASToken != "REDACTED" || r.ConnectionString != "REDACTED" || r.Account != "acct1" {
		t.Errorf("Redacted() = %v", r)
	}
	if cfg.AccountKey != secretKey {
		t.Errorf("Redacted changed the original")
	}
	if empty := (azure.Config{}).Redacted(); empty.AccountKey != "" {
		t.Errorf("Redacted of an empty key = %q, want empty (nothing to hide)", empty.AccountKey)
	}
}

// TestCredentials writes and reads with each kind of credential.
func TestCredentials(t *testing.T) {
	cc, err := server.ContainerClient(testContainer)
	if err != nil {
		t.Fatal(err)
	}
	sasURL, err := cc.GetSASURL(sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true},
		time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(sasURL)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]azure.Config{
		"account key":       config(),
		"sas":               {Account: server.Account, Container: testContainer, Endpoint: server.Endpoint, SASToken: "?" + u.RawQuery},
		"connection string": {Container: testContainer, ConnectionString: server.ConnectionString()},
	} {
		b := newBackend(t, cfg)
		key := uniqueKey(t, strings.ReplaceAll(name, " ", "-"))
		put(t, b, key, name, backends.PutOptions{Metadata: map[string]string{"k": "v"}})
		if got := get(t, b, key); got != name {
			t.Errorf("%s: Get = %q", name, got)
		}
		if infos := listInfos(t, b, key); len(infos) != 1 {
			t.Errorf("%s: List = %+v", name, infos)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Errorf("%s: Delete: %v", name, err)
		}
	}

	// A wrong key is refused clearly.
	bad := config()
	bad.AccountKey = secretKey
	b := newBackend(t, bad)
	_, err = b.Stat(ctx, "x")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Stat with a wrong key: %v, want a 403 access denied", err)
	} else {
		noSecret(t, "wrong key error", err.Error())
		t.Logf("wrong key: %v", err)
	}
}

// TestErrorsHideSAS: transport errors name the URL, never its SAS.
func TestErrorsHideSAS(t *testing.T) {
	port, err := emulators.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	cfg := azure.Config{Account: "acct1", Container: "wal", SASToken: secretSAS,
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d/acct1", port), Timeout: time.Second}
	b := newBackend(t, cfg)
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = b.Put(c, "k", strings.NewReader("x"), 1, backends.PutOptions{})
	if err == nil {
		t.Fatal("Put to a closed port succeeded")
	}
	noSecret(t, "Put error", err.Error())
	_, err = b.Get(c, "k", 0, -1)
	if err == nil {
		t.Fatal("Get from a closed port succeeded")
	}
	noSecret(t, "Get error", err.Error())
	t.Logf("error: %v", err)
}

// cutProxy forwards TCP connections to the emulator. Once the client has
// sent more than budget bytes in all, it cuts every connection and refuses
// new ones until revived: a server that dies mid-upload.
type cutProxy struct {
	l      net.Listener
	target string
	budget atomic.Int64
	sent   atomic.Int64
	dead   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	// dropAt > 0: the dropAt'th response is lost (the connection closes
	// after the server acted on the request).
	dropAt    atomic.Int64
	responses atomic.Int64
	// cutDown > 0: the connection that has received more than cutDown
	// bytes from the server (since received was reset) is cut, once.
	cutDown  atomic.Int64
	received atomic.Int64
}

func newCutProxy(t *testing.T, target string, budget int64) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	p.budget.Store(budget)
	t.Cleanup(func() { l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.dead.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { // client to server, counted
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 && !p.dead.Load() {
					if p.sent.Add(int64(n)) > p.budget.Load() {
						p.dead.Store(true)
						p.cut()
						return
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					s.Close()
					return
				}
			}
		}()
		go func() { // server to client, dropping the dropAt'th response
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					if bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 ")) && p.responses.Add(1) == p.dropAt.Load() {
						s.Close()
						return
					}
					if cut := p.cutDown.Load(); cut > 0 && p.received.Add(int64(n)) > cut {
						p.cutDown.Store(0)
						s.Close()
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) revive(budget int64) {
	p.budget.Store(budget)
	p.sent.Store(0)
	p.dead.Store(false)
}

func TestServerDiesMidUpload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		blockSize int64
		size      int64
	}{
		{"staged-blocks", 256 << 10, 3 << 20},
		{"staged-unknown-size", 256 << 10, -1},
		{"one-request", 4 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each has its own proxy; most of the time is retry back-off
			proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", server.Port), 1<<62)
			cfg := config()
			cfg.Endpoint = "http://" + proxy.addr() + "/" + server.Account
			cfg.BlockSize = tc.blockSize
			cfg.Timeout = 5 * time.Second
			b := newBackend(t, cfg)
			key := uniqueKey(t, "dies")
			old := uniqueKey(t, "old")
			put(t, b, old, "the old object", backends.PutOptions{})

			data := bytes.Repeat([]byte("walgate!"), 3<<20/8)
			n := int64(len(data))
			if tc.size >= 0 {
				data, n = data[:tc.size], tc.size
			}
			for _, k := range []string{key, old} {
				proxy.revive(int64(len(data)) / 2) // dies halfway through the data
				start := time.Now()
				_, err := b.Put(ctx, k, bytes.NewReader(data), n, backends.PutOptions{})
				if err == nil {
					t.Fatalf("Put(%q) through a server that died succeeded", k)
				}
				t.Logf("Put failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
				if errors.Is(err, backends.ErrNotFound) || errors.Is(err, backends.ErrExists) {
					t.Errorf("Put error %v wraps a shared error it should not", err)
				}
			}
			proxy.revive(1 << 62) // the server is back
			if _, err := b.Stat(ctx, key); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("Stat(%q) after the failed Put: %v, want ErrNotFound", key, err)
			}
			if _, err := b.Get(ctx, key, 0, -1); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("Get(%q) after the failed Put: %v, want ErrNotFound", key, err)
			}
			if infos := listInfos(t, b, key); len(infos) != 0 {
				t.Errorf("List after the failed Put: %+v", infos)
			}
			if got := get(t, b, old); got != "the old object" {
				t.Errorf("the old object after a failed overwrite = %q", got)
			}
			// And the key can be written now.
			put(t, b, key, "after", backends.PutOptions{IfNotExists: true})
			if got := get(t, b, key); got != "after" {
				t.Errorf("Get after recovery = %q", got)
			}
		})
	}
}

// TestServerPaused: a server that stops answering fails a Put within the
// per-attempt timeout and its retries, leaving nothing.
func TestServerPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := config()
	cfg.Timeout = time.Second
	cfg.BlockSize = 64 << 10
	b := newBackend(t, cfg)
	key := uniqueKey(t, "paused")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := b.Put(ctx, key, pr, -1, backends.PutOptions{})
		done <- err
	}()
	pw.Write(make([]byte, 200<<10)) // two blocks staged, the third on its way
	if err := server.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			server.Resume()
		}
	}()
	go func() { pw.Write(make([]byte, 100<<10)); pw.Close() }()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Put to a paused server succeeded")
		}
		t.Logf("Put failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(60 * time.Second):
		t.Fatal("Put to a paused server still hangs after 60 s: the per-attempt timeout does not work")
	}
	server.Resume()
	resumed = true
	if _, err := b.Stat(ctx, key); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat after the failed Put: %v, want ErrNotFound", err)
	}
}

// TestIfNotExistsAfterFailedPut: the uncommitted blocks a failed Put leaves
// behind do not count as an object for IfNotExists.
func TestIfNotExistsAfterFailedPut(t *testing.T) {
	cfg := config()
	cfg.BlockSize = 64 << 10
	b := newBackend(t, cfg)
	data := bytes.Repeat([]byte("x"), 300<<10)
	broken := errors.New("broken")
	for _, n := range []int{10, 200 << 10} { // one request, staged blocks
		key := uniqueKey(t, fmt.Sprintf("retry-%d", n))
		_, err := b.Put(ctx, key, backendtest.FailingReader(bytes.NewReader(data), 200<<10, broken), -1, backends.PutOptions{})
		if !errors.Is(err, broken) {
			t.Fatalf("Put with a failing reader: %v", err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("Stat after the failed Put: %v, want ErrNotFound", err)
		}
		info, err := b.Put(ctx, key, bytes.NewReader(data[:n]), int64(n), backends.PutOptions{IfNotExists: true, Metadata: map[string]string{"n": "1"}})
		if err != nil {
			t.Fatalf("Put IfNotExists of %d bytes after a failed Put: %v", n, err)
		}
		if info.Size != int64(n) {
			t.Errorf("Put returned size %d, want %d", info.Size, n)
		}
		if got := get(t, b, key); got != string(data[:n]) {
			t.Errorf("Get = %d bytes, want %d", len(got), n)
		}
		if st := stat(t, b, key); st.Metadata["n"] != "1" {
			t.Errorf("metadata = %v", st.Metadata)
		}
		// Now it does exist.
		for _, m := range []int{10, 200 << 10} {
			_, err := b.Put(ctx, key, bytes.NewReader(data[:m]), int64(m), backends.PutOptions{IfNotExists: true})
			if !errors.Is(err, backends.ErrExists) {
				t.Errorf("second Put IfNotExists of %d bytes: %v, want ErrExists", m, err)
			}
		}
	}
}

// TestIfNotExistsLostAnswer: when the answer to a conditional write is
// lost, the SDK's retry finds the blob the first attempt wrote; that is
// success, not ErrExists.
func TestIfNotExistsLostAnswer(t *testing.T) {
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", server.Port), 1<<62)
	cfg := config()
	cfg.Endpoint = "http://" + proxy.addr() + "/" + server.Account
	cfg.BlockSize = 64 << 10
	b := newBackend(t, cfg)
	for _, tc := range []struct {
		name   string
		size   int
		dropAt int64 // the response of the conditional write
	}{
		{"one-request", 1000, 1},
		{"staged", 100 << 10, 3}, // two blocks, then the commit
	} {
		key := uniqueKey(t, tc.name)
		data := bytes.Repeat([]byte("y"), tc.size)
		proxy.responses.Store(0)
		proxy.dropAt.Store(tc.dropAt)
		_, err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), backends.PutOptions{IfNotExists: true, Metadata: map[string]string{"a": "b"}})
		proxy.dropAt.Store(0)
		if err != nil {
			t.Errorf("%s: Put IfNotExists whose answer was lost: %v", tc.name, err)
			continue
		}
		if got := proxy.responses.Load(); got <= tc.dropAt {
			t.Errorf("%s: %d responses, want more than %d (the lost one and the retry)", tc.name, got, tc.dropAt)
		}
		if got := get(t, b, key); got != string(data) {
			t.Errorf("%s: Get = %d bytes, want %d", tc.name, len(got), len(data))
		}
		if st := stat(t, b, key); !maps(st.Metadata, map[string]string{"a": "b"}) {
			t.Errorf("%s: metadata = %v, want only a=b (the Put's ID stays hidden)", tc.name, st.Metadata)
		}
		// A different writer is still refused.
		_, err = b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), backends.PutOptions{IfNotExists: true})
		if !errors.Is(err, backends.ErrExists) {
			t.Errorf("%s: second Put IfNotExists: %v, want ErrExists", tc.name, err)
		}
	}
}

// TestOverwriteArchived: a Put replaces an archived blob, whether it is one
// request or staged blocks (Azurite refuses a Put Blob there, not a Put
// Block List); IfNotExists still finds it.
func TestOverwriteArchived(t *testing.T) {
	for _, size := range []int{1000, 100 << 10} {
		cfg := config()
		cfg.BlockSize = 64 << 10
		b := newBackend(t, cfg)
		key := uniqueKey(t, fmt.Sprintf("archived-%d", size))
		put(t, b, key, "old", backends.PutOptions{Class: azure.ClassArchive, Metadata: map[string]string{"v": "1"}})
		data := strings.Repeat("n", size)
		_, err := b.Put(ctx, key, strings.NewReader(data), int64(len(data)), backends.PutOptions{IfNotExists: true})
		if !errors.Is(err, backends.ErrExists) {
			t.Errorf("%d bytes: Put IfNotExists over an archived blob: %v, want ErrExists", size, err)
		}
		md := map[string]string{"v": "2"}
		put(t, b, key, data, backends.PutOptions{Metadata: md})
		st := stat(t, b, key)
		if st.Size != int64(size) || !maps(st.Metadata, md) || st.Class == azure.ClassArchive {
			t.Errorf("%d bytes: after replacing an archived blob, Stat = %+v", size, st)
		}
		if got := get(t, b, key); got != data {
			t.Errorf("%d bytes: Get after replacing an archived blob = %d bytes", size, len(got))
		}
	}
}

// TestGetResumes: a Get whose connection breaks mid-body resumes from the
// same version of the blob, and fails rather than mix in a newer one.
func TestGetResumes(t *testing.T) {
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", server.Port), 1<<62)
	cfg := config()
	cfg.Endpoint = "http://" + proxy.addr() + "/" + server.Account
	b := newBackend(t, cfg)
	key := uniqueKey(t, "resumed")
	v1 := bytes.Repeat([]byte("1"), 2<<20)
	put(t, b, key, string(v1), backends.PutOptions{})

	for _, tc := range []struct {
		name        string
		off, length int64
	}{{"whole", 0, -1}, {"range", 1000, 1 << 20}} {
		proxy.received.Store(0)
		proxy.cutDown.Store(300 << 10) // within the body of the first answer
		rc, err := b.Get(ctx, key, tc.off, tc.length)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := v1[tc.off:]
		if tc.length >= 0 {
			want = want[:tc.length]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: Get cut mid-body: %d bytes, %v; want all %d", tc.name, len(got), err, len(want))
		}
		if proxy.cutDown.Load() != 0 {
			t.Errorf("%s: the connection was never cut", tc.name)
		}
	}

	// The blob changes while the reader is cut off: no mix of versions.
	// (Big enough that most of it is still on the server side when the
	// connection is cut: socket buffers hold a few MiB.)
	v1 = bytes.Repeat([]byte("1"), 32<<20)
	put(t, b, key, string(v1), backends.PutOptions{})
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	first := make([]byte, 100<<10)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}
	direct := newBackend(t, config())
	put(t, direct, key, strings.Repeat("2", 1<<20), backends.PutOptions{})
	proxy.received.Store(0)
	proxy.cutDown.Store(1)
	rest, err := io.ReadAll(rc)
	if proxy.cutDown.Load() != 0 {
		t.Fatalf("the connection was never cut (%d bytes read on)", len(rest))
	}
	if err == nil {
		t.Fatalf("reading on after the blob changed and the connection broke: no error (%d bytes)", len(rest))
	}
	if bytes.Contains(rest, []byte("2")) {
		t.Errorf("the reader mixed in the new version")
	}
	t.Logf("after a change and a cut: %v", err)
}

func TestConfigYAML(t *testing.T) {
	const doc = `
account: acct1
container: wal
prefix: cluster-a
endpoint: https://acct1.blob.core.windows.net
sas_token: "?sv=x&sig=y"
block_size: 8388608
timeout: 30s
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var cfg azure.Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	want := azure.Config{Account: "acct1", Container: "wal", Prefix: "cluster-a", Endpoint: "https://acct1.blob.core.windows.net",
		SASToken: "?sv=x&sig=y", BlockSize: 8 << 20, Timeout: 30 * time.Second}
	if cfg != want {
		t.Errorf("decoded %#v\nwant %#v", cfg, want)
	}
	if _, err := azure.New(ctx, cfg); err != nil {
		t.Errorf("New: %v", err)
	}
	dec = yaml.NewDecoder(strings.NewReader("account: a\nbucket: b\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil {
		t.Errorf("unknown key accepted")
	}
}

// TestCheck runs `walgate backend check`'s checks against Azurite, and
// an archived object fails reads with the shared backends.ErrArchived.
func TestCheck(t *testing.T) {
	cfg := config()
	cfg.Prefix = "checked-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	b := newBackend(t, cfg)
	results := backends.Check(ctx, b, []string{"Cool", "Cold"})
	for _, r := range results {
		t.Logf("%-24s ok=%v %s", r.Name, r.OK, r.Detail)
		if !r.OK {
			t.Errorf("%s failed: %s", r.Name, r.Detail)
		}
	}
	if left := listInfos(t, b, ""); len(left) != 0 {
		t.Errorf("the check left %d objects", len(left))
	}
	key := uniqueKey(t, "archived")
	put(t, b, key, "data", backends.PutOptions{Class: "Archive"})
	if _, err := b.Get(ctx, key, 0, -1); !errors.Is(err, backends.ErrArchived) {
		t.Errorf("Get of an archived blob = %v, want backends.ErrArchived", err)
	}
}
