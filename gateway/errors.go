package gateway

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
)

// apiError is an error with its wire code. Handlers return it; the error
// handler turns it into the JSON body and HTTP status of that code.
type apiError struct {
	Code    protocol.Code
	Message string
	Err     error // cause, logged, never sent
	// RetryAfter, when set, is sent as Retry-After: when the client may
	// try again (a saturated gateway).
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *apiError) Unwrap() error { return e.Err }

func apiErr(code protocol.Code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toAPIError is the one table from errors to wire codes.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusNotFound:
			return apiErr(protocol.CodeRouteNotFound, "no such route; this gateway speaks protocol %s", protocol.Version)
		case fiber.StatusMethodNotAllowed:
			return apiErr(protocol.CodeRouteNotFound, "method not allowed on this route")
		case fiber.StatusRequestEntityTooLarge:
			return apiErr(protocol.CodeTooLarge, "%s", fe.Message)
		case fiber.StatusRequestTimeout:
			return apiErr(protocol.CodeTimeout, "%s", fe.Message)
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return apiErr(protocol.CodeBadRequest, "%s", fe.Message)
		}
	}
	return &apiError{Code: protocol.CodeInternal, Message: "internal error; the gateway log has the details", Err: err}
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	ae := toAPIError(err)
	c.Locals(localError, ae)
	// A request refused before its body was read leaves the rest of the
	// body on the connection, where the server would parse it as the next
	// request. Read and drop it, so that the client, still sending, gets
	// to read this answer (closing with unread data resets the connection
	// and the client would report a network error instead); close the
	// connection when that is not possible.
	if cl := c.Request().Header.ContentLength(); cl != 0 {
		if cl > maxDrain || ae.Code == protocol.CodeTimeout || ae.Code == protocol.CodeLengthMismatch || !s.drainBody(c) {
			c.Context().SetConnectionClose()
		}
	}
	if ae.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(max(ae.RetryAfter.Round(time.Second), time.Second)/time.Second)))
	}
	c.Status(ae.Code.Status())
	return c.JSON(protocol.ErrorBody{Error: protocol.ErrorDetail{Code: ae.Code, Message: ae.Message}})
}

// maxDrain bounds how much of a refused request's body drainBody reads.
const maxDrain = 64 << 20

// drainBody reads the unread rest of the request body, at most maxDrain
// bytes, with the idle timeout between reads. It reports whether the body
// ended cleanly, leaving the connection usable.
func (s *Server) drainBody(c *fiber.Ctx) bool {
	r := c.Context().RequestBodyStream()
	if r == nil {
		return true
	}
	conn := c.Context().Conn()
	buf := make([]byte, 32<<10)
	var n int64
	for n <= maxDrain {
		if conn != nil {
			_ = conn.SetReadDeadline(time.Now().Add(s.cfg.Limits.IdleTimeout))
		}
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
