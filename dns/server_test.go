package dns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// backends are the stores the server tests run on: SQLite, and the local
// Galera cluster when MNPOOL_TEST_DSNS is set.
var backends = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", dnstest.SQLite},
	{"galera", func(t testing.TB) string { return testgalera.Open(t).DSN() }},
}

// upstream runs a miekg/dns server on loopback standing in for the site's
// forwarder: it answers A for names under example.org with 192.0.2.1 and
// NXDOMAIN for anything else, over UDP and TCP. It returns "IP:PORT".
func upstream(t *testing.T) string {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg).SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		if mdns.IsSubDomain("example.org.", mdns.CanonicalName(q.Name)) && q.Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR(q.Name + " 300 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	pc, l := listenPair(t, "127.0.53.2")
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// listenPair opens UDP and TCP sockets on the same free port of ip.
func listenPair(t *testing.T, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no free port pair")
	return nil, nil
}

type served struct {
	addr    string // UDP and TCP
	reloads chan dns.Reload
	done    chan error
	cancel  context.CancelFunc
}

// serve starts a dns.Server on a loopback test address for store s.
func serve(t *testing.T, s *pool.Store) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{reloads: make(chan dns.Reload, 64), done: make(chan error, 1), cancel: cancel}
	srv := dns.NewServer(s,
		dns.WithListen("127.0.53.1:0"),
		dns.WithWatchInterval(20*time.Millisecond),
		dns.WithForwardTimeout(time.Second),
		dns.WithReloadHook(func(r dns.Reload) {
			select {
			case sv.reloads <- r:
			default:
			}
		}))
	go func() { sv.done <- srv.Serve(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-sv.done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(testenv.Timeout(10 * time.Second)):
		t.Fatal("server not ready after 10s")
	}
	sv.addr = srv.Addrs()[0].String()
	t.Cleanup(func() {
		cancel()
		<-sv.done
	})
	return sv
}

// waitVersion waits until the server has loaded the pool at version want
// or later.
func (sv *served) waitVersion(t *testing.T, want int64) {
	t.Helper()
	deadline := time.After(testenv.Timeout(10 * time.Second))
	for {
		select {
		case r := <-sv.reloads:
			if r.Err != nil {
				t.Fatalf("reload: %v", r.Err)
			}
			if r.Version >= want {
				return
			}
		case <-deadline:
			t.Fatalf("server did not load version %d within 10s", want)
		}
	}
}

func query(t *testing.T, network, addr, name string, qtype uint16, rd bool) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	c := &mdns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, name, mdns.TypeToString[qtype], err)
	}
	return r
}

// answers returns the rdata of the answer section, as text.
func answers(r *mdns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[4:], " "))
	}
	return out
}

