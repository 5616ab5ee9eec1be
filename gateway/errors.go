package gateway

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
)

// apiError is an error with its wire code. Handlers return it; the error
// handler turns it into the JSON body and HTTP status of that code.
type apiError struct {
	Code    protocol.Code
	Message string
	Err     error // cause, logged, never sent
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
	c.Status(ae.Code.Status())
	return c.JSON(protocol.ErrorBody{Error: protocol.ErrorDetail{Code: ae.Code, Message: ae.Message}})
}
