package dispatch_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/dispatch/sshfarm"
)

// newKey returns a fresh ed25519 client key and its OpenSSH PEM.
func newKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	return s, pem.EncodeToMemory(block)
}

// farmEnv is a farm with a client key and a checked host key callback.
type farmEnv struct {
	farm   *sshfarm.Farm
	key    ssh.Signer
	hostCB ssh.HostKeyCallback
	khPath string
}

func startFarm(t testing.TB, n int, first string) *farmEnv {
	t.Helper()
	key, _ := newKey(t)
	o := sshfarm.Options{N: n, Authorized: []ssh.PublicKey{key.PublicKey()}}
	if first != "" {
		o.First = mustAddr(first)
	}
	f, err := sshfarm.Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	kh := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(kh, f.KnownHosts(), 0o600))
	cb, err := knownhosts.New(kh)
	require.NoError(t, err)
	return &farmEnv{farm: f, key: key, hostCB: cb, khPath: kh}
}

func (e *farmEnv) transport() *dispatch.SSH {
	auth := []ssh.AuthMethod{ssh.PublicKeys(e.key)}
	return &dispatch.SSH{NodeAuth: auth, MemberAuth: auth, HostKeyCallback: e.hostCB}
}

// targets names the farm's endpoints cn001... in order.
func (e *farmEnv) targets() []dispatch.Target {
	var out []dispatch.Target
	for i, a := range e.farm.Addrs() {
		out = append(out, dispatch.Target{Name: fmt.Sprintf("cn%03d", i+1), Addr: net.JoinHostPort(a.String(), strconv.Itoa(e.farm.Port())), Kind: dispatch.KindNode})
	}
	return out
}

// collect runs a plan and returns the results by node and the lines
// streamed.
func collect(t testing.TB, r *dispatch.Runner, req dispatch.Request, p dispatch.Plan) (map[string]dispatch.Result, dispatch.Summary, []string) {
	t.Helper()
	var mu sync.Mutex
	res := map[string]dispatch.Result{}
	var lines []string
	s, err := r.Run(context.Background(), req, p, dispatch.Handlers{
		Output: func(node string, stderr bool, line []byte) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf("%s %v %s", node, stderr, line))
		},
		Done: func(x dispatch.Result) {
			mu.Lock()
			defer mu.Unlock()
			require.NotContains(t, res, x.Node, "one result per node")
			res[x.Node] = x
		},
	})
	require.NoError(t, err)
	require.Len(t, res, p.Len())
	return res, s, lines
}
