package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dispatch/sshfarm/farmcluster"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// buildMnpool builds the mnpool binary that members run as relay.
func buildMnpool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mnpool")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mnpool/mnpool/cmd/mnpool").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func startCluster(t *testing.T, o farmcluster.Options) *farmcluster.Cluster {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	cl, err := farmcluster.Start(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// xdsh runs mnpool xdsh as member self on the cluster.
func xdsh(t *testing.T, cl *farmcluster.Cluster, self string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Mnpool(context.Background(), append(cl.XdshArgs(self), args...), cli.IO{In: strings.NewReader("stdin must not reach nodes\n"), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

type xdshOut struct {
	Results []struct {
		Node      string `json:"node"`
		Kind      string `json:"kind"`
		Via       string `json:"via"`
		Stdout    string `json:"stdout"`
		ExitCode  int    `json:"exit_code"`
		Error     string `json:"error"`
		ErrorKind string `json:"error_kind"`
	} `json:"results"`
	Summary struct {
		Total, OK, Failed, Unreachable int
	} `json:"summary"`
}

func xdshJSON(t *testing.T, cl *farmcluster.Cluster, self string, wantCode int, args ...string) xdshOut {
	t.Helper()
	code, out, errs := xdsh(t, cl, self, append([]string{"--json"}, args...)...)
	require.Equal(t, wantCode, code, "stderr: %s", errs)
	var o xdshOut
	require.NoError(t, json.Unmarshal([]byte(out), &o), out)
	return o
}

// vias maps node to the member it went through.
func (o xdshOut) vias() map[string]string {
	m := map[string]string{}
	for _, r := range o.Results {
		m[r.Node] = r.Via
	}
	return m
}

func TestXdshDirectOutputAndExitCodes(t *testing.T) {
	cl := startCluster(t, farmcluster.Options{Nodes: 4, Members: []string{"mn1", "sn1"}})
	code, out, errs := xdsh(t, cl, "mn1", "cn[00001-00004]", "-f", "2", "--", "echo", "hello;", "echo", "two")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "", errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.ElementsMatch(t, []string{"cn00001: hello", "cn00001: two", "cn00002: hello", "cn00002: two",
		"cn00003: hello", "cn00003: two", "cn00004: hello", "cn00004: two"}, lines)
	// A node's lines are together (held until the node is done).
	for i := 0; i < len(lines); i += 2 {
		require.Equal(t, strings.Split(lines[i], ":")[0], strings.Split(lines[i+1], ":")[0])
	}

	// One node fails: exit status 1 and the count on stderr; -z shows it.
	code, out, errs = xdsh(t, cl, "mn1", "compute", "-z", "--", `case $SSH_CONNECTION in *" 127.1.0.2 "*) echo bad >&2; exit 7;; esac`)
	require.Equal(t, 1, code)
	require.Contains(t, out, "cn00002: exit status 7\n")
	require.Contains(t, out, "cn00001: exit status 0\n")
	require.Contains(t, errs, "cn00002: bad\n")
	require.Contains(t, errs, "1 of 4 nodes failed: 1 exited non-zero, 0 could not run the command")

	// A node nobody answers for is unreachable, not fatal to the others.
	s, err := pool.Open(context.Background(), cl.DB)
	require.NoError(t, err)
	require.NoError(t, s.AddNodes(context.Background(), []pool.Node{{Name: "ghost", IP: mustIP("127.1.250.1"), Network: "lo", ServiceNodes: []string{"mn1", "sn1"}, Manual: true}}, pool.AddOptions{}))
	s.Close()
	o := xdshJSON(t, cl, "mn1", 1, "cn00001,ghost", "--", "true")
	require.Equal(t, 2, o.Summary.Total)
	require.Equal(t, 1, o.Summary.Unreachable)
	for _, r := range o.Results {
		if r.Node == "ghost" {
			require.Equal(t, "connect", r.ErrorKind)
			require.Equal(t, -1, r.ExitCode)
		}
	}
	code, _, errs = xdsh(t, cl, "mn1", "ghost", "-Q", "--", "true")
	require.Equal(t, 1, code)
	require.NotContains(t, errs, "ghost:", "-Q drops the per-node error line")
	require.Contains(t, errs, "1 of 1 nodes failed")
}

func TestXdshScriptEnvTimeoutAndStdin(t *testing.T) {
	cl := startCluster(t, farmcluster.Options{Nodes: 2, Members: []string{"mn1", "sn1"}, NodeBase: mustIP("127.1.1.1"), MemberBase: mustIP("127.2.1.1")})
	dir := t.TempDir()
	script := filepath.Join(dir, "fix.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"$SITE:$1:$2\"\n"), 0o755))
	envFile := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(envFile, []byte("# site\nexport SITE='lab 1'\n"), 0o600))
	code, out, errs := xdsh(t, cl, "mn1", "compute", "-e", script, "-E", envFile, "--", "a b", "c")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "cn00001: lab 1:a b:c\ncn00002: lab 1:a b:c\n", sortLines(out))

	// A command that reads stdin reads end of file: our stdin is not sent.
	code, out, _ = xdsh(t, cl, "mn1", "cn00001", "--", "cat; echo end")
	require.Equal(t, 0, code)
	require.Equal(t, "cn00001: end\n", out)

	start := time.Now()
	code, _, errs = xdsh(t, cl, "mn1", "compute", "-t", "1", "--", `case $SSH_CONNECTION in *" 127.1.1.2 "*) sleep 30;; esac`)
	require.Equal(t, 1, code)
	require.Less(t, time.Since(start), 20*time.Second)
	require.Contains(t, errs, "cn00002: node timed out")
	require.Contains(t, errs, "1 of 2 nodes failed: 0 exited non-zero, 1 could not run the command")
}

func sortLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sortStrings(l)
	return strings.Join(l, "\n") + "\n"
}