func TestServerAnswers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := dnstest.Open(t, b.dsn(t))
			dnstest.Seed(t, s)
			up := upstream(t)
			if err := s.SetSite(context.Background(), map[string]string{siteschema.Forwarders: up}); err != nil {
				t.Fatal(err)
			}
			sv := serve(t, s)
			for _, network := range []string{"udp", "tcp"} {
				t.Run(network, func(t *testing.T) {
					for _, tc := range []struct {
						name   string
						qname  string
						qtype  uint16
						rd     bool
						rcode  int
						aa     bool
						answer []string
						soa    bool // SOA in the authority section
					}{
						{"node A", "cn001.cluster", mdns.TypeA, true, mdns.RcodeSuccess, true, []string{"10.0.1.1"}, false},
						{"case-insensitive", "CN002.Cluster", mdns.TypeA, true, mdns.RcodeSuccess, true, []string{"10.0.1.2"}, false},
						{"network domain", "ib01.ib.cluster", mdns.TypeA, true, mdns.RcodeSuccess, true, []string{"10.1.1.1"}, false},
						{"node AAAA", "v6n01.cluster", mdns.TypeAAAA, true, mdns.RcodeSuccess, true, []string{"fd00:10::101"}, false},
						{"member A", "mn1.cluster", mdns.TypeA, true, mdns.RcodeSuccess, true, []string{"10.0.0.1"}, false},
						{"member AAAA", "mn1.cluster", mdns.TypeAAAA, true, mdns.RcodeSuccess, true, []string{"fd00:10::1"}, false},
						{"member on ib", "sn1.ib.cluster", mdns.TypeA, true, mdns.RcodeSuccess, true, []string{"10.1.0.2"}, false},
						{"reverse node", "1.1.0.10.in-addr.arpa", mdns.TypePTR, true, mdns.RcodeSuccess, true, []string{"cn001.cluster."}, false},
						{"reverse member ib", "2.0.1.10.in-addr.arpa", mdns.TypePTR, true, mdns.RcodeSuccess, true, []string{"sn1.ib.cluster."}, false},
						{"reverse v6", "1.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa", mdns.TypePTR, true, mdns.RcodeSuccess, true, []string{"v6n01.cluster."}, false},
						{"unknown node", "cn999.cluster", mdns.TypeA, true, mdns.RcodeNameError, true, nil, true},
						{"unknown reverse", "99.1.0.10.in-addr.arpa", mdns.TypePTR, true, mdns.RcodeNameError, true, nil, true},
						{"no such type", "cn001.cluster", mdns.TypeMX, true, mdns.RcodeSuccess, true, nil, true},
						{"IPv4-only node AAAA", "cn001.cluster", mdns.TypeAAAA, true, mdns.RcodeSuccess, true, nil, true},
						{"empty non-terminal", "1.0.10.in-addr.arpa", mdns.TypePTR, true, mdns.RcodeSuccess, true, nil, true},
						{"apex SOA", "cluster", mdns.TypeSOA, true, mdns.RcodeSuccess, true, []string{"mn1.cluster. hostmaster.cluster. " + "SERIAL 3600 600 604800 30"}, false},
						{"apex NS", "ib.cluster", mdns.TypeNS, true, mdns.RcodeSuccess, true, []string{"mn1.cluster.", "sn1.cluster.", "sn2.cluster.", "sn4.cluster."}, false},
						{"forwarded", "www.example.org", mdns.TypeA, true, mdns.RcodeSuccess, false, []string{"192.0.2.1"}, false},
						{"forwarded NXDOMAIN", "nosuch.example.net", mdns.TypeA, true, mdns.RcodeNameError, false, nil, false},
						{"no recursion asked", "www.example.org", mdns.TypeA, false, mdns.RcodeRefused, false, nil, false},
					} {
						t.Run(tc.name, func(t *testing.T) {
							r := query(t, network, sv.addr, tc.qname, tc.qtype, tc.rd)
							if r.Rcode != tc.rcode {
								t.Fatalf("rcode %s, want %s\n%v", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tc.rcode], r)
							}
							if r.Authoritative != tc.aa {
								t.Errorf("AA = %v, want %v", r.Authoritative, tc.aa)
							}
							got := answers(r)
							if tc.qtype == mdns.TypeSOA && len(got) == 1 {
								f := strings.Fields(got[0])
								f[2] = "SERIAL"
								got[0] = strings.Join(f, " ")
							}
							if strings.Join(got, "|") != strings.Join(tc.answer, "|") {
								t.Errorf("answer %q, want %q", got, tc.answer)
							}
							if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == mdns.TypeSOA; hasSOA != tc.soa {
								t.Errorf("SOA in authority = %v, want %v: %v", hasSOA, tc.soa, r.Ns)
							}
							if tc.soa && r.Ns[0].Header().Ttl != dns.DefaultNegativeTTL {
								t.Errorf("negative TTL %d, want %d", r.Ns[0].Header().Ttl, dns.DefaultNegativeTTL)
							}
						})
					}
				})
			}
		})
	}
}

