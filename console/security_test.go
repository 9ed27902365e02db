package console_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
)

// The probe of the security review: a client claiming to be root@mn1,
// asking to force write access.
const attackHello = `{"node":"cn001","mode":"write","force":true,"user":"root@mn1"}`

// tryHello dials addr with dial, sends line and returns the final reply,
// or the error that ended the exchange before one.
func tryHello(dial console.DialFunc, addr, line string) (console.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return console.Reply{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return console.Reply{}, err
	}
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadBytes('\n')
		if err != nil {
			return console.Reply{}, err
		}
		var r console.Reply
		if err := json.Unmarshal(l, &r); err != nil {
			return console.Reply{}, fmt.Errorf("not a reply: %q", l)
		}
		if r.OK || r.Error != "" {
			return r, nil
		}
	}
}

// securePool is mn1, sn1, sn2 serving cn001 (sn1 first) plus sn3, a
// member added disabled without services, and site.consoleacl set to acl
// (unset when empty).
func securePool(t *testing.T, acl string, opts ...console.Option) (*cluster, *fakeEndpoint) {
	t.Helper()
	return securePoolOn(t, backends()[0], acl, opts...)
}

func securePoolOn(t *testing.T, be backend, acl string, opts ...console.Option) (*cluster, *fakeEndpoint) {
	t.Helper()
	ctx := context.Background()
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := be.dsns(t, 3)
	s := openStore(t, dsns[0], "mn1")
	seedPool(t, s, ep1.Addr(), ep2.Addr())
	require.NoError(t, s.AddMember(ctx, pool.Member{Name: "sn3", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.4")}, Disabled: true}, false))
	if acl != "" {
		require.NoError(t, s.SetSite(ctx, map[string]string{console.SiteACL: acl}))
	}
	return startCluster(t, dsns, members3, opts...), ep1
}

func requireNoConsole(t *testing.T, c *cluster, ep *fakeEndpoint) {
	t.Helper()
	for name, m := range c.members {
		require.Empty(t, m.broker.Consoles(), "%s opened a console", name)
	}
	conns, _, _, received := ep.stats()
	require.Zero(t, conns, "the node's console was opened")
	require.Empty(t, received)
}

// A client without a certificate, or speaking plain TCP as the review's
// probe did, gets nothing: no reply, no console, no recent output.
func TestClientWithoutCertificateIsRefused(t *testing.T) {
	c, ep := securePool(t, "")
	addr := c.addrs["sn1"]

	noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	_, err := tryHello(console.TLSDialer(nil, noCert), addr, attackHello)
	require.Error(t, err)
	require.Contains(t, err.Error(), "certificate required")

	var d net.Dialer
	r, err := tryHello(d.DialContext, addr, attackHello)
	require.Error(t, err, "a plain TCP client got a reply: %+v", r)

	// TLS 1.2 is not offered either.
	old := &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, Certificates: userTLS(t, "alice").Certificates}
	_, err = tryHello(console.TLSDialer(nil, old), addr, attackHello)
	require.Error(t, err)
	require.Contains(t, err.Error(), "protocol version")

	requireNoConsole(t, c, ep)
}

// Certificates of another CA are refused, whatever they claim to be; a
// client refuses a broker with a certificate of another CA.
func TestCertificateFromAnotherCAIsRefused(t *testing.T) {
	c, ep := securePool(t, "")
	other, err := pki.NewCA("other", 0)
	require.NoError(t, err)
	for _, req := range []pki.Request{{Kind: pki.KindUser, Name: "root"}, {Kind: pki.KindMember, Name: "sn2"}} {
		is, err := other.Issue(req)
		require.NoError(t, err)
		// Credentials that trust the pool CA, holding a foreign certificate.
		pair, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
		require.NoError(t, err)
		// Sent whatever CAs the broker asks for.
		cfg := userTLS(t, "alice").Clone()
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		_, err = tryHello(console.TLSDialer(nil, cfg), c.addrs["sn1"], attackHello)
		require.Error(t, err, "%s %s of another CA", req.Kind, req.Name)
		require.Contains(t, err.Error(), "unknown certificate authority")
	}
	requireNoConsole(t, c, ep)

	// The other way round: a broker whose certificate is of another CA.
	is, err := other.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}})
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.(*tls.Conn).Handshake()
				io.Copy(io.Discard, conn)
			}()
		}
	}()
	_, _, err = console.Dial(context.Background(), userDial(t, "alice"), ln.Addr().String(), console.Hello{Node: "cn001", Mode: console.ModeWrite}, nil)
	require.ErrorIs(t, err, pki.ErrNotIssued)
}