func sortStrings(l []string) {
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
}

func TestXdshBadCommandLines(t *testing.T) {
	cl := startCluster(t, farmcluster.Options{Nodes: 1, Members: []string{"mn1", "sn1"}, NodeBase: mustIP("127.1.2.1"), MemberBase: mustIP("127.2.2.1")})
	cases := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"empty noderange", []string{"", "--", "true"}, 2, "noderange is empty"},
		{"unknown node", []string{"cn00001,cn99999", "--", "true"}, 2, "cn99999"},
		{"fanout 0", []string{"cn00001", "-f", "0", "--", "true"}, 2, "-f 0: want 1 to"},
		{"missing script", []string{"cn00001", "-e", "/nonexistent/fix.sh"}, 2, "/nonexistent/fix.sh"},
		{"no command", []string{"cn00001"}, 2, "no command"},
		{"no noderange", []string{}, 2, "Usage"},
		{"bad via", []string{"cn00001", "--via", "sn", "--", "true"}, 2, `"sn" is not a member`},
		{"timeout 0", []string{"cn00001", "-t", "0", "--", "true"}, 2, "-t 0"},
		{"bad env file", []string{"cn00001", "-E", "/etc/hostname", "--", "true"}, 2, "NAME=VALUE"},
		{"bad user", []string{"cn00001", "-l", "root;reboot", "--", "true"}, 2, `"root;reboot"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := xdsh(t, cl, "mn1", c.args...)
			require.Equal(t, c.code, code, "stderr: %s", errs)
			require.Contains(t, errs, c.mention)
			require.Empty(t, out)
		})
	}
	t.Setenv("DSH_FANOUT", "zero")
	code, _, errs := xdsh(t, cl, "mn1", "cn00001", "--", "true")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `DSH_FANOUT="zero"`)
}

func TestXdshRoutingViaMembers(t *testing.T) {
	bin := buildMnpool(t)
	// Even nodes are served by sn1, odd ones by sn10: names must match
	// exactly, never as prefixes.
	sns := func(i int) []string {
		if i%2 == 0 {
			return []string{"sn1", "mn1"}
		}
		return []string{"sn10", "mn1"}
	}
	cl := startCluster(t, farmcluster.Options{Nodes: 6, Members: []string{"mn1", "sn1", "sn10", "sn2"}, ServiceNodes: sns, Mnpool: bin,
		NodeBase: mustIP("127.1.3.1"), MemberBase: mustIP("127.2.3.1")})
	o := xdshJSON(t, cl, "mn1", 0, "compute,sn10", "--", "echo $SSH_CONNECTION")
	require.Equal(t, map[string]string{"cn00001": "sn1", "cn00002": "sn10", "cn00003": "sn1", "cn00004": "sn10", "cn00005": "sn1", "cn00006": "sn10", "sn10": ""}, o.vias())
	for _, r := range o.Results {
		require.Contains(t, r.Stdout, " 127.", r.Node)
	}

	// --via direct: everything from here; --via sn2: everything through sn2.
	o = xdshJSON(t, cl, "mn1", 0, "compute", "--via", "direct", "--", "true")
	for n, v := range o.vias() {
		require.Equal(t, "", v, n)
	}
	o = xdshJSON(t, cl, "mn1", 0, "compute,mn1", "--via", "sn2", "--", "true")
	for n, v := range o.vias() {
		require.Equal(t, "sn2", v, n)
	}
	// Two hops: sn1 relays to sn2, which runs the nodes.
	o = xdshJSON(t, cl, "mn1", 0, "compute", "--via", "sn1,sn2", "--", "uname -n")
	require.Equal(t, 6, o.Summary.OK)
	for n, v := range o.vias() {
		require.Equal(t, "sn1", v, n)
	}
	// Run on sn1, the nodes sn1 serves run from sn1 itself.
	o = xdshJSON(t, cl, "sn1", 0, "cn00001,cn00002", "--", "true")
	require.Equal(t, map[string]string{"cn00001": "", "cn00002": "sn10"}, o.vias())

	// An SN runs a command on the MN (with the pool key).
	code, out, errs := xdsh(t, cl, "sn2", "mn1", "--", "echo on-mn")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "mn1: on-mn\n", out)
}

func TestXdshDeadServiceNode(t *testing.T) {
	bin := buildMnpool(t)
	sns := func(i int) []string {
		switch i {
		case 0:
			return []string{"sn1", "sn2"} // sn1 dead: fails over to sn2
		case 1:
			return []string{"sn1", "mn1"} // sn1 dead: mn1 (here) runs it
		default:
			return []string{"sn1", "sn3"} // every member dead: run from here
		}
	}
	cl := startCluster(t, farmcluster.Options{Nodes: 3, Members: []string{"mn1", "sn1", "sn2", "sn3"}, ServiceNodes: sns, Mnpool: bin,
		NodeBase: mustIP("127.1.4.1"), MemberBase: mustIP("127.2.4.1")})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// mn1 and sn2 heartbeat and publish; sn1 and sn3 are silent.
	for _, self := range []string{"mn1", "sn2"} {
		runAsync(ctx, &wg, cl.DB, "--self", self, "heartbeat", "--interval", "20ms", "--publish", "--suspect", "300ms", "--dead", "600ms")
	}
	require.Eventually(t, func() bool {
		s, err := pool.Open(context.Background(), cl.DB)
		if err != nil {
			return false
		}
		defer s.Close()
		v, err := s.PublishedView(context.Background())
		return err == nil && v.LiveState("sn1") == liveness.Dead && v.LiveState("sn3") == liveness.Dead && v.LiveState("sn2") == liveness.Alive
	}, 20*time.Second, 50*time.Millisecond)
	o := xdshJSON(t, cl, "mn1", 0, "compute", "--", "true")
	require.Equal(t, map[string]string{"cn00001": "sn2", "cn00002": "", "cn00003": ""}, o.vias())
}

func TestXdshCollateAndXdshbak(t *testing.T) {
	cl := startCluster(t, farmcluster.Options{Nodes: 4, Members: []string{"mn1", "sn1"}, NodeBase: mustIP("127.1.5.1"), MemberBase: mustIP("127.2.5.1")})
	cmd := `case $SSH_CONNECTION in *" 127.1.5.4 "*) echo odd; exit 3;; esac; echo same`
	code, out, _ := xdsh(t, cl, "mn1", "compute", "--collate", "--", cmd)
	require.Equal(t, 1, code)
	require.Contains(t, out, "HOSTS ")
	require.Contains(t, out, "\ncn[00001-00003]\n")
	require.Contains(t, out, "\ncn00004 (exit status 3)\n")

	// -s changes nothing for --collate: whole results are grouped.
	code, out2, _ := xdsh(t, cl, "mn1", "compute", "--collate", "-s", "--", cmd)
	require.Equal(t, 1, code)
	require.Equal(t, out, out2)

	code, plain, _ := xdsh(t, cl, "mn1", "compute", "--", cmd)
	require.Equal(t, 1, code)
	var bak bytes.Buffer
	code = cli.Mnpool(context.Background(), []string{"xdshbak", "-c"}, cli.IO{In: strings.NewReader(plain), Out: &bak, Err: &bytes.Buffer{}})
	require.Equal(t, 0, code)
	require.Equal(t, "HOSTS -------------------------------------------------------------------------\ncn[00001-00003]\n"+
		"-------------------------------------------------------------------------------\nsame\n\n"+
		"HOSTS -------------------------------------------------------------------------\ncn00004\n"+
		"-------------------------------------------------------------------------------\nodd\n\n", bak.String())
	bak.Reset()
	code = cli.Mnpool(context.Background(), []string{"xdshbak", "-x"}, cli.IO{In: strings.NewReader("b: 2\na: 1\nb: 3\n"), Out: &bak, Err: &bytes.Buffer{}})
	require.Equal(t, 0, code)
	require.Equal(t, "a: 1\nb: 2\nb: 3\n", bak.String())
	var errb bytes.Buffer
	bak.Reset()
	code = cli.Mnpool(context.Background(), []string{"xdshbak"}, cli.IO{In: strings.NewReader("a: 1\nnoise\n"), Out: &bak, Err: &errb})
	require.Equal(t, 1, code)
	require.Equal(t, "HOST: a\n-------\n1\n\n", bak.String())
	require.Contains(t, errb.String(), `"noise"`)
}

func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestXdshUnreachableMember: a member nothing answers for. With auto
// routing its nodes run from here; an explicit --via is obeyed and fails.
func TestXdshUnreachableMember(t *testing.T) {
	sns := func(int) []string { return []string{"sn9", "mn1"} }
	cl := startCluster(t, farmcluster.Options{Nodes: 2, Members: []string{"mn1", "sn9"}, ServiceNodes: sns,
		NodeBase: mustIP("127.1.7.1"), MemberBase: mustIP("127.2.7.1"), External: map[string]netip.Addr{"sn9": mustIP("127.9.9.9")}})
	o := xdshJSON(t, cl, "mn1", 0, "compute", "--connect-timeout", "5s", "--", "true")
	require.Equal(t, map[string]string{"cn00001": "", "cn00002": ""}, o.vias())
	o = xdshJSON(t, cl, "mn1", 1, "compute", "--via", "sn9", "--", "true")
	require.Equal(t, 2, o.Summary.Unreachable)
	for _, r := range o.Results {
		require.Equal(t, "relay", r.ErrorKind, r.Error)
		require.Equal(t, "sn9", r.Via)
	}
}
