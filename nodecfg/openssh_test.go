package nodecfg_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestSSHPushToOpenSSH pushes through the real OpenSSH sshd on a loopback
// port, as root, so the script runs under root's login shell exactly as
// on a node. Files go under an absolute Root in a temporary directory;
// nothing is applied (it would restart this host's services).
func TestSSHPushToOpenSSH(t *testing.T) {
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		const msg = "OpenSSH server not installed (no /usr/sbin/sshd): apt-get install openssh-server to run this test"
		if os.Getenv("MNPOOL_REQUIRE_SSHD") == "1" {
			t.Fatal(msg + " (MNPOOL_REQUIRE_SSHD=1)")
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		t.Skip("pushing to the real sshd logs in as root; run the tests as root")
	}
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755)) // privilege separation directory
	base := t.TempDir()
	client := nodecfgtest.NewKey(t)
	authKeys := filepath.Join(base, "authorized_keys")
	require.NoError(t, os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600))
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	require.NoError(t, err)
	hostKeyPath := filepath.Join(base, "host_key")
	require.NoError(t, os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600))
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	config := filepath.Join(base, "sshd_config")
	require.NoError(t, os.WriteFile(config, []byte(strings.Join([]string{
		"ListenAddress " + addr,
		"HostKey " + hostKeyPath,
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no", // the temporary directory is under /tmp (1777)
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PidFile none",
	}, "\n")+"\n"), 0o600))
	out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput()
	require.NoError(t, err, "sshd -t: %s", out)
	logPath := filepath.Join(base, "sshd.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	daemon := exec.Command(sshd, "-D", "-e", "-f", config)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	require.NoError(t, daemon.Start())
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", b)
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, testenv.Timeout(10*time.Second), 20*time.Millisecond, "sshd listens on %s", addr)

	kh := filepath.Join(base, "known_hosts")
	require.NoError(t, os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey())+"\n"), 0o600))
	cb, err := knownhosts.New(kh)
	require.NoError(t, err)
	root := filepath.Join(base, "node")
	p := &nodecfg.SSH{Auth: []ssh.AuthMethod{ssh.PublicKeys(client)}, HostKeyCallback: cb, Root: root}
	portN, _ := strconv.Atoi(port)
	p.Port = portN
	files := testFiles("10.0.0.4")
	ctx := context.Background()
	r := p.Push(ctx, nodecfg.Target{Node: "cn001", Addr: "127.0.0.1"}, files)
	require.NoError(t, r.Err)
	require.True(t, r.Changed)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f.Kind.Path()))
		require.NoError(t, err)
		require.Equal(t, string(f.Data), string(b), f.Kind)
	}
	r = p.Push(ctx, nodecfg.Target{Node: "cn001", Addr: "127.0.0.1"}, files)
	require.NoError(t, r.Err)
	require.False(t, r.Changed, "unchanged on the second push")
}
