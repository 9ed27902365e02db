package dns

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func fastState(n int) *pool.State {
	st := &pool.State{
		Site:     map[string]string{siteschema.Domain: "cluster"},
		Master:   pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}},
		Members: []pool.Member{
			{Name: "mn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}},
		},
	}
	for i := 0; i < n; i++ {
		st.Nodes = append(st.Nodes, pool.Node{Name: fmt.Sprintf("cn%05d", i+1), Network: "mgmt",
			IP: netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)}), ServiceNodes: []string{"mn1"}})
	}
	return st
}

func fastHandler(t testing.TB, n int) *Handler {
	t.Helper()
	st := fastState(n)
	zs, err := BuildZones(st, 1, ZoneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := AllowList(st)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(HandlerOptions{RateLimit: RateLimit{Off: true}})
	h.Update(Data{Zones: zs, Allow: allow, Version: 1})
	return h
}

// TestFastPathMatchesGeneralPath: for every kind of query the fast path
// serves, its answer is the general path's answer (same sections, same
// flags, the client's letter case in the question).
func TestFastPathMatchesGeneralPath(t *testing.T) {
	h := fastHandler(t, 300)
	s := h.snap.Load()
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name  string
		qtype uint16
		edns  bool
		rd    bool
	}{
		{"cn00001.cluster.", mdns.TypeA, false, true},
		{"CN00002.Cluster.", mdns.TypeA, true, false},
		{"cn00003.cluster.", mdns.TypeAAAA, false, true},
		{"nosuch.cluster.", mdns.TypeA, true, true},
		{"1.1.0.10.in-addr.arpa.", mdns.TypePTR, false, true},
		{"99.99.0.10.in-addr.arpa.", mdns.TypePTR, false, true},
		{"cluster.", mdns.TypeSOA, false, true},
		{"cluster.", mdns.TypeNS, true, true},
		{"1.0.10.in-addr.arpa.", mdns.TypePTR, false, true},
	} {
		t.Run(tc.name+mdns.TypeToString[tc.qtype], func(t *testing.T) {
			q := new(mdns.Msg).SetQuestion(tc.name, tc.qtype)
			q.RecursionDesired = tc.rd
			if tc.edns {
				q.SetEdns0(4096, true)
			}
			pkt, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			var key [258]byte
			f, ok := parseFast(pkt, key[:])
			if !ok {
				t.Fatal("fast path refused the query")
			}
			a, _ := s.wire.lookup(key[:], f)
			if a == nil {
				t.Fatal("no packed answer")
			}
			out := make([]byte, 4096)
			n := s.wire.write(out, pkt, f, a, h.udpSize)
			if n == 0 {
				t.Fatal("did not fit")
			}
			got := new(mdns.Msg)
			if err := got.Unpack(out[:n]); err != nil {
				t.Fatalf("fast answer does not parse: %v", err)
			}
			want := h.Answer(q, lo, false)
			// The fast path's owner names point at the question, so they
			// carry the client's letter case (as BIND's do).
			if strings.ToLower(got.String()) != strings.ToLower(want.String()) {
				t.Errorf("fast path:\n%v\ngeneral path:\n%v", got, want)
			}
		})
	}
}

// BenchmarkUDPHotPath is one query on the fast path, from the parsed
// datagram to the answer written to a loopback socket: 0 allocs/op.
func BenchmarkUDPHotPath(b *testing.B) {
	h := NewHandler(HandlerOptions{})
	st := fastState(5000)
	zs, _ := BuildZones(st, 1, ZoneOptions{})
	allow, _ := AllowList(st)
	h.Update(Data{Zones: zs, Allow: allow, Version: 1})
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	w, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	r := &udpReader{h: h, c: c}
	// A wildcard socket answers with the source address set.
	rw := &udpReader{h: h, c: w, pktinfo: enablePktinfo(w)}
	rw.reply = srcOOB(rw.replyB[:], netip.MustParseAddr("127.0.0.1"))
	b.Run("A-wildcard", func(b *testing.B) {
		pkt, _ := new(mdns.Msg).SetQuestion("cn04321.cluster.", mdns.TypeA).Pack()
		b.ReportAllocs()
		for b.Loop() {
			rw.serve(pkt, to)
		}
	})
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "cn04321.cluster.", mdns.TypeA},
		{"PTR", "71.18.0.10.in-addr.arpa.", mdns.TypePTR},
		{"NXDOMAIN", "nosuch.cluster.", mdns.TypeA},
	} {
		b.Run(q.name, func(b *testing.B) {
			pkt, _ := new(mdns.Msg).SetQuestion(q.qname, q.qtype).Pack()
			b.ReportAllocs()
			for b.Loop() {
				r.serve(pkt, to)
			}
		})
	}
}

