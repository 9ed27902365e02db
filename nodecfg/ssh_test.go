package nodecfg_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
)

// root is where the pusher writes, relative to the fake node's login
// directory.
const root = "fsroot"

func testFiles(gw string) []nodecfg.File {
	return []nodecfg.File{
		{Kind: nodecfg.KindResolv, Data: []byte("search cluster\nnameserver 10.0.0.3\nnameserver 10.0.0.2\n")},
		{Kind: nodecfg.KindChrony, Data: []byte("server 10.0.0.3 iburst\nserver 10.0.0.2 iburst\n")},
		{Kind: nodecfg.KindSyslog, Data: []byte("*.* @@10.0.0.3\n")},
		{Kind: nodecfg.KindRoute, Data: []byte(gw + "\n")},
	}
}

func pusher(client ssh.Signer, apply bool, nodes ...*nodecfgtest.Node) *nodecfg.SSH {
	return &nodecfg.SSH{
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: fixedHostKeys(nodes...),
		Root:            root,
		Apply:           apply,
	}
}

// fixedHostKeys accepts exactly the host keys of nodes, by address.
func fixedHostKeys(nodes ...*nodecfgtest.Node) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		for _, n := range nodes {
			if n.Addr == hostname {
				return ssh.FixedHostKey(n.HostKey)(hostname, remote, key)
			}
		}
		return ssh.FixedHostKey(nil)(hostname, remote, key)
	}
}

func readNodeFile(t *testing.T, n *nodecfgtest.Node, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Home, root, rel))
	require.NoError(t, err)
	return string(b)
}

