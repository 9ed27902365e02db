package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/dispatch/sshfarm/farmcluster"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/sshkeys"
)

// startOpenSSH runs the real sshd on addrs (all on port): members (the
// first address) accept only the pool key, nodes only the compute key.
// It returns the host key.
func startOpenSSH(t *testing.T, cl *farmcluster.Cluster, member string, nodes ...string) ssh.PublicKey {
	t.Helper()
	sshd := nodecfgtest.RequireSSHD(t)
	base := t.TempDir()
	ctx := context.Background()
	pub, err := sshkeys.LoadPublicKeys(ctx, cl.KeyDir)
	require.NoError(t, err)
	poolAuth := filepath.Join(base, "authorized_pool")
	computeAuth := filepath.Join(base, "authorized_compute")
	require.NoError(t, os.WriteFile(poolAuth, ssh.MarshalAuthorizedKey(pub.Pool[0]), 0o600))
	require.NoError(t, os.WriteFile(computeAuth, ssh.MarshalAuthorizedKey(pub.Compute[0]), 0o600))
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	require.NoError(t, err)
	hostKeyPath := filepath.Join(base, "host_key")
	require.NoError(t, os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600))
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)
	port := strconv.Itoa(cl.Farm.Port())
	conf := []string{"HostKey " + hostKeyPath, "AuthorizedKeysFile " + computeAuth, "StrictModes no",
		"PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
		"PermitRootLogin prohibit-password", "PidFile none", "MaxStartups 100"}
	for _, a := range append([]string{member}, nodes...) {
		conf = append([]string{"ListenAddress " + net.JoinHostPort(a, port)}, conf...)
	}
	conf = append(conf, "Match LocalAddress "+member, "  AuthorizedKeysFile "+poolAuth)
	config := filepath.Join(base, "sshd_config")
	require.NoError(t, os.WriteFile(config, []byte(strings.Join(conf, "\n")+"\n"), 0o600))
	out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput()
	require.NoError(t, err, "sshd -t: %s", out)
	logPath := filepath.Join(base, "sshd.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	daemon := exec.Command(sshd, "-D", "-e", "-f", config)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	require.NoError(t, daemon.Start())
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", b)
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(member, port), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "sshd listens")
	for _, a := range append([]string{member}, nodes...) {
		require.NoError(t, cl.AddKnownHost(mustIP(a), hostSigner.PublicKey()))
	}
	return hostSigner.PublicKey()
}

// TestXdshOverOpenSSH: member sn1 and two nodes are served by the real
// OpenSSH sshd. sn1 accepts only the pool key, the nodes only the compute
// key. mn1 relays sn1's nodes to sn1 over sshd, where the real mnpool
// binary runs them.
func TestXdshOverOpenSSH(t *testing.T) {
	bin := buildMnpool(t)
	sns := func(int) []string { return []string{"sn1", "mn1"} }
	cl := startCluster(t, farmcluster.Options{Nodes: 3, Members: []string{"mn1", "sn1"}, ServiceNodes: sns, Mnpool: bin,
		NodeBase: mustIP("127.1.6.1"), MemberBase: mustIP("127.2.6.1"), External: map[string]netip.Addr{"sn1": mustIP("127.4.0.1")}})
	startOpenSSH(t, cl, "127.4.0.1", "127.4.0.2", "127.4.0.3")
	s, err := pool.Open(context.Background(), cl.DB)
	require.NoError(t, err)
	require.NoError(t, s.AddNodes(context.Background(), []pool.Node{
		{Name: "real1", IP: mustIP("127.4.0.2"), Network: "lo", ServiceNodes: []string{"sn1", "mn1"}, Manual: true},
		{Name: "real2", IP: mustIP("127.4.0.3"), Network: "lo", ServiceNodes: []string{"mn1", "sn1"}, Manual: true},
	}, pool.AddOptions{}))
	s.Close()

	o := xdshJSON(t, cl, "mn1", 0, "compute,real1,real2,sn1", "--", "echo ${SSH_CONNECTION##* }-$(id -un)")
	require.Equal(t, map[string]string{"cn00001": "sn1", "cn00002": "sn1", "cn00003": "sn1", "real1": "sn1", "real2": "", "sn1": ""}, o.vias())
	for _, r := range o.Results {
		require.Equal(t, 0, r.ExitCode, "%s: %s", r.Node, r.Error)
		require.True(t, strings.HasSuffix(r.Stdout, "-root\n"), "%s: %q", r.Node, r.Stdout)
	}
	// A script with -e through the relay over sshd.
	dir := t.TempDir()
	script := filepath.Join(dir, "s.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"script $1\"\nexit 4\n"), 0o755))
	o = xdshJSON(t, cl, "mn1", 1, "real1,real2", "-e", script, "--", "arg")
	require.Equal(t, 2, o.Summary.Failed)
	for _, r := range o.Results {
		require.Equal(t, 4, r.ExitCode)
		require.Equal(t, "script arg\n", r.Stdout)
	}
	// sn1 as a target: logged into with the pool key, the only key its
	// sshd accepts (the nodes above accepted only the compute key).
	code, _, errs := xdsh(t, cl, "mn1", "sn1", "--", "true")
	require.Equal(t, 0, code, errs)
}
