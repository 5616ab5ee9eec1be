package client

import (
	"bytes"
	"context"
	"encoding/json"
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
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: protocol.DeletePath(c.cfg.Cluster),
		header: map[string]string{"Content-Type": "application/json"},
		body:   func() (io.Reader, int64, error) { return bytes.NewReader(body), int64(len(body)), nil }})
	if err != nil {
		return res, err
	}
	return res, decodeJSON(resp, op, &res)
}