// BenchmarkUDPServeLoop is a query and its answer through a real
// ServeUDP loop (recvmmsg/sendmmsg on Linux) and a loopback client: the
// allocations counted are the whole process's, server loop included.
func BenchmarkUDPServeLoop(b *testing.B) {
	h := NewHandler(HandlerOptions{RateLimit: RateLimit{Off: true}})
	st := fastState(5000)
	zs, _ := BuildZones(st, 1, ZoneOptions{})
	allow, _ := AllowList(st)
	h.Update(Data{Zones: zs, Allow: allow, Version: 1})
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.ServeUDP(c) }()
	defer func() { c.Close(); <-done }()
	cl, err := net.DialUDP("udp", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	pkt, _ := new(mdns.Msg).SetQuestion("cn04321.cluster.", mdns.TypeA).Pack()
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := cl.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastAnswer is the user-space part of the fast path for the
// dnsperf benchmark's query mix (80 % A of nodes, 10 % PTR, 10 %
// NXDOMAIN) over 5,000 nodes: parse, access list, look up, write the
// answer, rate limiting. No system call; 0 allocs/op.
func BenchmarkFastAnswer(b *testing.B) {
	const n = 5000
	h := NewHandler(HandlerOptions{})
	st := fastState(n)
	zs, _ := BuildZones(st, 1, ZoneOptions{})
	allow, _ := AllowList(st)
	h.Update(Data{Zones: zs, Allow: allow, Version: 1})
	var qs [][]byte
	for i := 0; i < 10000; i++ {
		k := (i * 7919) % n
		ip := netip.AddrFrom4([4]byte{10, 0, byte(1 + k/250), byte(1 + k%250)})
		m := new(mdns.Msg)
		switch i % 10 {
		case 8:
			arpa, _ := mdns.ReverseAddr(ip.String())
			m.SetQuestion(arpa, mdns.TypePTR)
		case 9:
			m.SetQuestion(fmt.Sprintf("nosuch%05d.cluster.", k), mdns.TypeA)
		default:
			m.SetQuestion(fmt.Sprintf("cn%05d.cluster.", k+1), mdns.TypeA)
		}
		m.Id = uint16(i)
		p, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		qs = append(qs, p)
	}
	r := &udpReader{h: h}
	s := h.snap.Load()
	// Clients spread over a /16 so that rate limiting never drops.
	from := make([]netip.AddrPort, 256)
	for i := range from {
		from[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 7}), 5353)
	}
	answered := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := qs[i%len(qs)]
		c := from[i%len(from)]
		i++
		f, ok := parseFast(q, r.key[:])
		if !ok || !allowed(s.allow, c.Addr()) {
			b.Fatalf("query %d left the fast path", i)
		}
		a, kind := s.wire.lookup(r.key[:], f)
		if a == nil {
			b.Fatalf("query %d: no answer", i)
		}
		if s.wire.write(r.out[:], q, f, a, h.udpSize) > 0 {
			k := h.rrl.key(r.rkey[:], c.Addr(), kind, f.qtype, int(a.rcode), r.key[:f.nameLen])
			if h.rrl.check(k) == rrlSend {
				answered++
			}
		}
	}
	if answered == 0 {
		b.Fatal("nothing answered")
	}
}
