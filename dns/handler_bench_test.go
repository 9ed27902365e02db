package dns_test

import (
	"fmt"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/pool"
)

// bigState is a pool of n nodes on 10.0.0.0/16 with two DNS members, built
// in memory.
func bigState(n int) *pool.State {
	st := &pool.State{
		Site:     map[string]string{pool.SiteDomain: "cluster"},
		Master:   pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}},
		Members: []pool.Member{
			{Name: "mn1", Services: pool.AllServices(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}},
			{Name: "sn1", Services: pool.AllServices(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}},
		},
	}
	for i := 0; i < n; i++ {
		st.Nodes = append(st.Nodes, pool.Node{Name: fmt.Sprintf("cn%05d", i+1), Network: "mgmt",
			IP: netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)}), ServiceNodes: []string{"mn1", "sn1"}})
	}
	return st
}

// BenchmarkBuildZones is the cost of one reload after a pool change
// (5000 nodes): building the zones and swapping the handler's snapshot.
func BenchmarkBuildZones(b *testing.B) {
	st := bigState(5000)
	h := dns.NewHandler(dns.HandlerOptions{})
	b.ReportAllocs()
	for b.Loop() {
		zs, err := dns.BuildZones(st, 1, dns.ZoneOptions{})
		if err != nil {
			b.Fatal(err)
		}
		h.Update(zs, nil, 1)
	}
}

// BenchmarkHandlerAnswer is the in-memory cost of one authoritative
// answer, without the network.
func BenchmarkHandlerAnswer(b *testing.B) {
	zs, err := dns.BuildZones(bigState(5000), 1, dns.ZoneOptions{})
	if err != nil {
		b.Fatal(err)
	}
	h := dns.NewHandler(dns.HandlerOptions{})
	h.Update(zs, nil, 1)
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
			m := new(mdns.Msg).SetQuestion(q.qname, q.qtype)
			b.ReportAllocs()
			for b.Loop() {
				if r := h.Answer(m, false); r.Rcode == mdns.RcodeServerFailure {
					b.Fatal("SERVFAIL")
				}
			}
		})
	}
}
