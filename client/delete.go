package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/walgate/walgate/gateway/protocol"
)

// Delete asks the gateway to delete the cluster's older backups and the
// WAL only they needed, through its retention planner and guard rails.
// The token needs the admin scope. Without req.Confirm nothing is
// deleted and the result says what would be.
func (c *Client) Delete(ctx context.Context, req protocol.DeleteRequest) (protocol.DeleteResult, error) {
	op := "delete"
	var res protocol.DeleteResult
	body, err := json.Marshal(req)
	if err != nil {
		return res, err
	}
	r := request{op: op, method: http.MethodPost, path: protocol.DeletePath(c.cfg.Cluster),
		header: map[string]string{"Content-Type": "application/json"},
		body:   func() (io.Reader, int64, error) { return bytes.NewReader(body), int64(len(body)), nil }}
	var resp *http.Response
	if req.Confirm {
		// Not retried: the gateway may still be deleting when an answer
		// is late, and a second request would only find it busy.
		resp, err = c.once(ctx, r)
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrUnavailable {
			e.Message += "; the gateway may have deleted some or all of it: run the same delete without --confirm to see what remains"
		}
	} else {
		resp, err = c.do(ctx, r)
	}
	if err != nil {
		return res, err
	}
	return res, decodeJSON(resp, op, &res)
}
