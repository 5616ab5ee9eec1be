package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle/apply"
)

// CreateToken makes a new token for cluster with scopes, stores its hash
// in the catalog and returns the secret, which is never stored.
func CreateToken(cat index.Interface, cluster string, scopes []index.Scope, comment string) (string, index.Token, error) {
	return IssueToken(cat, TokenSpec{Cluster: cluster, Scopes: scopes, Comment: comment}, time.Now())
}

// TokenSpec says what token to make.
type TokenSpec struct {
	// Cluster binds the token; empty with AllClusters.
	Cluster string `json:"cluster"`
	// AllClusters makes a fleet-wide admin token (scope admin only).
	AllClusters bool          `json:"all_clusters,omitempty"`
	Scopes      []index.Scope `json:"scopes"`
	Comment     string        `json:"comment"`
	// Lifetime is how long the token works; zero: it does not expire.
	Lifetime time.Duration `json:"lifetime,omitempty"`
}

// check refuses a spec that makes no sense.
func (sp TokenSpec) check() error {
	if len(sp.Scopes) == 0 {
		return errors.New("a token needs at least one scope: push, fetch or admin")
	}
	if sp.Lifetime < 0 {
		return fmt.Errorf("a token's lifetime must be positive, not %s", sp.Lifetime)
	}
	if sp.AllClusters {
		if sp.Cluster != "" {
			return errors.New("a token is either bound to a cluster or fleet-wide (--all-clusters), not both")
		}
		if len(sp.Scopes) != 1 || sp.Scopes[0] != index.ScopeAdmin {
			return fmt.Errorf("a fleet-wide token has the admin scope only (asked: %v): database hosts get tokens bound to their cluster", sp.Scopes)
		}
		return nil
	}
	if sp.Cluster == "" {
		return errors.New("a token is bound to a cluster: name it (or, for a fleet-wide admin token, ask for all clusters)")
	}
	return protocol.ValidateCluster(sp.Cluster)
}

// newSecret makes the secret of a token acting on cluster (or all).
func newSecret(cluster string, all bool) (string, error) {
	if all {
		return protocol.NewFleetToken()
	}
	return protocol.NewToken(cluster)
}

// IssueToken makes a new token as spec says, stores its hash in the
// catalog and returns the secret, which is never stored.
func IssueToken(cat index.Interface, spec TokenSpec, now time.Time) (string, index.Token, error) {
	if err := spec.check(); err != nil {
		return "", index.Token{}, err
	}
	secret, err := newSecret(spec.Cluster, spec.AllClusters)
	if err != nil {
		return "", index.Token{}, err
	}
	now = now.UTC()
	t := index.Token{ID: protocol.TokenID(secret), Cluster: spec.Cluster, AllClusters: spec.AllClusters, Scopes: spec.Scopes,
		Created: now, Comment: spec.Comment}
	if spec.Lifetime > 0 {
		t.Expires = now.Add(spec.Lifetime)
	}
	if err := cat.AddToken(protocol.TokenHash(secret), t); err != nil {
		return "", index.Token{}, err
	}
	return secret, t, nil
}

// DefaultGrace is how long a rotated token keeps working beside its
// successor unless told otherwise: a day to roll the new one out.
const DefaultGrace = 24 * time.Hour

// RotateRequest is the body of POST /tokens/{id}/rotate.
type RotateRequest struct {
	// Lifetime of the successor; zero: the old token's lifetime (from
	// its creation to its expiry), or none when it had none.
	Lifetime time.Duration `json:"lifetime,omitempty"`
	// Grace is how long the old token keeps working; zero: DefaultGrace.
	Grace time.Duration `json:"grace,omitempty"`
}

