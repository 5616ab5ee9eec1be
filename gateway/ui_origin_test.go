package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway/gatewaytest"
)

// TestUILoginOrigin: a login form posted from another site (login CSRF)
// is refused with 403 and sets no session cookie; one from the gateway's
// own pages, or from a tool that sends neither Origin nor Sec-Fetch-Site,
// logs in.
func TestUILoginOrigin(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	admin := e.g.Token(cluster, "admin")
	self := "http://" + e.addr
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(headers map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.g.URL+"/ui/login", strings.NewReader(url.Values{"token": {admin}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		cookie := resp.Header.Get("Set-Cookie")
		if resp.StatusCode == http.StatusForbidden && cookie != "" {
			t.Errorf("a refused login set a cookie: %s", cookie)
		}
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		what    string
		headers map[string]string
		want    int
	}{
		{"a tool (no Origin, no Sec-Fetch-Site)", nil, http.StatusSeeOther},
		{"the gateway's own page (Origin)", map[string]string{"Origin": self}, http.StatusSeeOther},
		{"the gateway's own page (Sec-Fetch-Site)", map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"another site", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"another port of the same host", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"an opaque origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"another scheme", map[string]string{"Origin": "https://" + e.addr}, http.StatusForbidden},
		{"a cross-site fetch", map[string]string{"Origin": self, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
	} {
		st, body := login(tc.headers)
		if st != tc.want {
			t.Errorf("login from %s: HTTP %d, want %d", tc.what, st, tc.want)
		}
		if st == http.StatusForbidden && !strings.Contains(body, "another site") {
			t.Errorf("login from %s: the page does not say why: %.300s", tc.what, body)
		}
	}
}