func TestSSHPushWritesAtomicallyAndReportsChanges(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	p := pusher(client, true, n)
	ctx := context.Background()
	files := testFiles("10.0.0.4")

	r := p.Push(ctx, nodecfg.Target{Node: "cn001", Addr: n.Addr}, files)
	require.NoError(t, r.Err)
	require.True(t, r.Changed)
	require.Equal(t, []nodecfg.FileResult{{Kind: "resolv", Changed: true}, {Kind: "chrony", Changed: true}, {Kind: "syslog", Changed: true}, {Kind: "route", Changed: true}}, r.Files)
	require.Equal(t, string(files[0].Data), readNodeFile(t, n, "etc/resolv.conf"))
	require.Equal(t, string(files[1].Data), readNodeFile(t, n, "etc/chrony.conf"))
	require.Equal(t, string(files[2].Data), readNodeFile(t, n, "etc/rsyslog.d/mnpool.conf"))
	require.Equal(t, "10.0.0.4\n", readNodeFile(t, n, "etc/mnpool/default-route"))
	fi, err := os.Stat(filepath.Join(n.Home, root, "etc/resolv.conf"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	// Changed files were applied.
	require.Equal(t, strings.Join([]string{
		"systemctl cat chronyd.service",
		"systemctl try-restart chronyd.service",
		"systemctl cat rsyslog.service",
		"systemctl try-restart rsyslog.service",
		"ip route replace default via 10.0.0.4",
	}, "\n")+"\n", n.Calls(t))
	// No temporary file is left behind.
	leftovers, err := filepath.Glob(filepath.Join(n.Home, root, "etc", "*", ".mnpool.*"))
	require.NoError(t, err)
	top, err := filepath.Glob(filepath.Join(n.Home, root, "etc", ".mnpool.*"))
	require.NoError(t, err)
	require.Empty(t, append(leftovers, top...))

	// The same files again: nothing changes, nothing is restarted.
	mtime := fi.ModTime()
	time.Sleep(10 * time.Millisecond)
	r = p.Push(ctx, nodecfg.Target{Node: "cn001", Addr: n.Addr}, files)
	require.NoError(t, r.Err)
	require.False(t, r.Changed)
	fi, err = os.Stat(filepath.Join(n.Home, root, "etc/resolv.conf"))
	require.NoError(t, err)
	require.Equal(t, mtime, fi.ModTime())
	require.Len(t, strings.Split(strings.TrimSpace(n.Calls(t)), "\n"), 5, "no new restarts")

	// Only the route changes.
	r = p.Push(ctx, nodecfg.Target{Node: "cn001", Addr: n.Addr}, testFiles("10.0.0.3"))
	require.NoError(t, r.Err)
	require.Equal(t, []nodecfg.FileResult{{Kind: "resolv"}, {Kind: "chrony"}, {Kind: "syslog"}, {Kind: "route", Changed: true}}, r.Files)
	require.True(t, strings.HasSuffix(n.Calls(t), "ip route replace default via 10.0.0.3\n"))
}

func TestSSHPushDebianChronyPathAndNoApply(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	require.NoError(t, os.MkdirAll(filepath.Join(n.Home, root, "etc/chrony"), 0o755))
	p := pusher(client, false, n)
	r := p.Push(context.Background(), nodecfg.Target{Node: "cn001", Addr: n.Addr}, testFiles("10.0.0.4")[1:2])
	require.NoError(t, r.Err)
	require.Equal(t, "server 10.0.0.3 iburst\nserver 10.0.0.2 iburst\n", readNodeFile(t, n, "etc/chrony/chrony.conf"))
	require.NoFileExists(t, filepath.Join(n.Home, root, "etc/chrony.conf"))
	require.Empty(t, n.Calls(t), "Apply off: nothing restarted")
}

func TestSSHPushContentNeverReachesTheShell(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	p := pusher(client, true, n)
	evil := "nameserver 10.0.0.2\n'; touch ../pwned; echo '\n$(touch ../pwned2)\n`touch ../pwned3`\n"
	r := p.Push(context.Background(), nodecfg.Target{Node: "cn001", Addr: n.Addr}, []nodecfg.File{{Kind: nodecfg.KindResolv, Data: []byte(evil)}})
	require.NoError(t, r.Err)
	require.Equal(t, evil, readNodeFile(t, n, "etc/resolv.conf"))
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		require.NoFileExists(t, filepath.Join(n.Home, f))
		require.NoFileExists(t, filepath.Join(n.Home, root, f))
	}
}

func TestSSHPushRemoteFailure(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	require.NoError(t, os.MkdirAll(filepath.Join(n.Home, root, "etc/resolv.conf"), 0o755))
	r := pusher(client, false, n).Push(context.Background(), nodecfg.Target{Node: "cn001", Addr: n.Addr}, testFiles("10.0.0.4"))
	require.ErrorIs(t, r.Err, nodecfg.ErrRemote)
	require.ErrorContains(t, r.Err, "fsroot/etc/resolv.conf is a directory")
	require.Empty(t, r.Files)
	require.NoFileExists(t, filepath.Join(n.Home, root, "etc/chrony.conf"), "stops at the first failing file")
}

func TestSSHPushChecksHostKeyAndLogin(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	other := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	ctx := context.Background()
	target := nodecfg.Target{Node: "cn001", Addr: n.Addr}

	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	// known_hosts has the node's address with another host's key.
	require.NoError(t, os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(n.Addr)}, other.HostKey)+"\n"), 0o600))
	cb, err := knownhosts.New(kh)
	require.NoError(t, err)
	p := &nodecfg.SSH{Auth: []ssh.AuthMethod{ssh.PublicKeys(client)}, HostKeyCallback: cb, Root: root}
	r := p.Push(ctx, target, testFiles("10.0.0.4"))
	require.ErrorIs(t, r.Err, nodecfg.ErrHostKey)
	require.ErrorContains(t, r.Err, "key mismatch")
	require.Zero(t, n.Execs(), "nothing ran on a node with the wrong host key")

	// With the right key in known_hosts it works.
	require.NoError(t, os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(n.Addr)}, n.HostKey)+"\n"), 0o600))
	p.HostKeyCallback, err = knownhosts.New(kh)
	require.NoError(t, err)
	require.NoError(t, p.Push(ctx, target, testFiles("10.0.0.4")).Err)

	// A key the node does not accept.
	p.Auth = []ssh.AuthMethod{ssh.PublicKeys(nodecfgtest.NewKey(t))}
	r = p.Push(ctx, target, testFiles("10.0.0.4"))
	require.ErrorIs(t, r.Err, nodecfg.ErrConnect)
	require.ErrorContains(t, r.Err, "unable to authenticate")
}

