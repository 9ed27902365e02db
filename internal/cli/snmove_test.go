package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/sshkeys"
)

// snmoveEnv is a pool in SQLite whose compute nodes are fake SSH nodes on
// loopback addresses 127.0.1.N, all on one port.
type snmoveEnv struct {
	dsn, keyDir, knownHosts string
	port                    int
	nodes                   map[string]*nodecfgtest.Node
	store                   *pool.Store
}

// newSnmoveEnv makes members mn1 (127.0.0.2), sn1 (.3), sn2 (.4) on
// network lo (127.0.0.0/16, gateway 127.0.0.254) and n nodes cn01..
// (127.0.1.1..) with lists alternating [sn1 sn2] and [sn2 mn1]. Nodes
// whose index is in stall never answer SSH. With ssh false no SSH nodes
// are started.
func newSnmoveEnv(t *testing.T, n int, ssh bool, stall ...int) *snmoveEnv {
	t.Helper()
	ctx := context.Background()
	e := &snmoveEnv{dsn: "sqlite:" + filepath.Join(t.TempDir(), "pool.db"), keyDir: filepath.Join(t.TempDir(), "keys"), nodes: map[string]*nodecfgtest.Node{}}
	s, err := pool.Open(ctx, e.dsn, pool.WithMigrate(), pool.WithSelf("mn1"), pool.WithLoopbackNetworks())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	e.store = s
	a := netip.MustParseAddr
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "lo", Prefix: netip.MustParsePrefix("127.0.0.0/16"), Gateways: []netip.Addr{a("127.0.0.254")}, Domain: "cluster"}, false))
	_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"lo": a("127.0.0.2")}}})
	require.NoError(t, err)
	for i, sn := range []string{"sn1", "sn2"} {
		require.NoError(t, s.AddMember(ctx, pool.Member{Name: sn, Services: service.All(), Addresses: map[string]netip.Addr{"lo": netip.AddrFrom4([4]byte{127, 0, 0, byte(3 + i)})}}, false))
	}
	var nodes []pool.Node
	for i := 0; i < n; i++ {
		list := []string{"sn1", "sn2"}
		if i%2 == 1 {
			list = []string{"sn2", "mn1"}
		}
		nodes = append(nodes, pool.Node{Name: fmt.Sprintf("cn%02d", i+1), IP: netip.AddrFrom4([4]byte{127, 0, 1 + byte(i/250), byte(1 + i%250)}), Network: "lo", ServiceNodes: list})
	}
	require.NoError(t, s.AddNodes(ctx, nodes, pool.AddOptions{}))
	if !ssh {
		return e
	}
	_, err = sshkeys.Init(ctx, e.keyDir, sshkeys.Options{})
	require.NoError(t, err)
	signer, err := sshkeys.Signer(ctx, e.keyDir, sshkeys.KindPool)
	require.NoError(t, err)
	var kh bytes.Buffer
	for i, nd := range nodes {
		mode := nodecfgtest.OK
		for _, s := range stall {
			if s == i {
				mode = nodecfgtest.Stall
			}
		}
		listen := nd.IP.String() + ":" + strconv.Itoa(e.port)
		fn := nodecfgtest.Start(t, signer.PublicKey(), mode, listen)
		if e.port == 0 {
			_, p, _ := net.SplitHostPort(fn.Addr)
			e.port, _ = strconv.Atoi(p)
		}
		e.nodes[nd.Name] = fn
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(fn.Addr)}, fn.HostKey) + "\n")
	}
	e.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(e.knownHosts, kh.Bytes(), 0o600))
	return e
}

func (e *snmoveEnv) args(extra ...string) []string {
	return append([]string{"--db", e.dsn, "--self", "mn1", "--key-dir", e.keyDir, "--known-hosts", e.knownHosts,
		"--ssh-port", strconv.Itoa(e.port), "--node-root", "fsroot", "--timeout", "3s"}, extra...)
}

func (e *snmoveEnv) lists(t *testing.T) map[string]string {
	t.Helper()
	nodes, err := e.store.Nodes(context.Background())
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range nodes {
		out[n.Name] = strings.Join(n.ServiceNodes, ",")
	}
	return out
}

func snmove(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Snmove(context.Background(), args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func nodeFile(t *testing.T, n *nodecfgtest.Node, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Home, "fsroot", rel))
	require.NoError(t, err)
	return string(b)
}

