package nodecfg_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
)

// TestSSHPushToOpenSSH pushes through the real OpenSSH sshd on a loopback
// port, as root, so the script runs under root's login shell exactly as
// on a node. Files go under an absolute Root in a temporary directory;
// nothing is applied (it would restart this host's services).
func TestSSHPushToOpenSSH(t *testing.T) {
	client := nodecfgtest.NewKey(t)
	sshd := nodecfgtest.StartOpenSSH(t, []string{"127.0.0.1"}, 0, client.PublicKey())
	cb, err := knownhosts.New(sshd.KnownHosts)
	require.NoError(t, err)
	root := filepath.Join(t.TempDir(), "node")
	p := &nodecfg.SSH{Auth: []ssh.AuthMethod{ssh.PublicKeys(client)}, HostKeyCallback: cb, Root: root, Port: sshd.Port}
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