func TestSSHPushRejectsBadInputBeforeConnecting(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	n := nodecfgtest.Start(t, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0")
	ok := pusher(client, false, n)
	target := nodecfg.Target{Node: "cn001", Addr: n.Addr}
	for name, c := range map[string]struct {
		p      *nodecfg.SSH
		target nodecfg.Target
		files  []nodecfg.File
		want   string
	}{
		"root with a quote":  {&nodecfg.SSH{Auth: ok.Auth, HostKeyCallback: ok.HostKeyCallback, Root: "x'y"}, target, testFiles("10.0.0.4"), `root "x'y"`},
		"root with ..":       {&nodecfg.SSH{Auth: ok.Auth, HostKeyCallback: ok.HostKeyCallback, Root: "/srv/../etc"}, target, testFiles("10.0.0.4"), "must not contain .."},
		"root with a dollar": {&nodecfg.SSH{Auth: ok.Auth, HostKeyCallback: ok.HostKeyCallback, Root: "$HOME"}, target, testFiles("10.0.0.4"), `root "$HOME"`},
		"unknown kind":       {ok, target, []nodecfg.File{{Kind: "passwd", Data: []byte("root::0:0::/:/bin/sh\n")}}, `file kind "passwd"`},
		"route not an IP":    {ok, target, []nodecfg.File{{Kind: nodecfg.KindRoute, Data: []byte("10.0.0.1; reboot\n")}}, "want one gateway IP address"},
		"binary":             {ok, target, []nodecfg.File{{Kind: nodecfg.KindResolv, Data: []byte("a\x00b")}}, "not UTF-8 text"},
		"kind twice":         {ok, target, append(testFiles("10.0.0.4"), testFiles("10.0.0.4")[0]), "resolv file given twice"},
		"host name address":  {ok, nodecfg.Target{Node: "cn001", Addr: "cn001;id"}, testFiles("10.0.0.4"), `node address "cn001;id"`},
		"no host key check":  {&nodecfg.SSH{Auth: ok.Auth, Root: root}, target, testFiles("10.0.0.4"), "no HostKeyCallback"},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.p.Push(context.Background(), c.target, c.files)
			require.ErrorIs(t, r.Err, nodecfg.ErrInvalid)
			require.ErrorContains(t, r.Err, c.want)
		})
	}
	require.Zero(t, n.Execs())
}

// TestPushAllOverSSHWithTimeouts pushes to healthy nodes and to two that
// never finish (one silent after TCP accept, one that never completes
// its command), with a per-node timeout and bounded parallelism.
func TestPushAllOverSSHWithTimeouts(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	var nodes []*nodecfgtest.Node
	modes := []nodecfgtest.Mode{nodecfgtest.OK, nodecfgtest.Stall, nodecfgtest.OK, nodecfgtest.Hang, nodecfgtest.OK, nodecfgtest.OK}
	for _, m := range modes {
		nodes = append(nodes, nodecfgtest.Start(t, client.PublicKey(), m, "127.0.0.1:0"))
	}
	p := pusher(client, true, nodes...)
	var jobs []nodecfg.Job
	for i, n := range nodes {
		jobs = append(jobs, nodecfg.Job{Target: nodecfg.Target{Node: "cn" + string(rune('a'+i)), Addr: n.Addr}, Files: testFiles("10.0.0.4")})
	}
	var done []string
	start := time.Now()
	res := nodecfg.PushAll(context.Background(), p, jobs, nodecfg.PushOptions{Parallel: 2, Timeout: 2 * time.Second,
		Done: func(r nodecfg.Result) { done = append(done, r.Node) }})
	elapsed := time.Since(start)
	require.Len(t, res, len(nodes))
	require.Len(t, done, len(nodes))
	for i, r := range res {
		require.Equal(t, jobs[i].Target.Node, r.Node, "results in job order")
		switch modes[i] {
		case nodecfgtest.OK:
			require.NoError(t, r.Err, r.Node)
			require.True(t, r.Changed)
			require.Equal(t, "10.0.0.4\n", readNodeFile(t, nodes[i], "etc/mnpool/default-route"))
		default:
			require.ErrorIs(t, r.Err, nodecfg.ErrTimeout, r.Node)
			require.ErrorIs(t, r.Err, context.DeadlineExceeded, r.Node)
			require.GreaterOrEqual(t, r.Elapsed, 1900*time.Millisecond)
			require.Less(t, r.Elapsed, testenv.Timeout(6*time.Second))
		}
	}
	require.ErrorContains(t, res[1].Err, "while logging in")
	require.ErrorContains(t, res[3].Err, "while writing resolv")
	require.Less(t, elapsed, testenv.Timeout(12*time.Second), "slow nodes hold up only their own slot")
}
