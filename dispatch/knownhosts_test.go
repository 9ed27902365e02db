package dispatch_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/dispatch"
)

func TestKnownHostsIndex(t *testing.T) {
	a, _ := newKey(t)
	b, _ := newKey(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	lines := knownhosts.Line([]string{"[127.1.0.1]:2222", "cn1"}, a.PublicKey()) + "\n" +
		knownhosts.Line([]string{"127.1.0.*"}, b.PublicKey()) + "\n"
	require.NoError(t, os.WriteFile(kh, []byte(lines), 0o600))
	cb, err := dispatch.KnownHosts(kh)
	require.NoError(t, err)
	addr := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	require.NoError(t, cb("127.1.0.1:2222", addr("127.1.0.1", 2222), a.PublicKey()))
	require.NoError(t, cb("127.1.0.7:22", addr("127.1.0.7", 22), b.PublicKey()), "wildcards through knownhosts")
	err = cb("127.1.0.1:2222", addr("127.1.0.1", 2222), b.PublicKey())
	var ke *knownhosts.KeyError
	require.True(t, errors.As(err, &ke), "a changed key is knownhosts' KeyError: %v", err)
	require.NotEmpty(t, ke.Want)
	err = cb("127.9.0.1:22", addr("127.9.0.1", 22), a.PublicKey())
	require.True(t, errors.As(err, &ke) && len(ke.Want) == 0, "an unknown host: %v", err)

	// A revoked key is refused even though a plain line lists it.
	require.NoError(t, os.WriteFile(kh, []byte(lines+"@revoked * "+string(ssh.MarshalAuthorizedKey(a.PublicKey()))), 0o600))
	cb, err = dispatch.KnownHosts(kh)
	require.NoError(t, err)
	var re *knownhosts.RevokedError
	require.ErrorAs(t, cb("127.1.0.1:2222", addr("127.1.0.1", 2222), a.PublicKey()), &re)
}
