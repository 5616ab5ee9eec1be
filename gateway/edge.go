package gateway

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// The edge: checks that run when a request's headers are in, before a
// byte of its body is read and before the HTTP server would answer
// "Expect: 100-continue" with 100. A request they refuse reaches its
// handler with no body (its declared length set to 0, Expect removed,
// the connection marked to close), and the handler answers the refusal
// at once: a client gets 413 for a declared length above the route's
// limit, or 401/403 instead of 100, without sending or waiting.

// earlyRefusals holds the refusal of a request, by its header, from the
// header hook to the handler. fasthttp reuses a request's header for the
// next request of its pool, and the hook replaces any entry first.
type earlyRefusals struct{ m sync.Map }

// earlyRefusal is a refused request: why, and how many body bytes the
// client said it would send without waiting for 100 Continue (-1:
// chunked, 0: none).
type earlyRefusal struct {
	err      error
	inFlight int64
}

func (e *earlyRefusals) set(h *fasthttp.RequestHeader, r earlyRefusal) { e.m.Store(h, r) }
func (e *earlyRefusals) clear(h *fasthttp.RequestHeader)               { e.m.Delete(h) }

func (e *earlyRefusals) take(h *fasthttp.RequestHeader) (earlyRefusal, bool) {
	if v, ok := e.m.LoadAndDelete(h); ok {
		return v.(earlyRefusal), true
	}
	return earlyRefusal{}, false
}

// headerReceived is the HTTP server's header hook.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	s.early.clear(h)
	var conf fasthttp.RequestConfig
	err := s.checkHeaders(h)
	if err == nil {
		var held bool
		held, err = s.awaitWriteSlots(h)
		if held {
			// The wait counted against the read deadline set when the
			// request began: the first 8 KiB of the body get it anew.
			conf.ReadTimeout = s.readTimeout()
		}
	}
	if err != nil {
		r := earlyRefusal{err: err}
		if !bytes.EqualFold(h.Peek(fiber.HeaderExpect), []byte("100-continue")) {
			// The client sends its body without waiting for an answer.
			r.inFlight = int64(h.ContentLength())
			if h.ContentLength() == -1 {
				r.inFlight = -1
			}
		}
		s.early.set(h, r)
		h.Del(fiber.HeaderExpect)
		h.SetContentLength(0)
		if r.inFlight == 0 {
			h.SetConnectionClose()
		} else {
			// refuseEarly hands the connection over once the answer is
			// out, to read the body in flight and then close it. The
			// server closes at once, unread data and all, after a
			// request that asked for Connection: close, so the request
			// no longer says so: the connection closes all the same.
			h.ResetConnectionClose()
		}
	}
	return conf
}

// refuseEarly answers a request the header hook refused. When the client
// is sending a body all the same, the answer goes out first and the
// connection then reads and drops what follows (at most maxDrain bytes,
// each read within earlyDrainWait, all within earlyDrainTotal, so that a
// slow sender cannot hold the connection) before it closes: closing with unread
// data resets the connection, and the client would report a network
// error instead of reading the refusal.
func (s *Server) refuseEarly(c *fiber.Ctx) error {
	r, ok := s.early.take(&c.Request().Header)
	if !ok {
		return c.Next()
	}
	if r.inFlight != 0 {
		left := int64(maxDrain)
		if r.inFlight > 0 {
			left = min(left, r.inFlight)
		}
		fctx := c.Context()
		// The answer is written here rather than by the server, so that
		// it can say Connection: close (the server would close at once
		// after such an answer, unread data and all): a client that
		// reused the connection for its next request would find it
		// reset.
		fctx.HijackSetNoResponse(true)
		fctx.Hijack(func(conn net.Conn) {
			fctx.Response.SetConnectionClose()
			w := bufio.NewWriter(conn)
			_ = conn.SetWriteDeadline(time.Now().Add(earlyDrainWait))
			if fctx.Response.Write(w) != nil || w.Flush() != nil {
				return
			}
			buf := make([]byte, 32<<10)
			end := time.Now().Add(earlyDrainTotal)
			for left > 0 {
				d := time.Now().Add(earlyDrainWait)
				if d.After(end) {
					d = end
				}
				_ = conn.SetReadDeadline(d)
				n, err := conn.Read(buf[:min(int64(len(buf)), left)])
				left -= int64(n)
				if err != nil {
					return
				}
			}
		})
	}
	return r.err
}

// awaitWriteSlots holds a push that waits for 100 Continue (a backup
// part the client streams once) until the stores it goes to have a write
// slot free: when they stay busy for limits.write_slot_wait, the client
// gets 503 before it has sent a byte, and may send it again. The handler
// takes its slot as any push does (another push may have taken this one
// meanwhile; it then waits again, at most as long). held reports whether
// the request was held here.
func (s *Server) awaitWriteSlots(h *fasthttp.RequestHeader) (held bool, err error) {
	if !h.IsPut() || !bytes.EqualFold(h.Peek(fiber.HeaderExpect), []byte("100-continue")) {
		return false, nil
	}
	route := routeOf(h)
	if route.kind != "wal" && route.kind != "file" {
		return false, nil
	}
	g, err := s.stores.GroupFor(route.cluster)
	if err != nil {
		return false, nil // the handler answers it
	}
	if err := s.stores.AwaitSlots(context.Background(), g); err != nil {
		return true, storeFailure(g.Name(), err, "retry later")
	}
	return true, nil
}

