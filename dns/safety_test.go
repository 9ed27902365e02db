package dns_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/internal/netns"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// TestServerRefusesOutsiders runs the server in a network namespace with
// an address on a pool network (10.0.0.1/16, network mgmt) and one on a
// network the pool does not know (192.168.77.1/24). A client on the pool
// network gets answers; a client on the other network gets REFUSED, for
// the pool's names and for recursion, over UDP and TCP, until
// site.dnsallow lists its network.
func TestServerRefusesOutsiders(t *testing.T) {
	lab := netns.New(t, "srv", "in", "out")
	lab.IP("srv", "addr", "add", "10.0.0.1/16", "dev", "eth0")
	lab.IP("srv", "addr", "add", "10.0.0.53/16", "dev", "eth0") // a second address on mgmt
	lab.IP("srv", "addr", "add", "192.168.77.1/24", "dev", "eth0")
	lab.IP("in", "addr", "add", "10.0.1.1/16", "dev", "eth0")
	lab.IP("out", "addr", "add", "192.168.77.2/24", "dev", "eth0")
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	if err := s.SetSite(ctx, map[string]string{siteschema.Forwarders: "127.0.0.1:5399"}); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	var l net.Listener
	if err := lab.Do("srv", func() error {
		var err error
		if pc, err = net.ListenPacket("udp", "0.0.0.0:53"); err != nil {
			return err
		}
		l, err = net.Listen("tcp", "0.0.0.0:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reloads := make(chan dns.Reload, 64)
	srv := dns.NewServer(s, dns.WithPacketConn(pc), dns.WithListener(l), dns.WithWatchInterval(20*time.Millisecond),
		dns.WithReloadHook(func(r dns.Reload) {
			select {
			case reloads <- r:
			default:
			}
		}))
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	c := &labClient{t: t, lab: lab}
	expect := c.expect
	expect("in", "10.0.0.1", mdns.RcodeSuccess)
	// The answer leaves from the address asked, not the primary one
	// (the client's connected socket takes nothing else).
	expect("in", "10.0.0.53", mdns.RcodeSuccess)
	expect("out", "192.168.77.1", mdns.RcodeRefused)

	// site.dnsallow replaces the pool's networks (loopback stays).
	if err := s.SetSite(ctx, map[string]string{dns.SiteDNSAllow: "192.168.77.0/24"}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Version(ctx)
	for r := range reloads {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Version >= v {
			break
		}
	}
	expect("out", "192.168.77.1", mdns.RcodeSuccess)
	expect("in", "10.0.0.1", mdns.RcodeRefused)
}

// labClient asks the server from the lab's hosts.
type labClient struct {
	t   *testing.T
	lab *netns.Lab
}

func (c *labClient) ask(host, network, server, name string, rd bool) *mdns.Msg {
	c.t.Helper()
	var r *mdns.Msg
	err := c.lab.Do(host, func() error {
		m := new(mdns.Msg).SetQuestion(name, mdns.TypeA)
		m.RecursionDesired = rd
		var err error
		r, _, err = (&mdns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, net.JoinHostPort(server, "53"))
		return err
	})
	if err != nil {
		c.t.Fatalf("%s: %s query for %s to %s: %v", host, network, name, server, err)
	}
	return r
}

// expect checks the answer host gets from server for cn001.cluster over
// UDP and TCP, and for recursion when it must be REFUSED.
func (c *labClient) expect(host, server string, wantRcode int) {
	t := c.t
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		r := c.ask(host, network, server, "cn001.cluster.", true)
		if r.Rcode != wantRcode {
			t.Errorf("%s (%s): cn001.cluster: %s, want %s", host, network, mdns.RcodeToString[r.Rcode], mdns.RcodeToString[wantRcode])
		}
		if wantRcode == mdns.RcodeSuccess && (len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), "10.0.1.1")) {
			t.Errorf("%s (%s): cn001.cluster answer %v", host, network, r.Answer)
		}
		if wantRcode == mdns.RcodeRefused {
			if len(r.Answer)+len(r.Ns) != 0 || r.RecursionAvailable {
				t.Errorf("%s (%s): REFUSED with data or RA: %v", host, network, r)
			}
			if r := c.ask(host, network, server, "www.example.org.", true); r.Rcode != mdns.RcodeRefused {
				t.Errorf("%s (%s): recursion for www.example.org: %s, want REFUSED", host, network, mdns.RcodeToString[r.Rcode])
			}
		}
	}
}

// TestServerBadVers: a query with EDNS version 1 gets BADVERS, with an
// OPT record of version 0 (RFC 6891), over UDP and TCP.
func TestServerBadVers(t *testing.T) {
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	for _, network := range []string{"udp", "tcp"} {
		for _, version := range []uint8{1, 5} {
			m := new(mdns.Msg).SetQuestion("cn001.cluster.", mdns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(version)
			r, _, err := (&mdns.Client{Net: network, Timeout: 3 * time.Second}).Exchange(m, sv.addr)
			if err != nil {
				t.Fatalf("%s: %v", network, err)
			}
			opt := r.IsEdns0()
			if r.Rcode != mdns.RcodeBadVers || opt == nil || opt.Version() != 0 || len(r.Answer) != 0 {
				t.Errorf("%s, EDNS version %d: %v\nwant BADVERS with an OPT of version 0 and no answer", network, version, r)
			}
		}
	}
	// Version 0 is answered.
	m := new(mdns.Msg).SetQuestion("cn001.cluster.", mdns.TypeA)
	m.SetEdns0(1232, false)
	r, _, err := (&mdns.Client{Timeout: 3 * time.Second}).Exchange(m, sv.addr)
	if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("EDNS version 0: %v, %v", r, err)
	}
}

// blast sends queries from one UDP socket, at most window unanswered at
// a time, and returns the answers by ID order of sending: nil for a
// query without an answer within the wait.
func blast(t *testing.T, addr string, qs []*mdns.Msg, window int, wait time.Duration) []*mdns.Msg {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.UDPConn).SetReadBuffer(4 << 20)
	got := make([]*mdns.Msg, len(qs))
	byID := map[uint16]int{}
	var mu sync.Mutex
	slots := make(chan struct{}, window)
	readerDone := make(chan struct{})
	var answered atomic.Int64
	go func() {
		defer close(readerDone)
		buf := make([]byte, 4096)
		for {
			c.SetReadDeadline(time.Now().Add(wait))
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			r := new(mdns.Msg)
			if r.Unpack(buf[:n]) != nil {
				continue
			}
			mu.Lock()
			i, ok := byID[r.Id]
			if ok && got[i] == nil {
				got[i] = r
				answered.Add(1)
				<-slots
			}
			mu.Unlock()
			if answered.Load() == int64(len(qs)) {
				return
			}
		}
	}()
	for i, q := range qs {
		select {
		case slots <- struct{}{}:
		case <-readerDone:
			t.Fatalf("no answers for %v after %d queries", wait, i)
		}
		q.Id = uint16(i)
		mu.Lock()
		byID[q.Id] = i
		mu.Unlock()
		b, _ := q.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	<-readerDone
	return got
}

// TestRRLBootStorm: 10,000 nodes booting ask for their own names and
// every one of them for the same servicenode's name, all from one client
// prefix (loopback, as a /24): the default rate limit lets every answer
// through, none truncated.
func TestRRLBootStorm(t *testing.T) {
	ctx := context.Background()
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	const nodes = 10000
	var add []pool.Node
	for i := 0; i < nodes; i++ {
		add = append(add, pool.Node{Name: fmt.Sprintf("boot%05d", i), IP: netip.AddrFrom4([4]byte{10, 0, byte(10 + i/250), byte(1 + i%250)}), ServiceNodes: []string{"sn1", "mn1"}})
	}
	if err := s.AddNodes(ctx, add, pool.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	sv := serve(t, s)
	var qs []*mdns.Msg
	for i := 0; i < nodes; i++ {
		qs = append(qs, new(mdns.Msg).SetQuestion(fmt.Sprintf("boot%05d.cluster.", i), mdns.TypeA),
			new(mdns.Msg).SetQuestion("sn1.cluster.", mdns.TypeA))
	}
	got := blast(t, sv.addr, qs, 64, 5*time.Second)
	missing, truncated := 0, 0
	for i, r := range got {
		switch {
		case r == nil:
			missing++
		case r.Truncated:
			truncated++
		case r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1:
			t.Errorf("%s: %v", qs[i].Question[0].Name, r)
		}
	}
	if missing != 0 || truncated != 0 {
		t.Errorf("boot storm of %d nodes: %d of %d queries unanswered, %d truncated; want all answered in full", nodes, missing, len(qs), truncated)
	}
}

// TestRRLFlood: a flood of identical queries from one prefix is limited
// once it passes the burst: some answers are dropped and some come back
// truncated (slip), so that a real client would retry over TCP; TCP still
// answers.
func TestRRLFlood(t *testing.T) {
	s := dnstest.Open(t, dnstest.SQLite(t))
	dnstest.Seed(t, s)
	sv := serve(t, s)
	const n = 40000
	qs := make([]*mdns.Msg, n)
	for i := range qs {
		qs[i] = new(mdns.Msg).SetQuestion("cn001.cluster.", mdns.TypeA)
	}
	// A large window: the flood does not wait for answers.
	got := blast(t, sv.addr, qs, n, 3*time.Second)
	full, truncated := 0, 0
	for _, r := range got {
		switch {
		case r == nil:
		case r.Truncated && len(r.Answer) == 0:
			truncated++
		case len(r.Answer) == 1:
			full++
		}
	}
	t.Logf("%d identical queries: %d answered, %d truncated, %d dropped or lost", n, full, truncated, n-full-truncated)
	if truncated == 0 || full >= n {
		t.Errorf("flood of %d identical queries: %d full answers, %d truncated; want the rate limit to truncate some", n, full, truncated)
	}
	if full < int(dns.DefaultRateWindow/time.Second)*dns.DefaultResponsesPerSecond/2 {
		t.Errorf("only %d full answers: the burst allowance (%d) was not granted", full, int(dns.DefaultRateWindow/time.Second)*dns.DefaultResponsesPerSecond)
	}
	if r := query(t, "tcp", sv.addr, "cn001.cluster", mdns.TypeA, true); len(r.Answer) != 1 {
		t.Errorf("TCP during the limit: %v", r)
	}
}

// TestAnswersDuringRebuild: while the handler rebuilds its snapshot for
// a pool of 100,000 nodes, a client keeps asking over a real UDP socket;
// every query is answered, from the old data or the new, never SERVFAIL
// and never left unanswered.
func TestAnswersDuringRebuild(t *testing.T) {
	big := bigState(100000)
	small := bigState(10)
	// Rate limiting off: one client asks for one name as fast as it can
	// (tens of thousands of times on a quiet machine), which is what
	// RRL exists to cut; this test is about rebuilds.
	h := dns.NewHandler(dns.HandlerOptions{RateLimit: dns.RateLimit{Off: true}})
	update := func(st *pool.State, v int64) {
		zs, err := dns.BuildZones(st, uint32(v), dns.ZoneOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		allow, _ := dns.AllowList(st)
		h.Update(dns.Data{Zones: zs, Allow: allow, Version: v})
	}
	update(small, 1)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 53, 40)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.ServeUDP(c) }()
	t.Cleanup(func() { c.Close(); <-served })

	during := 0
	for round := int64(2); during < 20 && round < 12; round++ {
		rebuilding := make(chan struct{})
		go func() {
			defer close(rebuilding)
			if round%2 == 0 {
				update(big, round)
			} else {
				update(small, round)
			}
		}()
		cl := &mdns.Client{Timeout: testenv.Timeout(5 * time.Second)}
		for running := true; running; {
			select {
			case <-rebuilding:
				running = false
			default:
			}
			r, _, err := cl.Exchange(new(mdns.Msg).SetQuestion("cn000005.cluster.", mdns.TypeA), c.LocalAddr().String())
			if err != nil {
				t.Fatalf("round %d: query during a rebuild: %v", round, err)
			}
			if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("round %d: answer during a rebuild: %v", round, r)
			}
			if running {
				during++
			}
		}
	}
	if during == 0 {
		t.Fatal("no query was answered while a rebuild ran")
	}
	t.Logf("%d queries answered while rebuilds of 100,000 nodes ran", during)
}
