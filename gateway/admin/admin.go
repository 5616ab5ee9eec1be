package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle/apply"
)

// CreateToken makes a new token for cluster with scopes, stores its hash
// in the catalog and returns the secret, which is never stored.
func CreateToken(cat index.Interface, cluster string, scopes []index.Scope, comment string) (string, index.Token, error) {
	if len(scopes) == 0 {
		return "", index.Token{}, errors.New("a token needs at least one scope: push, fetch or admin")
	}
	secret, err := protocol.NewToken(cluster)
	if err != nil {
		return "", index.Token{}, err
	}
	t := index.Token{ID: protocol.TokenID(secret), Cluster: cluster, Scopes: scopes, Created: time.Now().UTC(), Comment: comment}
	if err := cat.AddToken(protocol.TokenHash(secret), t); err != nil {
		return "", index.Token{}, err
	}
	return secret, t, nil
}

// SocketPath is the Unix socket through which admin verbs on the same
// machine reach a running gateway. Access is by file permission (0600,
// owner only): whoever can open it can read the data directory anyway.
func SocketPath(data string) string { return filepath.Join(data, "admin.sock") }

// tokenRequest is the body of POST /tokens on the admin socket.
type tokenRequest struct {
	Cluster string        `json:"cluster"`
	Scopes  []index.Scope `json:"scopes"`
	Comment string        `json:"comment"`
}

type tokenResponse struct {
	Token  string      `json:"token"`
	Record index.Token `json:"record"`
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

// Serve serves the admin socket until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	path := SocketPath(s.Data)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		secret, rec, err := CreateToken(s.Catalog, req.Cluster, req.Scopes, req.Comment)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.Log.Info("token added", "token", rec.ID, "cluster", rec.Cluster, "scopes", rec.Scopes)
		_ = json.NewEncoder(w).Encode(tokenResponse{Token: secret, Record: rec})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Fleet.Status(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
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
		if err := s.Catalog.RevokeToken(r.PathValue("id")); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		s.Log.Info("token revoked", "token", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(path)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
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
	var res tokenResponse
	err := a.call(http.MethodPost, "/tokens", tokenRequest{Cluster: cluster, Scopes: scopes, Comment: comment}, &res)
	return res.Token, res.Record, err
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

// Backends asks the running gateway for its backends' state.
func (a *Client) Backends() ([]stores.BackendStatus, error) {
	var st []stores.BackendStatus
	err := a.call(http.MethodGet, "/backends", nil, &st)
	return st, err
}

// RevokeToken revokes a token by ID on the running gateway.
func (a *Client) RevokeToken(id string) error {
	return a.call(http.MethodDelete, "/tokens/"+id, nil, nil)
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
