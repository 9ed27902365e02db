package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
)

func TestMnpooldRejectsBadFlags(t *testing.T) {
	db := newPool(t)
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"log format":     {[]string{"--log-format", "xml"}, `--log-format "xml"`},
		"log level":      {[]string{"--log-level", "loud"}, `--log-level "loud"`},
		"dhcp format":    {[]string{"--dhcp-format", "bootp"}, `"bootp"`},
		"failover limit": {[]string{"--failover-limit", "0"}, "--failover-limit 0"},
		"negative dead":  {[]string{"--dead-after", "-1s"}, "--dead-after -1s"},
		"watch interval": {[]string{"--watch-interval", "0s"}, "--watch-interval 0s"},
		"empty reload":   {[]string{"--dhcp-reload", "  "}, "--dhcp-reload"},
		"bad self":       {[]string{"--self", "-x"}, `"-x"`},
		"argument":       {[]string{"extra"}, "unknown command"},
		"console listen": {[]string{"--console-listen", ":7200"}, "--console-listen :7200 needs --console"},
		"node parallel":  {[]string{"--node-parallel", "0"}, "--node-parallel 0"},
		"node deadline":  {[]string{"--node-deadline", "0s"}, "--node-deadline 0s"},
		"node ssh port":  {[]string{"--node-ssh-port", "70000"}, "--node-ssh-port 70000"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Mnpoold(context.Background(), append([]string{"--db", db, "--self", "sn1"}, c.args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
			require.Equal(t, 2, code, errb.String())
			require.Contains(t, errb.String(), c.want)
			require.Empty(t, out.String())
		})
	}
}

func TestMnpooldUnsafeTimingAndUnknownMember(t *testing.T) {
	db := newPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(30*time.Second))
	defer cancel()
	var errb bytes.Buffer
	code := cli.Mnpoold(ctx, []string{"--db", db, "--self", "sn1", "--dead-after", "3s", "--metrics-addr", ""}, cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
	require.Equal(t, 1, code)
	require.Contains(t, errb.String(), "dead timeout 3s")
	errb.Reset()
	code = cli.Mnpoold(ctx, []string{"--db", db, "--self", "sn7", "--metrics-addr", ""}, cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
	require.Equal(t, 2, code)
	require.Contains(t, errb.String(), "sn7 is not a member of the pool")
}

// TestMnpooldRunsAndStops runs mnpoold for sn1: it writes the role file
// and the DHCP configuration, serves /healthz and /metrics, and exits 0
// when its context ends (SIGTERM in cmd/mnpoold).
func TestMnpooldRunsAndStops(t *testing.T) {
	db := newPool(t)
	dir := t.TempDir()
	addr, dnsAddr, consoleAddr := freeTCP(t), freeTCP(t), freeTCP(t)
	pkiDir := filepath.Join(dir, "pki")
	mustRun(t, db, "--self", "sn1", "certs", "init", "--dir", pkiDir, "--ca-anywhere")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	const token = "mnpoold-test-token-0123456789"
	tokenFile := filepath.Join(dir, "http-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	done := make(chan int, 1)
	go func() {
		done <- cli.Mnpoold(ctx, []string{"--db", db, "--self", "sn1", "--root", dir, "--dhcp-config", filepath.Join(dir, "dhcpd.conf"),
			"--no-dhcp-check", "--metrics-addr", addr, "--http-token-file", tokenFile, "--heartbeat-interval", "100ms", "--log-format", "json",
			"--dns-listen", dnsAddr, "--console", "--console-listen", consoleAddr, "--console-pki-dir", pkiDir, "--console-socket", "none"},
			cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &mnpooldLog{b: &logs}})
	}()
	deadline := time.Now().Add(testenv.Timeout(20 * time.Second))
	for {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var h struct {
				OK     bool   `json:"ok"`
				Member string `json:"member"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.OK && h.Member == "sn1" {
				if _, err := os.Stat(filepath.Join(dir, "dhcpd.conf")); err == nil {
					break
				}
			}
		}
		require.True(t, time.Now().Before(deadline), "mnpoold not healthy within 20s")
		time.Sleep(50 * time.Millisecond)
	}
	_, err := os.Stat(filepath.Join(dir, "etc/xCATSN"))
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, body.String(), `mnpool_heartbeat_age_seconds{member="sn1"}`)
	// The built-in DNS server answers for the pool's members.
	var reply *mdns.Msg
	for {
		q := new(mdns.Msg)
		q.SetQuestion("sn1.cluster.", mdns.TypeA)
		reply, err = mdns.Exchange(q, dnsAddr)
		if err == nil && len(reply.Answer) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no DNS answer for sn1.cluster: %v %v", err, reply)
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, "10.0.0.2", reply.Answer[0].(*mdns.A).A.String())
	// The console broker listens.
	c, err := net.DialTimeout("tcp", consoleAddr, 2*time.Second)
	require.NoError(t, err)
	c.Close()
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(testenv.Timeout(20 * time.Second)):
		t.Fatal("mnpoold did not stop within 20s")
	}
}

func freeTCP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// mnpooldLog is a bytes.Buffer safe for the agent's goroutines.
type mnpooldLog struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *mnpooldLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestSystemdUnit checks packaging/systemd/mnpoold.service: every flag it
// and its comments use is a flag of mnpoold, and systemd-analyze (when
// installed) accepts the unit.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../packaging/systemd/mnpoold.service")
	require.NoError(t, err)
	cmd := cli.NewMnpoold(cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	seen := 0
	for _, line := range strings.Split(string(unit), "\n") {
		if !strings.HasPrefix(line, "ExecStart=") && !strings.Contains(line, "MNPOOLD_OPTS=") {
			continue
		}
		for _, w := range strings.Fields(line) {
			i := strings.Index(w, "--")
			if i < 0 {
				continue
			}
			name := w[i+2:]
			name, _, _ = strings.Cut(name, "=")
			require.NotNil(t, cmd.Flags().Lookup(name), "the unit uses --%s, which mnpoold does not have", name)
			seen++
		}
	}
	require.Greater(t, seen, 2, "no flags found in the unit")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit syntax not verified")
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "mnpoold.service")
	require.NoError(t, os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/bin/mnpoold"), []byte(exe)), 0o644))
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify: %s", out)
	require.NotContains(t, string(out), "mnpoold.service", "systemd-analyze warns about the unit: %s", out)
}