// earlyDrainWait bounds each read of the body a refused client still
// sends, earlyDrainTotal all of them.
const (
	earlyDrainWait  = 5 * time.Second
	earlyDrainTotal = 30 * time.Second
)

// checkHeaders refuses framing a proxy could read differently (several
// Content-Length headers, or one with Transfer-Encoding), a declared body
// above the route's limit, and, when the client waits for 100 Continue,
// a request its token may not make.
func (s *Server) checkHeaders(h *fasthttp.RequestHeader) error {
	var lengths [][]byte
	chunked := false
	h.VisitAllInOrder(func(k, v []byte) {
		switch {
		case bytes.EqualFold(k, []byte(fiber.HeaderContentLength)):
			lengths = append(lengths, bytes.Clone(v))
		case bytes.EqualFold(k, []byte(fiber.HeaderTransferEncoding)):
			chunked = true
		}
	})
	if len(lengths) > 1 {
		for _, l := range lengths[1:] {
			if !bytes.Equal(bytes.TrimSpace(l), bytes.TrimSpace(lengths[0])) {
				return apiErr(protocol.CodeBadRequest, "conflicting Content-Length headers (%q and %q): send one", lengths[0], l)
			}
		}
	}
	if len(lengths) > 0 && chunked {
		return apiErr(protocol.CodeBadRequest, "both Content-Length and Transfer-Encoding: send one")
	}
	route := routeOf(h)
	if limit, what := s.bodyLimit(route); int64(h.ContentLength()) > limit {
		return apiErr(protocol.CodeTooLarge, "body of %d bytes exceeds %s (%d); nothing was read", h.ContentLength(), what, limit)
	}
	if bytes.EqualFold(h.Peek(fiber.HeaderExpect), []byte("100-continue")) && route.scope != "" {
		return s.authorizeHeader(h, route)
	}
	return nil
}

// edgeRoute is what the header hook knows of a request's route.
type edgeRoute struct {
	kind    string // "wal", "file", "commit", "drills", "delete", "" (other)
	cluster string
	scope   index.Scope // "" when the route needs no token (or is unknown)
}

// routeOf matches a request path against the API routes the way the
// router does (case-insensitive literals).
func routeOf(h *fasthttp.RequestHeader) edgeRoute {
	path := string(h.RequestURI())
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if i := strings.Index(path, "://"); i >= 0 { // absolute form
		rest := path[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			path = rest[j:]
		} else {
			path = "/"
		}
	}
	seg := strings.Split(strings.TrimSuffix(path, "/"), "/")
	is := func(i int, lit string) bool { return len(seg) > i && strings.EqualFold(seg[i], lit) }
	if len(seg) < 4 || seg[0] != "" || !is(1, protocol.Version) || !is(2, "clusters") {
		return edgeRoute{}
	}
	r := edgeRoute{cluster: seg[3], scope: index.ScopeFetch}
	write := h.IsPut() || h.IsPost() || h.IsDelete()
	switch {
	case is(4, "wal") && len(seg) == 6:
		r.kind = "wal"
	case is(4, "backups") && is(6, "files") && len(seg) > 7:
		r.kind = "file"
	case is(4, "backups") && is(6, "commit") && len(seg) == 7:
		r.kind = "commit"
	case is(4, "drills") && len(seg) == 5:
		r.kind = "drills"
		write = false // a drill report is posted with the fetch scope
	case is(4, "delete") && len(seg) == 5:
		r.kind = "delete"
		r.scope = index.ScopeAdmin
		return r
	}
	if write {
		r.scope = index.ScopePush
	}
	return r
}

// bodyLimit is the largest body the route accepts, and the setting that
// says so.
func (s *Server) bodyLimit(r edgeRoute) (int64, string) {
	switch r.kind {
	case "wal":
		return s.cfg.Limits.MaxWALBytes, "limits.max_wal_bytes"
	case "file":
		return s.cfg.Limits.MaxBackupObjectBytes, "limits.max_backup_object_bytes"
	case "commit":
		return maxCommitBytes, "the limit of a backup commit"
	case "drills":
		return s.cfg.Limits.MaxDrillReportBytes, "limits.max_drill_report_bytes"
	}
	return maxRequestBytes, "the limit of a request without an object"
}

// Bodies of requests that carry no object.
const (
	maxCommitBytes  = 16 << 20
	maxRequestBytes = 1 << 20
)

// authorizeHeader checks the token of a request that waits for 100
// Continue, through the same checks its handler makes.
func (s *Server) authorizeHeader(h *fasthttp.RequestHeader, r edgeRoute) error {
	var rc fasthttp.RequestCtx
	h.CopyTo(&rc.Request.Header)
	c := s.app.AcquireCtx(&rc)
	defer s.app.ReleaseCtx(c)
	if err := protocol.ValidateCluster(r.cluster); err != nil {
		return apiErr(protocol.CodeInvalidName, "%v", err)
	}
	_, err := s.authorize(c, r.cluster, r.scope)
	return err
}