func TestSnmoveMovesAndReconfiguresNodes(t *testing.T) {
	e := newSnmoveEnv(t, 4, true)
	code, out, errOut := snmove(t, e.args("-s", "sn1")...)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, map[string]string{"cn01": "sn2,sn1", "cn02": "sn2,mn1", "cn03": "sn2,sn1", "cn04": "sn2,mn1"}, e.lists(t))
	t.Logf("snmove -s sn1:\n%s", out)
	require.Contains(t, out, "cn01  moved   sn1,sn2 -> sn2,sn1  changed")
	require.Contains(t, out, "tftpserver 127.0.0.3->127.0.0.4")
	require.Contains(t, out, "moved 2 nodes, 0 unchanged, 0 without a usable target, 0 failed; reconfigured 2 nodes, 0 failed\n")
	for _, name := range []string{"cn01", "cn03"} {
		n := e.nodes[name]
		resolv := nodeFile(t, n, "etc/resolv.conf")
		require.Contains(t, resolv, "# Generated by mnpool for node "+name+" (servicenodes sn2,sn1)")
		require.Contains(t, resolv, "\nsearch cluster\nnameserver 127.0.0.4\nnameserver 127.0.0.3\n")
		require.Equal(t, "127.0.0.254\n", nodeFile(t, n, "etc/mnpool/default-route"))
		require.Contains(t, n.Calls(t), "systemctl try-restart chronyd.service\n")
	}
	for _, name := range []string{"cn02", "cn04"} {
		require.Zero(t, e.nodes[name].Execs(), "%s did not move and is not touched", name)
	}
	// The reconfiguration is nodecfg.Reconfigure's: it leaves its audit
	// record.
	log, err := e.store.AuditLog(context.Background(), 10)
	require.NoError(t, err)
	require.Equal(t, nodecfg.AuditAction, log[0].Action)
	require.Contains(t, log[0].Detail, `"reconfigured":2`)

	// Again: nothing to do, nothing pushed.
	execs := e.nodes["cn01"].Execs()
	code, out, _ = snmove(t, e.args("-s", "sn1")...)
	require.Equal(t, 0, code)
	require.Equal(t, "NODE  STATUS  SERVICENODES  NODE CONFIG  DETAIL\nmoved 0 nodes, 0 unchanged, 0 without a usable target, 0 failed; reconfigured 0 nodes, 0 failed\n", out)
	require.Equal(t, execs, e.nodes["cn01"].Execs())

	// With an explicit destination, nodes already on it are pushed again
	// (how a failed reconfiguration is retried); nothing on them changes.
	code, out, _ = snmove(t, e.args("cn01", "-d", "sn2")...)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "cn01  unchanged  sn2,sn1       up to date   already served by sn2")
	require.Greater(t, e.nodes["cn01"].Execs(), execs)
}

func TestSnmoveDryRunJSON(t *testing.T) {
	e := newSnmoveEnv(t, 4, false)
	before := e.lists(t)
	code, out, errOut := snmove(t, "--db", e.dsn, "cn[01-02]", "cn03", "-d", "mn1", "-D", "127.0.0.2", "--dry-run", "--json")
	require.Equal(t, 0, code, errOut)
	var got struct {
		Move struct {
			DryRun     bool   `json:"dry_run"`
			TargetAddr string `json:"target_addr"`
			Nodes      []struct {
				Node   string   `json:"node"`
				Status string   `json:"status"`
				New    []string `json:"new"`
			} `json:"nodes"`
		} `json:"move"`
		NodeCfg []any `json:"nodecfg"`
		Summary struct {
			Planned         int  `json:"planned"`
			ReconfigSkipped bool `json:"reconfig_skipped"`
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.True(t, got.Move.DryRun)
	require.Equal(t, "127.0.0.2", got.Move.TargetAddr)
	require.Equal(t, 3, got.Summary.Planned)
	require.True(t, got.Summary.ReconfigSkipped)
	require.Empty(t, got.NodeCfg)
	require.Equal(t, []string{"mn1", "sn2", "sn1"}, got.Move.Nodes[0].New)
	require.Equal(t, before, e.lists(t), "a dry run changes nothing")
}

func TestSnmoveReportsNodeThatTimesOut(t *testing.T) {
	e := newSnmoveEnv(t, 4, true, 2) // cn03 never answers
	start := time.Now()
	code, out, errOut := snmove(t, e.args("-s", "sn1", "--timeout", "1s")...)
	require.Equal(t, 1, code, out)
	require.Less(t, time.Since(start), testenv.Timeout(20*time.Second))
	require.Contains(t, errOut, "snmove: 1 of 2 nodes not done (failed 0, no usable target 0, not reconfigured 1)")
	require.Regexp(t, `cn03  moved   sn1,sn2 -> sn2,sn1  failed .*node timed out`, out)
	require.Contains(t, out, "reconfigured 1 nodes, 1 failed")
	require.Equal(t, "sn2,sn1", e.lists(t)["cn03"], "the database move stands")
}

func TestSnmoveErrors(t *testing.T) {
	e := newSnmoveEnv(t, 2, false)
	ctx := context.Background()
	require.NoError(t, e.store.AddMember(ctx, pool.Member{Name: "sn3", Disabled: true, Services: service.All(), Addresses: map[string]netip.Addr{"lo": netip.MustParseAddr("127.0.0.5")}}, false))
	before := e.lists(t)
	for name, c := range map[string]struct {
		args []string
		code int
		want string
	}{
		"nothing selected":   {[]string{"-d", "sn2"}, 2, "give a NODERANGE or -s SOURCE"},
		"bad -D":             {[]string{"-s", "sn1", "-d", "sn2", "-D", "sn2"}, 2, `-D "sn2" is not an IP address`},
		"-D without -d":      {[]string{"-s", "sn1", "-D", "127.0.0.4"}, 2, "-D needs -d DEST"},
		"-D not dest's":      {[]string{"-s", "sn1", "-d", "sn2", "-D", "127.0.0.3", "-i"}, 2, "127.0.0.3 is not an address of sn2"},
		"disabled dest":      {[]string{"-s", "sn1", "-d", "sn3", "-i"}, 1, "move target is not usable: sn3 is disabled; force"},
		"unknown node":       {[]string{"cn99", "-d", "sn2", "-i"}, 2, "unknown nodes or groups: cn99"},
		"unknown flag":       {[]string{"-s", "sn1", "-x"}, 2, "unknown shorthand flag: 'x'"},
		"no key for pushing": {[]string{"-s", "sn1", "--key-dir", t.TempDir(), "--no-host-key-check"}, 1, "loading the pool SSH key"},
		"no known_hosts":     {[]string{"-s", "sn1", "--known-hosts", "/nonexistent/kh"}, 1, "no known_hosts file among /nonexistent/kh"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--db", e.dsn}, c.args...)
			if name == "no known_hosts" {
				_, err := sshkeys.Init(ctx, e.keyDir, sshkeys.Options{})
				require.NoError(t, err)
				args = append(args, "--key-dir", e.keyDir)
			}
			code, out, errOut := snmove(t, args...)
			require.Equal(t, c.code, code, "stdout %s", out)
			require.Contains(t, errOut, c.want)
			require.Equal(t, before, e.lists(t), "nothing written")
		})
	}
	// Forced, the disabled member takes the nodes.
	code, out, errOut := snmove(t, "--db", e.dsn, "-s", "sn1", "-d", "sn3", "-f", "-i")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "nodes not reconfigured (-i)")
	require.Equal(t, "sn3,sn2,sn1", e.lists(t)["cn01"])
}

