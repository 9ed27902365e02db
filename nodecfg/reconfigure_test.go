package nodecfg_test

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pooltest"
	"github.com/mnpool/mnpool/sshkeys"
)

// loopbackPool is a pool on 127.42.0.0/16 with six nodes cn0001..cn0006
// at 127.42.1.1..6; cn0002 and cn0005 are first on sn1.
func loopbackPool(t *testing.T) *pooltest.Pool {
	return pooltest.New(t, pooltest.WithPrefix(netip.MustParsePrefix("127.42.0.0/16")), pooltest.WithNodes(6))
}

// freePort returns a port free on ip.
func freePort(t *testing.T, ip string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// poolKeyPusher builds the pusher as snmove and the agent do: the pool key
// from an sshkeys directory, host keys from a known_hosts file naming the
// fake nodes.
func poolKeyPusher(t *testing.T, port int, nodes ...*nodecfgtest.Node) (*nodecfg.SSH, ssh.PublicKey) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	_, err := sshkeys.Init(ctx, dir, sshkeys.Options{})
	require.NoError(t, err)
	signer, err := sshkeys.Signer(ctx, dir, sshkeys.KindPool)
	require.NoError(t, err)
	var lines []string
	for _, n := range nodes {
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(n.Addr)}, n.HostKey))
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	p, err := nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: dir, KnownHosts: []string{kh}, Port: port, Root: root, Apply: true})
	require.NoError(t, err)
	return p, signer.PublicKey()
}

func moveSN1(t *testing.T, p *pooltest.Pool) *pool.MoveResult {
	res, err := p.Store.Move(context.Background(), pool.MoveRequest{Source: "sn1"})
	require.NoError(t, err)
	require.Equal(t, []string{"cn0002", "cn0005"}, nodecfg.MovedNodes(res))
	return res
}

func lastAudit(t *testing.T, s *pool.Store) (pool.AuditEntry, nodecfg.AuditDetail) {
	entries, err := s.AuditLog(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, nodecfg.AuditAction, entries[0].Action)
	var d nodecfg.AuditDetail
	require.NoError(t, json.Unmarshal([]byte(entries[0].Detail), &d))
	return entries[0], d
}

func TestReconfigureReportsUnreachableNodesAndAudits(t *testing.T) {
	p := loopbackPool(t)
	port := freePort(t, "127.42.1.2")
	// A key is needed before the node starts; the node is given it below.
	client := nodecfgtest.NewKey(t)
	ok := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, net.JoinHostPort("127.42.1.2", strconv.Itoa(port)))
	pusher, _ := poolKeyPusher(t, port, ok)
	pusher.Auth = []ssh.AuthMethod{ssh.PublicKeys(client)}
	// cn0005 (127.42.1.5) has nothing listening: connection refused.
	res := moveSN1(t, p)
	var done []string
	rep, err := nodecfg.Reconfigure(context.Background(), p.Store, res, nodecfg.Options{Pusher: pusher, Timeout: 20 * time.Second,
		Done: func(r nodecfg.Result) { done = append(done, r.Node) }})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Nodes)
	require.Equal(t, 1, rep.Reconfigured)
	require.Equal(t, 1, rep.Failed)
	require.Equal(t, 1, rep.Unreachable)
	require.ElementsMatch(t, []string{"cn0002", "cn0005"}, done)
	require.Equal(t, "cn0002", rep.Results[0].Node)
	require.NoError(t, rep.Results[0].Err)
	require.ErrorIs(t, rep.Results[1].Err, nodecfg.ErrConnect)
	require.True(t, nodecfg.Unreachable(rep.Results[1].Err))
	b, err := os.ReadFile(filepath.Join(ok.Home, root, "etc/resolv.conf"))
	require.NoError(t, err)
	require.Contains(t, string(b), "nameserver 127.42.0.3", "cn0002 now points at sn2 first")
	require.Contains(t, ok.Calls(t), "ip route replace default via 127.42.0.254")

	e, d := lastAudit(t, p.Store)
	require.Equal(t, "sn1", e.Target)
	require.Equal(t, 1, d.Unreachable)
	require.Len(t, d.Failures, 1)
	require.Equal(t, "cn0005", d.Failures[0].Node)
	require.True(t, d.Failures[0].Unreachable)
	require.Contains(t, d.Failures[0].Error, "127.42.1.5")
}

func TestReconfigureIsBoundedInTime(t *testing.T) {
	p := loopbackPool(t)
	port := freePort(t, "127.42.1.2")
	client := nodecfgtest.NewKey(t)
	// Both moved nodes accept TCP and never answer.
	n2 := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.Stall, net.JoinHostPort("127.42.1.2", strconv.Itoa(port)))
	n5 := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.Hang, net.JoinHostPort("127.42.1.5", strconv.Itoa(port)))
	pusher, _ := poolKeyPusher(t, port, n2, n5)
	pusher.Auth = []ssh.AuthMethod{ssh.PublicKeys(client)}
	res := moveSN1(t, p)
	start := time.Now()
	// The per-node timeout is far longer than the deadline: the deadline
	// is what ends the work.
	rep, err := nodecfg.Reconfigure(context.Background(), p.Store, res, nodecfg.Options{Pusher: pusher, Parallel: 1,
		Timeout: 10 * time.Minute, Deadline: time.Second})
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Minute, "ended by the deadline, not the per-node timeout")
	require.Equal(t, 2, rep.Failed)
	require.Equal(t, 2, rep.Unreachable)
	for _, r := range rep.Results {
		require.ErrorIs(t, r.Err, nodecfg.ErrTimeout, r.Node)
	}
	_, d := lastAudit(t, p.Store)
	require.Equal(t, 2, d.Failed)
	require.Len(t, d.Failures, 2)
}

func TestReconfigureNothingToDoAndBadOptions(t *testing.T) {
	p := loopbackPool(t)
	ctx := context.Background()
	res, err := p.Store.Move(ctx, pool.MoveRequest{Source: "sn1", DryRun: true})
	require.NoError(t, err)
	_, err = nodecfg.Reconfigure(ctx, p.Store, res, nodecfg.Options{})
	require.ErrorIs(t, err, nodecfg.ErrInvalid, "no pusher")
	rep, err := nodecfg.Reconfigure(ctx, p.Store, res, nodecfg.Options{Pusher: &nodecfg.SSH{}})
	require.NoError(t, err)
	require.Zero(t, rep.Nodes, "a dry run moves nothing")
	entries, err := p.Store.AuditLog(ctx, 5)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, nodecfg.AuditAction, e.Action, "nothing to record")
	}
}

func TestNewSSHNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	_, err := nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: t.TempDir(), InsecureIgnoreHostKey: true})
	require.ErrorIs(t, err, nodecfg.ErrSetup)
	require.ErrorContains(t, err, "pool SSH key")
	dir := filepath.Join(t.TempDir(), "keys")
	_, err = sshkeys.Init(ctx, dir, sshkeys.Options{})
	require.NoError(t, err)
	_, err = nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: dir, KnownHosts: []string{"/nonexistent/kh"}})
	require.ErrorIs(t, err, nodecfg.ErrSetup)
	require.ErrorContains(t, err, "no known_hosts file among /nonexistent/kh")
	_, err = nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: dir, InsecureIgnoreHostKey: true, Root: "../x"})
	require.ErrorIs(t, err, nodecfg.ErrInvalid)
	p, err := nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: dir, InsecureIgnoreHostKey: true})
	require.NoError(t, err)
	require.Len(t, p.Auth, 1)
}
