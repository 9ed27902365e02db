package console_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// testCA is the pool CA of the tests: every broker and client of a test
// run gets certificates from it.
type testCA struct {
	once  sync.Once
	ca    *pki.CA
	err   error
	mu    sync.Mutex
	creds map[string]*pki.Credentials
}

var theCA testCA

// credsFor issues (once) a certificate of kind to name from the test CA.
func credsFor(t testing.TB, kind pki.Kind, name string, groups ...string) *pki.Credentials {
	t.Helper()
	theCA.once.Do(func() {
		theCA.ca, theCA.err = pki.NewCA("test", 0)
		theCA.creds = map[string]*pki.Credentials{}
	})
	require.NoError(t, theCA.err)
	key := string(kind) + "/" + name + "/" + strings.Join(groups, ",")
	theCA.mu.Lock()
	defer theCA.mu.Unlock()
	if c := theCA.creds[key]; c != nil {
		return c
	}
	is, err := theCA.ca.Issue(pki.Request{Kind: kind, Name: name, Groups: groups})
	require.NoError(t, err)
	c, err := pki.NewCredentials(is.CertPEM, is.KeyPEM, []*x509.Certificate{theCA.ca.Cert})
	require.NoError(t, err)
	theCA.creds[key] = c
	return c
}

// userTLS is the client TLS configuration of a user (default "tester").
func userTLS(t testing.TB, user string, groups ...string) *tls.Config {
	if user == "" {
		user = "tester"
	}
	return credsFor(t, pki.KindUser, user, groups...).ClientConfig("")
}

// userDial dials brokers as user: TLS with the user's certificate, or a
// Unix socket path.
func userDial(t testing.TB, user string, groups ...string) console.DialFunc {
	return console.ClientDialer(userTLS(t, user, groups...))
}

// dialAs is console.Dial as user h.User (certificate) or, for a socket
// path, as this process.
func dialAs(ctx context.Context, t testing.TB, addr string, h console.Hello) (net.Conn, console.Reply, error) {
	return console.Dial(ctx, userDial(t, h.User), addr, h, nil)
}

// backend is a store backend under test: dsns returns n DSNs of one
// database (for Galera, one per cluster node, so members talk to
// different nodes).
type backend struct {
	name string
	dsns func(t testing.TB, n int) []string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t testing.TB, n int) []string {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
			out := make([]string, n)
			for i := range out {
				out[i] = dsn
			}
			return out
		}},
		{"galera", func(t testing.TB, n int) []string {
			env := testgalera.Open(t)
			out := make([]string, n)
			for i := range out {
				out[i] = env.NodeDSN(i%env.N() + 1)
			}
			return out
		}},
	}
}

func eachBackend(t *testing.T, n int, f func(t *testing.T, dsns []string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.dsns(t, n)) })
	}
}

func openStore(t testing.TB, dsn, self string) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithMigrate(), pool.WithSelf(self))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// seedPool creates network mgmt, MN mn1, SNs sn1 and sn2 (all services),
// nodes cn001 (servicenodes sn1,sn2) and cn002 (sn2,sn1), and tcp
// consoles for both at the given endpoint addresses.
func seedPool(t testing.TB, s *pool.Store, cn001, cn002 string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false))
	addr := func(ip string) map[string]netip.Addr { return map[string]netip.Addr{"mgmt": netip.MustParseAddr(ip)} }
	_, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: addr("10.0.0.1"), Services: service.All()}})
	require.NoError(t, err)
	require.NoError(t, s.AddMember(ctx, pool.Member{Name: "sn1", Addresses: addr("10.0.0.2"), Services: service.All()}, false))
	require.NoError(t, s.AddMember(ctx, pool.Member{Name: "sn2", Addresses: addr("10.0.0.3"), Services: service.All()}, false))
	require.NoError(t, s.AddNodes(ctx, []pool.Node{
		{Name: "cn001", IP: netip.MustParseAddr("10.0.1.1"), Network: "mgmt", ServiceNodes: []string{"sn1", "sn2"}},
		{Name: "cn002", IP: netip.MustParseAddr("10.0.1.2"), Network: "mgmt", ServiceNodes: []string{"sn2", "sn1"}},
	}, pool.AddOptions{}))
	require.NoError(t, console.SetSpecs(ctx, s, []console.Spec{
		{Node: "cn001", Kind: console.KindTCP, Address: cn001},
		{Node: "cn002", Kind: console.KindTCP, Address: cn002},
	}))
}

// fakeEndpoint is a console endpoint: a TCP server that prints a banner
// naming itself and the connection number, then echoes what it gets.
// Sending "flood" makes it write floodBytes bytes; sending "stream"
// makes it write lines at a console's pace until stopStream is called.
type fakeEndpoint struct {
	name       string
	ln         net.Listener
	floodBytes int
	streamStop chan struct{}
	stopOnce   sync.Once

	mu        sync.Mutex
	conns     int
	active    int
	maxActive int
	received  bytes.Buffer
}

func newFakeEndpoint(t testing.TB, name string) *fakeEndpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := &fakeEndpoint{name: name, ln: ln, floodBytes: 8 << 20, streamStop: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return e
}

func (e *fakeEndpoint) Addr() string { return e.ln.Addr().String() }

