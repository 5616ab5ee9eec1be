package protocol

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, cluster := range []string{"a", "db-01", "pay_ments", strings.Repeat("x", 63)} {
		tok, err := NewToken(cluster)
		if err != nil {
			t.Fatal(err)
		}
		got, err := TokenCluster(tok)
		if err != nil || got != cluster {
			t.Fatalf("TokenCluster(%q) = %q, %v; want %q", tok, got, err, cluster)
		}
		other, _ := NewToken(cluster)
		if other == tok || TokenID(other) == TokenID(tok) {
			t.Fatal("two tokens are equal")
		}
	}
	for _, bad := range []string{"", "wgt1.", "wgt1.x.", "wgt1.x.short", "wgt0.db.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"wgt1.Db.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "wgt1.d/b.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"wgt1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "wgt1.db.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"Bearer wgt1.db.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if c, err := TokenCluster(bad); err == nil {
			t.Errorf("TokenCluster(%q) accepted, cluster %q", bad, c)
		}
	}
}

func TestValidateCluster(t *testing.T) {
	for _, ok := range []string{"a", "0", "db-1", "a_b", strings.Repeat("z", 63)} {
		if err := ValidateCluster(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "A", "a.b", "..", "a/b", "a b", strings.Repeat("z", 64), "é"} {
		if err := ValidateCluster(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for _, h := range []string{"127.0.0.1:7480", "127.1.2.3:1", "[::1]:7480", "localhost:80", "localhost", "::1"} {
		if !IsLoopback(h) {
			t.Errorf("%s: want loopback", h)
		}
	}
	for _, h := range []string{"0.0.0.0:7480", "10.0.0.1:7480", "[::]:7480", "example.com:443", "localhost.example.com:1", ":7480"} {
		if IsLoopback(h) {
			t.Errorf("%s: not loopback", h)
		}
	}
}

func TestCodeStatusTable(t *testing.T) {
	want := map[Code]int{CodeInvalidName: 400, CodeUnauthorized: 401, CodeForbidden: 403, CodeNotFound: 404,
		CodeConflict: 409, CodeLengthRequired: 411, CodeTooLarge: 413, CodeHashMismatch: 400, CodeTimeout: 408,
		CodeUnavailable: 503, CodeInternal: 500, CodeDamaged: 502}
	for c, s := range want {
		if c.Status() != s {
			t.Errorf("%s: status %d, want %d", c, c.Status(), s)
		}
	}
}

func FuzzTokenCluster(f *testing.F) {
	tok, _ := NewToken("db")
	f.Add(tok)
	f.Add("wgt1.a.b")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := TokenCluster(s)
		if err != nil {
			return
		}
		if ValidateCluster(c) != nil || !strings.HasPrefix(s, "wgt1."+c+".") {
			t.Fatalf("accepted %q with cluster %q", s, c)
		}
	})
}
