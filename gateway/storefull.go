package gateway

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
)

// storeFailure is the answer when the stores, not the body, failed a
// write of group: a full store (no space left, quota exceeded) is named
// as such, so the client's message says what to fix; anything else says
// that the group's ack policy was not met. then says what the client
// does next.
func storeFailure(group string, err error, then string) *apiError {
	var sat *stores.SaturatedError
	if errors.As(err, &sat) {
		return &apiError{Code: protocol.CodeUnavailable, Err: err, RetryAfter: saturatedRetryAfter, Message: fmt.Sprintf(
			"the gateway is saturated: all %d write slots of store %s (backends[].max_writes) stayed busy for %s (limits.write_slot_wait); nothing was stored. Retry later; if this recurs, raise max_writes of %s or add gateways",
			sat.Slots, sat.Backend, sat.Waited, sat.Backend)}
	}
	if names := fullStores(err); len(names) > 0 {
		return &apiError{Code: protocol.CodeUnavailable, Err: err, Message: fmt.Sprintf(
			"store %s is full (no space left on device): nothing was acknowledged; free space or add capacity there, then %s",
			strings.Join(names, ", "), then)}
	}
	return &apiError{Code: protocol.CodeUnavailable, Err: err, Message: fmt.Sprintf(
		"storing the object failed (ack policy of group %s not met); nothing was acknowledged, %s", group, then)}
}

// saturatedRetryAfter is the Retry-After of a push refused for want of a
// write slot: the client has waited limits.write_slot_wait already.
const saturatedRetryAfter = time.Second

// fullStores names the stores whose failure in err (the fan-out's
// "<store>: <cause>" errors, joined) is a full disk or an exceeded quota.
func fullStores(err error) []string {
	full := func(e error) bool { return errors.Is(e, syscall.ENOSPC) || errors.Is(e, syscall.EDQUOT) }
	var names []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if full(e) {
				name, _, _ := strings.Cut(e.Error(), ": ")
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 && full(err) {
		names = append(names, "(unnamed)")
	}
	return names
}