// TestServerFollowsPool changes the pool under a running server: a new
// node, a node moved to a new address, a removed node, a servicenode
// change. The answers follow without a restart.
func TestServerFollowsPool(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := dnstest.Open(t, b.dsn(t))
			dnstest.Seed(t, s)
			sv := serve(t, s)
			if r := query(t, "udp", sv.addr, "cn100.cluster", mdns.TypeA, true); r.Rcode != mdns.RcodeNameError {
				t.Fatalf("cn100 before it exists: %s", mdns.RcodeToString[r.Rcode])
			}
			step := func(what string, change func() error) {
				t.Helper()
				if err := change(); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				v, err := s.Version(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sv.waitVersion(t, v)
			}
			step("add cn100", func() error {
				return s.AddNodes(ctx, []pool.Node{{Name: "cn100", IP: netip.MustParseAddr("10.0.1.100"), ServiceNodes: []string{"sn1", "sn2"}}}, pool.AddOptions{})
			})
			for _, network := range []string{"udp", "tcp"} {
				if got := answers(query(t, network, sv.addr, "cn100.cluster", mdns.TypeA, true)); strings.Join(got, ",") != "10.0.1.100" {
					t.Errorf("%s: cn100 after add = %q", network, got)
				}
				if got := answers(query(t, network, sv.addr, "100.1.0.10.in-addr.arpa", mdns.TypePTR, true)); strings.Join(got, ",") != "cn100.cluster." {
					t.Errorf("%s: PTR of cn100 after add = %q", network, got)
				}
			}
			step("move cn001 to 10.0.1.201 and to servicenodes sn2,sn1", func() error {
				return s.AddNodes(ctx, []pool.Node{{Name: "cn001", IP: netip.MustParseAddr("10.0.1.201"), ServiceNodes: []string{"sn2", "sn1"}}}, pool.AddOptions{Replace: true})
			})
			if got := answers(query(t, "udp", sv.addr, "cn001.cluster", mdns.TypeA, true)); strings.Join(got, ",") != "10.0.1.201" {
				t.Errorf("cn001 after the move = %q, want 10.0.1.201", got)
			}
			if r := query(t, "udp", sv.addr, "1.1.0.10.in-addr.arpa", mdns.TypePTR, true); r.Rcode != mdns.RcodeNameError {
				t.Errorf("old PTR of cn001: %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
			}
			step("remove cn002", func() error { return s.RemoveNodes(ctx, []string{"cn002"}) })
			if r := query(t, "tcp", sv.addr, "cn002.cluster", mdns.TypeA, true); r.Rcode != mdns.RcodeNameError {
				t.Errorf("cn002 after removal: %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
			}
			// The SOA serial follows the pool's change counter.
			v, _ := s.Version(ctx)
			soa := query(t, "udp", sv.addr, "cluster", mdns.TypeSOA, true)
			if got := soa.Answer[0].(*mdns.SOA).Serial; got != uint32(v) {
				t.Errorf("serial %d, want the pool version %d", got, v)
			}
		})
	}
}