// A member dialling another member's broker checks that it reached the
// member it meant: sn1's broker answering for "sn2" is refused.
func TestMemberChecksTheBrokerItDials(t *testing.T) {
	c, ep := securePool(t, "")
	mn1 := credsFor(t, pki.KindMember, "mn1")
	_, _, err := console.Dial(context.Background(), console.TLSDialer(nil, mn1.ClientConfig("sn2")), c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "alice", Hops: 1}, nil)
	require.ErrorIs(t, err, pki.ErrWrongPeer)
	require.Contains(t, err.Error(), "dialled sn2, the certificate names sn1")
	requireNoConsole(t, c, ep)

	// The right name: mn1 proxies for alice, and sn1 serves her.
	conn, r, err := console.Dial(context.Background(), console.TLSDialer(nil, mn1.ClientConfig("sn1")), c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "alice", Hops: 1}, nil)
	require.NoError(t, err)
	conn.Close()
	require.Equal(t, "sn1", r.Server)
}

// A member certificate counts only for an enabled member running the
// console service: the review's second probe came from a member added
// --disabled --services none.
func TestDisabledMemberCertificateIsRefused(t *testing.T) {
	c, ep := securePool(t, "")
	sn3 := console.TLSDialer(nil, credsFor(t, pki.KindMember, "sn3").ClientConfig(""))
	for _, line := range []string{attackHello, `{"node":"cn001","mode":"write","force":true,"user":"root@mn1","hops":1}`} {
		r, err := tryHello(sn3, c.addrs["sn1"], line)
		require.NoError(t, err)
		require.False(t, r.OK)
		require.Equal(t, console.CodeForbidden, r.Code)
		require.Contains(t, r.Error, "member certificate of sn3: the member is disabled")
	}
	requireNoConsole(t, c, ep)
}

// site.consoleacl: a watch-only user may watch, not write or force, on the
// holder and through a proxy; write without force is not force.
func TestWatchOnlyUserCannotWriteOrForce(t *testing.T) {
	c, ep := securePool(t, "user:viewer=watch group:ops=write user:boss=force *=none")

	w := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "boss"})
	require.Equal(t, console.ModeWrite, w.reply.Mode)
	w.expect("banner cn001 #1")

	for _, via := range []string{"sn1", "mn1"} {
		v := dialConsole(t, c.addrs[via], console.Hello{Node: "cn001", Mode: console.ModeWatch, User: "viewer"})
		require.Equal(t, console.ModeWatch, v.reply.Mode)
		require.Equal(t, "boss", v.reply.Writer)
		v.expect("banner cn001 #1")
		v.write("typed by a watcher\r\n")

		cases := []struct {
			user   string
			groups []string
			hello  console.Hello
			refuse string
		}{
			{"viewer", nil, console.Hello{Node: "cn001", Mode: console.ModeWrite}, "viewer may not write to consoles"},
			{"viewer", nil, console.Hello{Node: "cn001", Mode: console.ModeWrite, Force: true}, "viewer may not force write access to consoles"},
			{"carol", []string{"ops"}, console.Hello{Node: "cn001", Mode: console.ModeWrite, Force: true}, "carol may not force"},
			{"mallory", nil, console.Hello{Node: "cn001", Mode: console.ModeWatch}, "mallory may not watch"},
		}
		for _, cs := range cases {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, _, err := console.Dial(ctx, userDial(t, cs.user, cs.groups...), c.addrs[via], cs.hello, nil)
			cancel()
			var re *console.RejectError
			require.ErrorAs(t, err, &re, "%s via %s: %+v", cs.user, via, cs.hello)
			require.Equal(t, console.CodeForbidden, re.Code)
			require.Contains(t, re.Msg, cs.refuse)
		}
	}
	// A group member with write (no force) gets write access only when
	// free: here it watches behind boss.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, r, err := console.Dial(ctx, userDial(t, "carol", "ops"), c.addrs["sn2"], console.Hello{Node: "cn001", Mode: console.ModeWrite}, nil)
	require.NoError(t, err)
	conn.Close()
	require.Equal(t, console.ModeWatch, r.Mode)
	require.Equal(t, "boss", r.Writer)

	w.write("boss types\r\n")
	w.expect("boss types\r\n")
	_, _, _, received := ep.stats()
	require.Equal(t, "boss types\r\n", received, "only the writer's input reached the console")
}

// The audit log and the broker's notices name the authenticated user,
// never the hello's claim; a proxied attach is audited once, by the
// member the user connected to.
func TestAuditRecordsAuthenticatedUser(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) { testAuditRecordsAuthenticatedUser(t, be) })
	}
}

