package dns_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// bigState is a pool of n nodes on 10.0.0.0/15 with two DNS members,
// built in memory.
func bigState(n int) *pool.State {
	st := &pool.State{
		Site:     map[string]string{siteschema.Domain: "cluster"},
		Master:   pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/15")}},
		Members: []pool.Member{
			{Name: "mn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}},
			{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}},
		},
	}
	for i := 0; i < n; i++ {
		st.Nodes = append(st.Nodes, pool.Node{Name: fmt.Sprintf("cn%06d", i+1), Network: "mgmt",
			IP: netip.AddrFrom4([4]byte{10, byte(i / 62500), byte(1 + i%62500/250), byte(1 + i%250)}), ServiceNodes: []string{"mn1", "sn1"}})
	}
	return st
}

// rebuild is what the server does after a pool change: build the zones
// from the state and swap the handler's snapshot (packed answers
// included).
func rebuild(b *testing.B, h *dns.Handler, st *pool.State, v int64) {
	zs, err := dns.BuildZones(st, uint32(v), dns.ZoneOptions{})
	if err != nil {
		b.Fatal(err)
	}
	allow, err := dns.AllowList(st)
	if err != nil {
		b.Fatal(err)
	}
	h.Update(dns.Data{Zones: zs, Allow: allow, Version: v})
}

// BenchmarkRebuild is the cost of one reload after a pool change (one
// node added), at 5,000 and 100,000 nodes. Queries are answered from the
// old snapshot meanwhile (TestServerAnswersDuringRebuild). It also
// reports the heap the served snapshot holds.
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{5000, 100000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			st := bigState(n)
			h := dns.NewHandler(dns.HandlerOptions{})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rebuild(b, h, st, 1)
			runtime.GC()
			runtime.ReadMemStats(&after)
			served := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
			b.ReportAllocs()
			v := int64(1)
			cpu0 := cpuTime()
			for b.Loop() {
				v++
				st.Nodes[len(st.Nodes)-1].IP = netip.AddrFrom4([4]byte{10, 1, 255, byte(v)})
				rebuild(b, h, st, v)
			}
			// CPU time (user+system of the process, GC included) per
			// rebuild: on a busy machine the wall time says more
			// about the neighbours than about the rebuild.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			b.ReportMetric(served, "MiB-served")
			runtime.KeepAlive(h)
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandlerAnswer is the in-memory cost of one answer on the
// general path (miekg/dns messages), without the network.
func BenchmarkHandlerAnswer(b *testing.B) {
	h := dns.NewHandler(dns.HandlerOptions{})
	rebuild(b, h, bigState(5000), 1)
	lo := netip.MustParseAddr("127.0.0.1")
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "cn004321.cluster.", mdns.TypeA},
		{"PTR", "71.18.0.10.in-addr.arpa.", mdns.TypePTR},
		{"NXDOMAIN", "nosuch.cluster.", mdns.TypeA},
	} {
		b.Run(q.name, func(b *testing.B) {
			m := new(mdns.Msg).SetQuestion(q.qname, q.qtype)
			b.ReportAllocs()
			for b.Loop() {
				if r := h.Answer(m, lo, false); r.Rcode == mdns.RcodeServerFailure {
					b.Fatal("SERVFAIL")
				}
			}
		})
	}
}
