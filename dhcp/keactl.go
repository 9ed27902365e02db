package dhcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// KeaResponse is Kea's answer to a control command.
type KeaResponse struct {
	Result    int             `json:"result"`
	Text      string          `json:"text"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// KeaCommand sends command (with args, when not nil) to the Kea control
// socket at path and returns the answer. A result other than 0 is an
// error carrying Kea's text. Without a deadline on ctx it waits at most
// 30 seconds.
func KeaCommand(ctx context.Context, path, command string, args any) (KeaResponse, error) {
	var resp KeaResponse
	req := map[string]any{"command": command}
	if args != nil {
		req["arguments"] = args
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("dhcp: kea %s: %w", command, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return resp, fmt.Errorf("dhcp: kea %s: %w", command, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(msg); err != nil {
		return resp, fmt.Errorf("dhcp: kea %s via %s: %w", command, path, err)
	}
	// Kea answers with one JSON object and closes the connection.
	data, err := io.ReadAll(conn)
	if err != nil && !(errors.Is(err, net.ErrClosed) && len(data) > 0) {
		if ctx.Err() != nil {
			return resp, fmt.Errorf("dhcp: kea %s via %s: %w", command, path, ctx.Err())
		}
		return resp, fmt.Errorf("dhcp: kea %s via %s: %w", command, path, err)
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return resp, fmt.Errorf("dhcp: kea %s via %s: bad answer %q: %w", command, path, truncate(string(data), 200), err)
	}
	if resp.Result != 0 {
		return resp, fmt.Errorf("dhcp: kea %s via %s: result %d: %s", command, path, resp.Result, resp.Text)
	}
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
