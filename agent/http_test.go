package agent_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/agent"
)

// testToken unlocks the detail of /healthz in the tests.
const testToken = "test-token-0123456789abcdef"

// getHealthz GETs /healthz, with the bearer token when token is set.
func getHealthz(addr, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := http.Client{Timeout: 10 * time.Second}
	return cl.Do(req)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestHealthzNeedsToken: without the token /healthz says only ok or
// unhealthy; with it, the JSON detail (member, database node, members).
func TestHealthzNeedsToken(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 3, nil)
	addr := freeAddr(t)
	startAgent(t, dsn, "mn1", t.TempDir(), agent.WithTiming(fastTiming), agent.WithHTTPAddr(addr), agent.WithHTTPToken(testToken))

	var h agent.Health
	// Healthy, with the first database check and liveness sample in (an
	// agent can be OK a moment before both are filled in).
	waitFor(t, 30*time.Second, "agent healthy with database and members", func() bool {
		resp, err := getHealthz(addr, testToken)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		h = agent.Health{}
		return json.NewDecoder(resp.Body).Decode(&h) == nil && resp.StatusCode == http.StatusOK && h.OK && h.DB != nil && len(h.Members) > 0
	})
	require.Equal(t, "mn1", h.Member)
	require.NotNil(t, h.DB)
	require.NotEmpty(t, h.Members)

	for name, token := range map[string]string{"no token": "", "wrong token": "not-the-token-0123456789", "token prefix": testToken[:8]} {
		resp, err := getHealthz(addr, token)
		require.NoError(t, err, name)
		require.Equal(t, http.StatusOK, resp.StatusCode, name)
		require.Equal(t, "ok\n", body(t, resp), name)
	}
	// Other schemes do not count.
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	require.NoError(t, err)
	req.SetBasicAuth("x", testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, "ok\n", body(t, resp))
}

// TestHealthzUnhealthyWithoutDetail: an agent that cannot reach its
// database answers 503 "unhealthy", and names nothing without the token.
func TestHealthzUnhealthyWithoutDetail(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 3, nil)
	addr := freeAddr(t)
	r := startAgent(t, dsn, "mn1", t.TempDir(), agent.WithTiming(fastTiming), agent.WithHTTPAddr(addr), agent.WithHTTPToken(testToken))
	waitFor(t, 30*time.Second, "agent healthy", func() bool {
		resp, err := getHealthz(addr, "")
		return err == nil && body(t, resp) == "ok\n"
	})
	r.s.Close() // the database goes away
	waitFor(t, 30*time.Second, "agent unhealthy", func() bool {
		resp, err := getHealthz(addr, "")
		if err != nil {
			return false
		}
		return resp.StatusCode == http.StatusServiceUnavailable && body(t, resp) == "unhealthy\n"
	})
	resp, err := getHealthz(addr, testToken)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, body(t, resp), `"problems"`)
}

// TestHTTPIdleTimeout: a keep-alive connection that sends nothing more is
// closed by the server after the idle timeout.
func TestHTTPIdleTimeout(t *testing.T) {
	dsn := sqliteDSN(t)
	seedPool(t, dsn, 3, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	startAgent(t, dsn, "mn1", t.TempDir(), agent.WithTiming(fastTiming), agent.WithHTTPListener(ln),
		agent.WithHTTPTimeouts(agent.HTTPTimeouts{Idle: 500 * time.Millisecond}))

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.False(t, resp.Close, "the server keeps the connection alive after a response")

	// Nothing more is sent: the server must close the connection. The
	// deadline only bounds the test; the idle timeout is far shorter.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the idle connection was not closed by the server: %v", err)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout())
}
