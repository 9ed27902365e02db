package sshkeys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/internal/testenv"
)

// testServer is an SSH server on 127.0.0.1 that, like sshd, reads an
// authorized_keys file at every authentication attempt and accepts the keys
// on its key lines. Sessions answer "exec" with exit status 0.
type testServer struct {
	addr    *net.TCPAddr
	hostKey ssh.Signer
}

func startServer(t *testing.T, authorizedKeys string) *testServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			data, err := os.ReadFile(authorizedKeys)
			if err != nil {
				return nil, err
			}
			if containsKey(acceptedKeys(t, data), key) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("key %s not in %s", ssh.FingerprintSHA256(key), authorizedKeys)
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveConn(c, cfg) })
		}
	})
	return &testServer{addr: ln.Addr().(*net.TCPAddr), hostKey: hostKey}
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(testenv.Timeout(10 * time.Second)))
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		for r := range creqs {
			r.Reply(r.Type == "exec", nil)
			if r.Type == "exec" {
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				ch.Close()
			}
		}
	}
}

// knownHostsFor renders a known_hosts file naming the server "name".
func (s *testServer) knownHostsFor(t *testing.T, name string) ssh.HostKeyCallback {
	return hostKeyCallback(t, []HostKeys{{Name: name, Addresses: []string{"127.0.0.1"}, Port: s.addr.Port, Keys: []ssh.PublicKey{s.hostKey.PublicKey()}}})
}

// login dials the server with a real client, authenticates with signers
// and runs a command: a whole login, not only a handshake.
func (s *testServer) login(t *testing.T, hostKeys ssh.HostKeyCallback, signers ...ssh.Signer) error {
	t.Helper()
	client, err := ssh.Dial("tcp", s.addr.String(), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: hostKeys,
		Timeout:         5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	return sess.Run("true")
}

func mustSigner(t *testing.T, dir string, kind Kind) ssh.Signer {
	t.Helper()
	s, err := Signer(context.Background(), dir, kind)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoginInProcessServer(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadPublicKeys(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	memberFile := filepath.Join(t.TempDir(), "sn1", ".ssh", "authorized_keys")
	if _, _, err := UpdateAuthorizedKeysFile(ctx, memberFile, AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: keys}); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, memberFile)
	hosts := srv.knownHostsFor(t, "sn1")
	if err := srv.login(t, hosts, mustSigner(t, dir, KindPool)); err != nil {
		t.Fatalf("pool key refused by a member: %v", err)
	}
	err = srv.login(t, hosts, mustSigner(t, dir, KindCompute))
	if err == nil {
		t.Fatal("compute key accepted by a member")
	}
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		t.Fatalf("compute key failed on the host key, not on authentication: %v", err)
	}
	// The rendered known_hosts pins the host key: another server is refused.
	other := startServer(t, memberFile)
	if err := other.login(t, srv.knownHostsFor(t, "sn1"), mustSigner(t, dir, KindPool)); !errors.As(err, &ke) {
		t.Fatalf("unknown host key: err %v, want a knownhosts.KeyError", err)
	}
}

