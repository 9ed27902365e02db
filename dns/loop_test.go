package dns_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// countingProxy relays UDP queries to target and counts them: it stands
// between a server and the forwarder it names, to count the upstream
// attempts.
type countingProxy struct {
	addr string
	n    atomic.Int64
}

func newCountingProxy(t *testing.T, ip, target string) *countingProxy {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.n.Add(1)
			q := append([]byte(nil), buf[:n]...)
			go func() {
				c, err := net.Dial("udp", target)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write(q); err != nil {
					return
				}
				rb := make([]byte, 4096)
				rn, err := c.Read(rb)
				if err != nil {
					return
				}
				pc.WriteTo(rb[:rn], from)
			}()
		}
	}()
	return p
}

// serveOn starts a dns.Server for s on ip (a free port) and returns its
// address.
func serveOn(t *testing.T, s *pool.Store, ip string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := dns.NewServer(s, dns.WithListen(ip+":0"), dns.WithWatchInterval(20*time.Millisecond), dns.WithForwardTimeout(time.Second))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready after 10s")
	}
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addrs()[0].String()
}

// TestForwardingLoop: two pool servers whose site.forwarders name each
// other (through counting relays, so that neither recognises itself in
// the list) answer one recursive query for an outside name with at most
// one upstream attempt each, instead of bouncing it between them.
func TestForwardingLoop(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	a := serveOn(t, s, "127.0.53.21")
	b := serveOn(t, s, "127.0.53.22")
	pa := newCountingProxy(t, "127.0.53.31", a)
	pb := newCountingProxy(t, "127.0.53.32", b)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: pa.addr + "," + pb.addr}); err != nil {
		t.Fatal(err)
	}
	// Wait until both servers have the forwarders (RA set in their
	// answers).
	for _, srv := range []string{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(new(mdns.Msg).SetQuestion("cn001.cluster.", mdns.TypeA), srv)
			if err == nil && r.RecursionAvailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not pick up site.forwarders within 10s (last: %v, %v)", srv, r, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, srv := range []string{a, b} {
		m := new(mdns.Msg).SetQuestion("www.example.org.", mdns.TypeA)
		r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, srv)
		if err != nil {
			t.Fatalf("query to %s: %v", srv, err)
		}
		if r.Rcode != mdns.RcodeServerFailure && r.Rcode != mdns.RcodeRefused {
			t.Errorf("query to %s: %s, want SERVFAIL or REFUSED (no forwarder can answer)", srv, mdns.RcodeToString[r.Rcode])
		}
		time.Sleep(2 * time.Second) // let a loop, if any, show
		if na, nb := pa.n.Swap(0), pb.n.Swap(0); na > 1 || nb > 1 {
			t.Errorf("one query to %s: %d attempts through relay a, %d through relay b; want at most 1 each", srv, na, nb)
		}
	}
}

// TestNoForwardingToMembers: a forwarder that is a pool member (any of
// its addresses) is dropped; an outside name then gets REFUSED, and no
// packet goes to the member.
func TestNoForwardingToMembers(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	// sn1's address on ib, and sn2's on v6: members, on any network.
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: "10.1.0.2,[fd00:10::3]:53"}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Version(ctx)
	sv.waitVersion(t, v)
	r := query(t, "udp", sv.addr, "www.example.org", mdns.TypeA, true)
	if r.Rcode != mdns.RcodeRefused || r.RecursionAvailable {
		t.Fatalf("forwarders that are members: %s (RA %v), want REFUSED without RA", mdns.RcodeToString[r.Rcode], r.RecursionAvailable)
	}
}