// TestSnmoveProgressOnlyOnATerminal runs a long move with stderr on a
// pseudo-terminal and once more with stderr in a buffer.
func TestSnmoveProgressOnlyOnATerminal(t *testing.T) {
	e := newSnmoveEnv(t, 600, false)
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	read := make(chan string)
	go func() {
		b, _ := io.ReadAll(ptmx)
		read <- string(b)
	}()
	var out bytes.Buffer
	code := cli.Snmove(context.Background(), []string{"--db", e.dsn, "-s", "sn1", "-i"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: tty})
	tty.Close()
	require.Equal(t, 0, code, out.String())
	require.Contains(t, <-read, "moving")
	require.Contains(t, out.String(), "moved 300 nodes")

	code, stdout, stderr := snmove(t, "--db", e.dsn, "-s", "sn2", "-i")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "moved 600 nodes")
	require.Empty(t, stderr, "no progress bar when stderr is not a terminal")
}

// TestSnmoveUsesPublishedLiveness publishes an observer's judgement that
// sn1 is dead (as the agents do) and checks that snmove acts on it.
func TestSnmoveUsesPublishedLiveness(t *testing.T) {
	e := newSnmoveEnv(t, 2, false)
	ctx := context.Background()
	now := time.Now()
	obs, err := liveness.NewObserver(liveness.Config{SuspectAfter: time.Second, DeadAfter: 2 * time.Second}, liveness.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	hb := &pool.Heartbeater{Store: e.store, Member: "mn1", Observer: obs}
	_, err = hb.Beat(ctx)
	require.NoError(t, err)
	now = now.Add(3 * time.Second)
	_, err = e.store.Heartbeat(ctx, "sn2")
	require.NoError(t, err)
	_, err = hb.Beat(ctx)
	require.NoError(t, err)
	v, err := e.store.PublishedView(ctx)
	require.NoError(t, err)
	require.Equal(t, liveness.Dead, v.LiveState("sn1"))
	require.Equal(t, liveness.Alive, v.LiveState("sn2"))

	// A NODERANGE without -d moves only the nodes whose first member is
	// not usable.
	code, out, errOut := snmove(t, "--db", e.dsn, "cn01,cn02", "-i")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "cn01  moved      sn1,sn2 -> sn2,sn1")
	require.Contains(t, out, "cn02  unchanged  sn2,mn1")
	// A dead destination is refused.
	code, _, errOut = snmove(t, "--db", e.dsn, "-s", "sn2", "-d", "sn1", "-i")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "sn1 is dead")
}