// TestRotationEndToEnd rotates both kinds on a member and a node and checks
// at every step which keys log in and what the audit says.
func TestRotationEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	files := map[Target]string{
		TargetMember: filepath.Join(base, "sn1", ".ssh", "authorized_keys"),
		TargetNode:   filepath.Join(base, "cn1", ".ssh", "authorized_keys"),
	}
	render := func() {
		t.Helper()
		keys, err := LoadPublicKeys(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		for target, f := range files {
			if _, _, err := UpdateAuthorizedKeysFile(ctx, f, AuthorizedKeysSpec{Target: target, Keys: keys}); err != nil {
				t.Fatal(err)
			}
		}
	}
	audit := func(target Target) []FindingKind {
		t.Helper()
		keys, err := LoadPublicKeys(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := Audit(ctx, AuditOptions{Target: target, Keys: keys, Owner: os.Getuid()}, files[target])
		if err != nil {
			t.Fatal(err)
		}
		var kinds []FindingKind
		for _, f := range fs {
			kinds = append(kinds, f.Kind)
		}
		return kinds
	}
	render()
	member, node := startServer(t, files[TargetMember]), startServer(t, files[TargetNode])
	mHosts, nHosts := member.knownHostsFor(t, "sn1"), node.knownHostsFor(t, "cn1")
	oldPool, oldCompute := mustSigner(t, dir, KindPool), mustSigner(t, dir, KindCompute)

	// expect checks who may log in where: key -> [member ok, node ok].
	expect := func(step string, want map[string][2]bool, signers map[string]ssh.Signer) {
		t.Helper()
		for name, w := range want {
			if got := member.login(t, mHosts, signers[name]) == nil; got != w[0] {
				t.Errorf("%s: %s on member: login ok = %v, want %v", step, name, got, w[0])
			}
			if got := node.login(t, nHosts, signers[name]) == nil; got != w[1] {
				t.Errorf("%s: %s on node: login ok = %v, want %v", step, name, got, w[1])
			}
		}
	}
	expect("before rotation", map[string][2]bool{"pool": {true, true}, "compute": {false, true}},
		map[string]ssh.Signer{"pool": oldPool, "compute": oldCompute})

	if _, err := Rotate(ctx, dir, KindPool, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(ctx, dir, KindCompute, Options{}); err != nil {
		t.Fatal(err)
	}
	newPool, newCompute := mustSigner(t, dir, KindPool), mustSigner(t, dir, KindCompute)
	// Files not yet re-rendered: the audit says so, and only the old keys work...
	if got := audit(TargetMember); len(got) != 1 || got[0] != FindingMissingPoolKey {
		t.Errorf("member audit before re-render: %v, want [missing-pool-key]", got)
	}
	if got := audit(TargetNode); len(got) != 2 {
		t.Errorf("node audit before re-render: %v, want missing pool and compute keys", got)
	}
	signers := map[string]ssh.Signer{"old pool": oldPool, "new pool": newPool, "old compute": oldCompute, "new compute": newCompute}
	expect("rotated, not rendered", map[string][2]bool{"old pool": {true, true}, "new pool": {false, false}, "old compute": {false, true}, "new compute": {false, false}}, signers)
	// ... but a member offering Signers (new, then old) still gets in.
	all, err := Signers(ctx, dir, KindPool)
	if err != nil {
		t.Fatal(err)
	}
	if err := member.login(t, mHosts, all...); err != nil {
		t.Errorf("Signers during rotation refused by a member not yet re-rendered: %v", err)
	}

	render()
	if got := append(audit(TargetMember), audit(TargetNode)...); len(got) != 0 {
		t.Errorf("audit during the grace period: %v, want none", got)
	}
	expect("grace period", map[string][2]bool{"old pool": {true, true}, "new pool": {true, true}, "old compute": {false, true}, "new compute": {false, true}}, signers)

	for _, kind := range Kinds() {
		if err := FinishRotation(ctx, dir, kind, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	render()
	expect("finished", map[string][2]bool{"old pool": {false, false}, "new pool": {true, true}, "old compute": {false, false}, "new compute": {false, true}}, signers)
	for target, f := range files {
		data, _ := os.ReadFile(f)
		mustContainKey(t, data, oldPool.PublicKey(), false, target.String()+" after finish: old pool key")
		mustContainKey(t, data, oldCompute.PublicKey(), false, target.String()+" after finish: old compute key")
	}
	if got := append(audit(TargetMember), audit(TargetNode)...); len(got) != 0 {
		t.Errorf("audit after rotation: %v, want none", got)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something accepts on 127.0.0.1:port.
func waitPort(ctx context.Context, port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if ctxutil.Sleep(ctx, 50*time.Millisecond) != nil {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
	}
}