func (e *fakeEndpoint) serve(c net.Conn) {
	defer c.Close()
	e.mu.Lock()
	e.conns++
	n := e.conns
	e.active++
	e.maxActive = max(e.maxActive, e.active)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.active--
		e.mu.Unlock()
	}()
	fmt.Fprintf(c, "banner %s #%d\r\n", e.name, n)
	buf := make([]byte, 4096)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			e.mu.Lock()
			e.received.Write(buf[:k])
			e.mu.Unlock()
			if bytes.Contains(buf[:k], []byte("stream")) {
				if !e.stream(c) {
					return
				}
				continue
			}
			if bytes.Contains(buf[:k], []byte("flood")) {
				// About 16 MB/s: far faster than a serial console, slower
				// than a reader that keeps up.
				chunk := bytes.Repeat([]byte("x"), 16<<10)
				for sent := 0; sent < e.floodBytes; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
				c.Write([]byte("FLOOD-END\r\n"))
				continue
			}
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stream writes numbered 4 KiB lines, one a millisecond at most, until
// stopStream, then "STREAM-END". It returns false when a write failed.
func (e *fakeEndpoint) stream(c net.Conn) bool {
	pad := bytes.Repeat([]byte("y"), 4000)
	for i := 0; ; i++ {
		select {
		case <-e.streamStop:
			_, err := c.Write([]byte("STREAM-END\r\n"))
			return err == nil
		default:
		}
		if _, err := fmt.Fprintf(c, "line %d %s\r\n", i, pad); err != nil {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *fakeEndpoint) stopStream() { e.stopOnce.Do(func() { close(e.streamStop) }) }

func (e *fakeEndpoint) stats() (conns, active, maxActive int, received string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns, e.active, e.maxActive, e.received.String()
}

// member is one pool member's broker under test.
type member struct {
	name   string
	addr   string
	sock   string
	store  *pool.Store
	broker *console.Broker
	cancel context.CancelFunc
	done   chan error
}

// cluster runs brokers for the named members on 127.0.0.2, .3, ... with
// ephemeral ports, each with its own store handle on dsns[i].
type cluster struct {
	t       testing.TB
	members map[string]*member
	addrs   map[string]string
	socks   map[string]string
}

func startCluster(t testing.TB, dsns []string, names []string, opts ...console.Option) *cluster {
	t.Helper()
	c := &cluster{t: t, members: map[string]*member{}, addrs: map[string]string{}, socks: map[string]string{}}
	lns := map[string][]net.Listener{}
	sockDir, err := os.MkdirTemp("", "mnpool-console-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(sockDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	for i, name := range names {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+2))
		require.NoError(t, err)
		c.addrs[name] = ln.Addr().String()
		c.socks[name] = filepath.Join(sockDir, name+".sock")
		uln, err := console.ListenUnix(c.socks[name], -1)
		require.NoError(t, err)
		lns[name] = []net.Listener{ln, uln}
	}
	for i, name := range names {
		s := openStore(t, dsns[i], name)
		base := []console.Option{console.WithBrokerAddrs(c.addrs), console.WithWatchInterval(100 * time.Millisecond), console.WithCredentials(credsFor(t, pki.KindMember, name))}
		b, err := console.NewBroker(s, name, append(base, opts...)...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{name: name, addr: c.addrs[name], sock: c.socks[name], store: s, broker: b, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- b.Serve(ctx, lns[name]...) }()
		c.members[name] = m
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.cancel()
		}
		for _, m := range c.members {
			select {
			case <-m.done:
			case <-time.After(testenv.Timeout(20 * time.Second)):
				t.Errorf("broker %s did not stop", m.name)
			}
		}
	})
	return c
}

// stop stops a member's broker gracefully and waits for Serve to return.
func (c *cluster) stop(name string) {
	m := c.members[name]
	m.cancel()
	select {
	case err := <-m.done:
		require.ErrorIs(c.t, err, context.Canceled)
	case <-time.After(testenv.Timeout(20 * time.Second)):
		c.t.Fatalf("broker %s did not stop", name)
	}
	m.done <- context.Canceled // for the cleanup
}

// crash kills a member's broker without releasing its leases.
func (c *cluster) crash(name string) {
	m := c.members[name]
	m.broker.Crash()
	select {
	case <-m.done:
	case <-time.After(testenv.Timeout(20 * time.Second)):
		c.t.Fatalf("broker %s did not stop", name)
	}
	m.done <- context.Canceled
}

// conn is a test client connection to a broker, reading in the background.
type conn struct {
	t     testing.TB
	c     net.Conn
	reply console.Reply
	mu    sync.Mutex
	buf   bytes.Buffer
	done  chan struct{}
}

func dialConsole(t testing.TB, addr string, h console.Hello) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(30*time.Second))
	defer cancel()
	c, r, err := dialAs(ctx, t, addr, h)
	require.NoError(t, err, "dial %s for %+v", addr, h)
	tc := &conn{t: t, c: c, reply: r, done: make(chan struct{})}
	go func() {
		defer close(tc.done)
		b := make([]byte, 32<<10)
		for {
			n, err := c.Read(b)
			tc.mu.Lock()
			tc.buf.Write(b[:n])
			tc.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return tc
}

func (c *conn) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *conn) write(s string) {
	_, err := io.WriteString(c.c, s)
	require.NoError(c.t, err)
}

func (c *conn) contains(want string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Contains(c.buf.Bytes(), []byte(want))
}

func (c *conn) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
}

// expect waits until the output contains want.
func (c *conn) expect(want string) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, func() bool { return c.contains(want) }, "output to contain %q; have %q", want, tail(c.text()))
}

func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func tail(s string) string {
	if len(s) > 400 {
		return "..." + s[len(s)-400:]
	}
	return s
}

func waitFor(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(testenv.Timeout(d))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for "+format, append([]any{d}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