// TestServerDig asks the running server with BIND's dig, over UDP and TCP.
func TestServerDig(t *testing.T) {
	dig := dnstest.Tool(t, "dig", "bind9-dnsutils")
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	up := upstream(t)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: up}); err != nil {
		t.Fatal(err)
	}
	sv := serve(t, s)
	host, port, _ := net.SplitHostPort(sv.addr)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, dig, append([]string{"@" + host, "-p", port, "+time=3", "+tries=1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"+short", "cn001.cluster", "A"}, "10.0.1.1"},
		{[]string{"+short", "+tcp", "cn001.cluster", "A"}, "10.0.1.1"},
		{[]string{"+short", "-x", "10.0.1.2"}, "cn002.cluster."},
		{[]string{"+short", "+tcp", "-x", "fd00:10::101"}, "v6n01.cluster."},
		{[]string{"+short", "www.example.org"}, "192.0.2.1"},
		{[]string{"+short", "+tcp", "www.example.org"}, "192.0.2.1"},
		{[]string{"+noall", "+comments", "nosuch.cluster"}, "status: NXDOMAIN"},
		{[]string{"+noall", "+comments", "+tcp", "nosuch.ib.cluster"}, "status: NXDOMAIN"},
		{[]string{"+noall", "+comments", "cn001.cluster"}, "flags: qr aa rd ra"},
		// Without EDNS options (no cookie) and without EDNS: the fast path.
		{[]string{"+short", "+nocookie", "cn002.cluster"}, "10.0.1.2"},
		{[]string{"+short", "+noedns", "-x", "10.0.1.2"}, "cn002.cluster."},
		{[]string{"+noall", "+comments", "+noedns", "nosuch.cluster"}, "status: NXDOMAIN"},
		{[]string{"+noall", "+comments", "+edns=1", "+noednsneg", "cn001.cluster"}, "status: BADVERS"},
	} {
		if got := run(tc.args...); !strings.Contains(got, tc.want) {
			t.Errorf("dig %v:\n%s\nwant it to contain %q", tc.args, got, tc.want)
		}
	}
	// A new node is answered by dig without a restart.
	if err := s.AddNodes(ctx, []pool.Node{{Name: "cn200", IP: netip.MustParseAddr("10.0.2.200"), ServiceNodes: []string{"sn1", "sn2"}}}, pool.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Version(ctx)
	sv.waitVersion(t, v)
	if got := run("+short", "cn200.cluster"); got != "10.0.2.200" {
		t.Errorf("dig cn200 after add: %q", got)
	}
}

func TestServerShutdown(t *testing.T) {
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	query(t, "udp", sv.addr, "cn001.cluster", mdns.TypeA, true)
	sv.cancel()
	select {
	case err := <-sv.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve returned %v, want context.Canceled", err)
		}
		sv.done <- err // for the cleanup
	case <-time.After(testenv.Timeout(10 * time.Second)):
		t.Fatal("Serve did not return within 10s of cancel")
	}
	// The port is closed: TCP connections are refused.
	if c, err := net.DialTimeout("tcp", sv.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("TCP port still open after shutdown")
	}
}

func TestServerRejectsBadForwarders(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: "dns.example.org"}); err != nil {
		t.Fatal(err)
	}
	srv := dns.NewServer(s, dns.WithListen("127.0.53.1:0"), dns.WithWatchInterval(20*time.Millisecond))
	err := srv.Serve(ctx)
	if !errors.Is(err, dns.ErrInvalid) || !strings.Contains(err.Error(), "dns.example.org") {
		t.Fatalf("Serve = %v, want ErrInvalid naming the forwarder", err)
	}
}

// TestServerKeepsDataOnBadReload: a bad forwarder set while serving does
// not stop the server; it keeps the data and forwarders it had.
func TestServerKeepsDataOnBadReload(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: "not-an-ip"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(testenv.Timeout(10 * time.Second))
	for {
		select {
		case r := <-sv.reloads:
			if r.Err == nil {
				continue
			}
			if !errors.Is(r.Err, dns.ErrInvalid) {
				t.Fatalf("reload error %v, want ErrInvalid", r.Err)
			}
			if got := answers(query(t, "udp", sv.addr, "cn001.cluster", mdns.TypeA, true)); strings.Join(got, ",") != "10.0.1.1" {
				t.Fatalf("after a failed reload: %q", got)
			}
			return
		case <-deadline:
			t.Fatal("no failed reload reported within 10s")
		}
	}
}

func TestServerDropsLoopingForwarder(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: sv.addr}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Version(ctx)
	sv.waitVersion(t, v)
	r := query(t, "udp", sv.addr, "www.example.org", mdns.TypeA, true)
	if r.Rcode != mdns.RcodeRefused {
		t.Fatalf("forwarding to itself: rcode %s, want REFUSED (forwarder dropped)", mdns.RcodeToString[r.Rcode])
	}
}
