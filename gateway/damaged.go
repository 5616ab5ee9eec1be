package gateway

import (
	"errors"
	"fmt"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
)

// unreadable is the answer to a read whose object no backend can serve.
func unreadable(what string, err error) error {
	if errors.Is(err, stores.ErrEveryCopyDamaged) {
		return &apiError{Code: protocol.CodeDamaged, Message: fmt.Sprintf("%s: %v; restore it from another archive or take a new backup", what, stores.ErrEveryCopyDamaged), Err: err}
	}
	return &apiError{Code: protocol.CodeUnavailable, Message: fmt.Sprintf("the catalog lists %s but no backend can read it", what), Err: err}
}