// RotateToken issues a successor of the token id (same cluster, scopes
// and comment) and lets the old one work until the grace period ends. It
// returns the successor's secret and both records.
func RotateToken(cat index.Interface, id string, req RotateRequest, now time.Time) (string, index.Token, index.Token, error) {
	if req.Grace < 0 || req.Lifetime < 0 {
		return "", index.Token{}, index.Token{}, errors.New("grace and lifetime must be positive")
	}
	if req.Grace == 0 {
		req.Grace = DefaultGrace
	}
	list, err := cat.ListTokens()
	if err != nil {
		return "", index.Token{}, index.Token{}, err
	}
	var old index.Token
	for _, t := range list {
		if t.ID == id {
			old = t
		}
	}
	if old.ID == "" {
		return "", index.Token{}, index.Token{}, fmt.Errorf("token %s: %w (see 'walgate token list')", id, index.ErrNotFound)
	}
	if err := old.Valid(now); err != nil {
		return "", index.Token{}, index.Token{}, fmt.Errorf("%w: issue a new token with 'walgate token add' instead", err)
	}
	secret, err := newSecret(old.Cluster, old.AllClusters)
	if err != nil {
		return "", index.Token{}, index.Token{}, err
	}
	now = now.UTC()
	next := index.Token{ID: protocol.TokenID(secret), Created: now}
	switch {
	case req.Lifetime > 0:
		next.Expires = now.Add(req.Lifetime)
	case !old.Expires.IsZero():
		next.Expires = now.Add(old.Expires.Sub(old.Created))
	}
	old, next, err = cat.RotateToken(id, protocol.TokenHash(secret), next, now.Add(req.Grace))
	if err != nil {
		return "", index.Token{}, index.Token{}, err
	}
	return secret, old, next, nil
}

// SocketPath is the Unix socket through which admin verbs on the same
// machine reach a running gateway. Access is by file permission (0600,
// owner only): whoever can open it can read the data directory anyway.
func SocketPath(data string) string { return filepath.Join(data, "admin.sock") }

// tokenResponse answers POST /tokens (Record: the new token) and POST
// /tokens/{id}/rotate (Record: the successor; Old: the rotated token).
type tokenResponse struct {
	Token  string       `json:"token"`
	Record index.Token  `json:"record"`
	Old    *index.Token `json:"old,omitempty"`
}

// Server is what the admin socket serves: the running gateway's catalog,
// fleet, stores and lifecycle executor.
type Server struct {
	Data      string // the data directory (the socket lives there)
	Catalog   index.Interface
	Fleet     *fleet.Fleet
	Stores    *stores.Set
	Lifecycle *apply.Executor
	Log       *slog.Logger
	// Audit records every administrative act done through the socket.
	Audit *audit.Log
}

// audit records an act done through the socket; a failure to record is
// logged (the act itself is done).
func (s *Server) audit(action, target string, err error) {
	if aerr := s.Audit.Record(audit.Entry{Client: "admin-socket", Action: action, Target: target, Result: audit.Result(err)}); aerr != nil {
		s.Log.Error("audit log", "action", action, "target", target, "err", aerr)
	}
}

