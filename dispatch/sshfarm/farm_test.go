package sshfarm_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/dispatch/sshfarm"
)

// tool finds an OpenSSH-based client; missing ones fail the test under
// MNPOOL_REQUIRE_TOOLS=1.
func tool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MNPOOL_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not installed (MNPOOL_REQUIRE_TOOLS=1)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// TestFarmWithOpenSSHClients reaches the farm with ssh, pdsh and clush
// through the ssh_config and known_hosts it writes.
func TestFarmWithOpenSSHClients(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	f, err := sshfarm.Start(sshfarm.Options{N: 3, First: mustAddr("127.5.0.1"), Authorized: []ssh.PublicKey{signer.PublicKey()}})
	require.NoError(t, err)
	defer f.Close()
	dir := t.TempDir()
	cfg, err := f.WriteFiles(dir, pem.EncodeToMemory(block))
	require.NoError(t, err)

	out, err := exec.Command(tool(t, "ssh"), "-F", cfg, "127.5.0.2", "echo $SSH_CONNECTION; exit 3").Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 3, ee.ExitCode())
	require.Contains(t, string(out), " 127.5.0.2 ")

	hosts := filepath.Join(dir, "hosts")
	require.NoError(t, os.WriteFile(hosts, []byte("127.5.0.1\n127.5.0.2\n127.5.0.3\n"), 0o600))
	pdsh := exec.Command(tool(t, "pdsh"), "-R", "ssh", "-w", "^"+hosts, "echo hi")
	pdsh.Env = append(os.Environ(), "PDSH_SSH_ARGS_APPEND=-F "+cfg)
	out, err = pdsh.Output()
	require.NoError(t, err)
	require.Equal(t, []string{"127.5.0.1: hi", "127.5.0.2: hi", "127.5.0.3: hi"}, sortedLines(out))

	out, err = exec.Command(tool(t, "clush"), "-o", "-F "+cfg, "--hostfile", hosts, "echo hi").Output()
	require.NoError(t, err)
	require.Equal(t, []string{"127.5.0.1: hi", "127.5.0.2: hi", "127.5.0.3: hi"}, sortedLines(out))
	require.GreaterOrEqual(t, f.Execs(), int64(7))

	// A key the farm does not know is refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	b2, _ := ssh.MarshalPrivateKey(other, "")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "id_ed25519"), pem.EncodeToMemory(b2), 0o600))
	err = exec.Command("ssh", "-F", cfg, "127.5.0.1", "true").Run()
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 255, ee.ExitCode())
}

func sortedLines(b []byte) []string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(l)
	return l
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