func testAuditRecordsAuthenticatedUser(t *testing.T, be backend) {
	c, _ := securePoolOn(t, be, "")
	ctx := context.Background()
	var conn net.Conn

	// alice's hello names nobody; the reply to the next user names her.
	a := dialConsole(t, c.addrs["mn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, User: "alice"})
	require.Equal(t, "sn1", a.reply.Server, "proxied by mn1")
	// A claim that is not the authenticated name is refused.
	r, err := tryHello(userDial(t, "bob"), c.addrs["sn1"], attackHello)
	require.NoError(t, err)
	require.Equal(t, console.CodeForbidden, r.Code, r.Error)
	require.Contains(t, r.Error, `names user "root@mn1" but the connection is authenticated as bob`)
	// root on sn1's socket forces.
	conn, r, err = console.Dial(ctx, userDial(t, ""), c.socks["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite, Force: true}, nil)
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, console.ModeWrite, r.Mode)
	a.expect("root@sn1 took write access (force)")

	type rec struct{ member, actor, target string }
	var got []rec
	waitFor(t, 20*time.Second, func() bool {
		log, err := c.members["mn1"].store.AuditLog(ctx, 100)
		require.NoError(t, err)
		got = got[:0]
		for _, e := range log {
			if e.Action == console.ActionAttach {
				got = append(got, rec{e.Member, e.Actor, e.Target})
			}
		}
		return len(got) == 2
	}, "two attach records; have %+v", got)
	require.ElementsMatch(t, []rec{{"mn1", "alice", "cn001"}, {"sn1", "root@sn1", "cn001"}}, got)
	log, err := c.members["mn1"].store.AuditLog(ctx, 100)
	require.NoError(t, err)
	for _, e := range log {
		require.NotContains(t, e.Actor, "root@mn1", "the claimed user reached the audit log")
		require.NotContains(t, e.Actor, "member:", "a proxy was audited as a user")
	}
}

const envSocketClient = "MNPOOL_TEST_SOCKET_CLIENT"

// TestHelperSocketClient is not a test: TestUnixSocketPeerCredentials
// runs a copy of the test binary as another uid with envSocketClient set
// to "PATH HELLO", and this prints the broker's reply (or the error).
func TestHelperSocketClient(t *testing.T) {
	v := os.Getenv(envSocketClient)
	if v == "" {
		return
	}
	path, line, _ := strings.Cut(v, " ")
	var d net.Dialer
	r, err := tryHello(func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialContext(ctx, "unix", addr) }, path, line)
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(0)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("REPLY %s\n", b)
	os.Exit(0)
}

// runSocketClient runs the helper as uid:gid and returns its reply.
func runSocketClient(t *testing.T, bin string, uid, gid uint32, sock, line string) (console.Reply, string) {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperSocketClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), envSocketClient+"="+sock+" "+line)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	if i := strings.Index(s, "REPLY "); i >= 0 {
		var r console.Reply
		require.NoError(t, json.Unmarshal([]byte(strings.SplitN(s[i+6:], "\n", 2)[0]), &r))
		return r, s
	}
	return console.Reply{}, s
}

// copyTestBinary copies the test binary where another uid may run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "mnpool-bin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	bin := filepath.Join(dir, "console.test")
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	return bin
}

// The Unix socket admits root and the socket group by SO_PEERCRED, even
// when the socket file itself is open to everyone.
func TestUnixSocketPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("MNPOOL_REQUIRE_TOOLS") != "" {
			t.Fatal("this test runs clients as uid 65534 and needs root")
		}
		t.Skip("needs root to run a client as uid 65534")
	}
	gid, err := console.LookupGroup("staff")
	require.NoError(t, err)
	c, ep := securePool(t, "", console.WithSocketGroup(gid))
	sock := c.socks["sn1"]
	require.NoError(t, os.Chmod(sock, 0o666), "open the file: only the peer check stands")
	bin := copyTestBinary(t)

	// nobody (65534:65534), not in the group: refused, with the probe.
	r, out := runSocketClient(t, bin, 65534, 65534, sock, attackHello)
	require.False(t, r.OK, out)
	require.Equal(t, console.CodeForbidden, r.Code, out)
	require.Contains(t, r.Error, "uid 65534 (nobody) is neither root nor in the console socket group")
	requireNoConsole(t, c, ep)

	// The same uid in the socket group may attach, as itself only.
	r, out = runSocketClient(t, bin, 65534, uint32(gid), sock, attackHello)
	require.Equal(t, console.CodeForbidden, r.Code, out)
	require.Contains(t, r.Error, `names user "root@mn1" but the connection is authenticated as nobody@sn1`)
	r, out = runSocketClient(t, bin, 65534, uint32(gid), sock, `{"node":"cn001","mode":"watch"}`)
	require.True(t, r.OK, out)
	require.Equal(t, "sn1", r.Server)

	// root may.
	conn, r, err := console.Dial(context.Background(), userDial(t, ""), sock, console.Hello{Node: "cn001", Mode: console.ModeWrite}, nil)
	require.NoError(t, err)
	conn.Close()
	require.Equal(t, console.ModeWrite, r.Mode)
}