// Listen opens the admin socket under data, owner-only.
func Listen(data string) (net.Listener, error) {
	path := SocketPath(data)
	os.Remove(path) // a stale socket from a killed gateway
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// Serve serves the admin socket until ctx ends. The socket file is gone
// when it returns: closing the listener Listen made removes it
// (net.UnixListener unlinks on Close), before the accept loop ends. A
// removal after that could take the socket of a gateway started next on
// the same data directory.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var req TokenSpec
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		secret, rec, err := IssueToken(s.Catalog, req, time.Now())
		target := req.Cluster
		if err == nil {
			target = rec.ID + " " + rec.Target()
		}
		s.audit("token.add", target, err)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.Log.Info("token added", "token", rec.ID, "cluster", rec.Target(), "scopes", rec.Scopes, "expires", rec.Expires)
		_ = json.NewEncoder(w).Encode(tokenResponse{Token: secret, Record: rec})
	})
	mux.HandleFunc("POST /tokens/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		var req RotateRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		id := r.PathValue("id")
		secret, old, next, err := RotateToken(s.Catalog, id, req, time.Now())
		target := id
		if err == nil {
			target = id + " -> " + next.ID
		}
		s.audit("token.rotate", target, err)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, index.ErrNotFound) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
			return
		}
		s.Log.Info("token rotated", "token", id, "successor", next.ID, "old_expires", old.Expires)
		_ = json.NewEncoder(w).Encode(tokenResponse{Token: secret, Record: next, Old: &old})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Fleet.Status(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /gateways", func(w http.ResponseWriter, r *http.Request) {
		list, err := fleet.Gateways(s.Catalog)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /backends", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Stores.BackendsStatus()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /lifecycle", func(w http.ResponseWriter, r *http.Request) {
		var opts apply.Options
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&opts); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := s.Lifecycle.Run(r.Context(), opts, time.Now())
		if opts.Apply {
			target := opts.Cluster
			if target == "" {
				target = "all clusters"
			}
			s.audit("lifecycle.apply", target, err)
		}
		switch {
		case errors.Is(err, apply.ErrBusy):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case errors.Is(err, index.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if opts.Apply {
			apply.Log(s.Log, res, err)
		}
		out := lifecycleResponse{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /tokens", func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Catalog.ListTokens()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("DELETE /tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		err := s.Catalog.RevokeToken(r.PathValue("id"))
		s.audit("token.revoke", r.PathValue("id"), err)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		s.Log.Info("token revoked", "token", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-closed
		return nil
	}
	return err
}

// Client reaches a running gateway's admin socket.
type Client struct{ http *http.Client }

// Dial returns a client for the admin socket under data, or an error
// when no gateway answers there.
func Dial(data string) (*Client, error) {
	path := SocketPath(data)
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	conn.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (a *Client) call(method, path string, in, out any) error {
	var body *strings.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, "http://walgate"+path, body)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		return fmt.Errorf("gateway: %s", strings.TrimSpace(string(buf[:n])))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// AddToken asks the running gateway to create a token.
func (a *Client) AddToken(cluster string, scopes []index.Scope, comment string) (string, index.Token, error) {
	return a.IssueToken(TokenSpec{Cluster: cluster, Scopes: scopes, Comment: comment})
}

// IssueToken asks the running gateway to create a token as spec says.
func (a *Client) IssueToken(spec TokenSpec) (string, index.Token, error) {
	var res tokenResponse
	err := a.call(http.MethodPost, "/tokens", spec, &res)
	return res.Token, res.Record, err
}

// RotateToken asks the running gateway to rotate the token id; it
// returns the successor's secret, the old record and the successor's.
func (a *Client) RotateToken(id string, req RotateRequest) (string, index.Token, index.Token, error) {
	if id == "" {
		return "", index.Token{}, index.Token{}, errors.New("no token ID")
	}
	var res tokenResponse
	if err := a.call(http.MethodPost, "/tokens/"+url.PathEscape(id)+"/rotate", req, &res); err != nil {
		return "", index.Token{}, index.Token{}, err
	}
	var old index.Token
	if res.Old != nil {
		old = *res.Old
	}
	return res.Token, old, res.Record, nil
}

// ListTokens lists the running gateway's tokens.
func (a *Client) ListTokens() ([]index.Token, error) {
	var list []index.Token
	err := a.call(http.MethodGet, "/tokens", nil, &list)
	return list, err
}

// Status asks the running gateway for the fleet's status.
func (a *Client) Status() ([]fleet.ClusterStatus, error) {
	var st []fleet.ClusterStatus
	err := a.call(http.MethodGet, "/status", nil, &st)
	return st, err
}

// Gateways asks the running gateway for the fleet's gateways.
func (a *Client) Gateways() ([]fleet.GatewayStatus, error) {
	var list []fleet.GatewayStatus
	err := a.call(http.MethodGet, "/gateways", nil, &list)
	return list, err
}

// Backends asks the running gateway for its backends' state.
func (a *Client) Backends() ([]stores.BackendStatus, error) {
	var st []stores.BackendStatus
	err := a.call(http.MethodGet, "/backends", nil, &st)
	return st, err
}

// RevokeToken revokes a token by ID on the running gateway.
func (a *Client) RevokeToken(id string) error {
	if id == "" {
		return errors.New("no token ID")
	}
	return a.call(http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, nil)
}

// lifecycleResponse answers POST /lifecycle on the admin socket.
type lifecycleResponse struct {
	Result apply.Result `json:"result"`
	Error  string       `json:"error,omitempty"`
}

// Lifecycle asks the running gateway to plan (and with opts.Apply carry
// out) a lifecycle run. It waits as long as the run takes. The result
// comes with the run's error, if any (some clusters without a plan).
func (a *Client) Lifecycle(opts apply.Options) (apply.Result, error) {
	long := *a.http
	long.Timeout = 0
	var res lifecycleResponse
	if err := (&Client{http: &long}).call(http.MethodPost, "/lifecycle", opts, &res); err != nil {
		return apply.Result{}, err
	}
	if res.Error != "" {
		return res.Result, errors.New(res.Error)
	}
	return res.Result, nil
}

// ExpiryWarning is how close to its expiry a token is shown as expiring
// (walgate status, walgate_tokens_expiring).
const ExpiryWarning = 14 * 24 * time.Hour

// ExpiringTokens returns the tokens of list that are still valid at now
// but expire within window and have no successor: the ones to rotate.
func ExpiringTokens(list []index.Token, now time.Time, window time.Duration) []index.Token {
	var out []index.Token
	for _, t := range list {
		if !t.Expires.IsZero() && t.Successor == "" && t.Valid(now) == nil && t.Expires.Before(now.Add(window)) {
			out = append(out, t)
		}
	}
	return out
}
