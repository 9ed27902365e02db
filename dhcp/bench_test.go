package dhcp_test

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// benchState is a pool of n nodes on one /14 network, served by the MN
// mn1 and the SNs sn1..sn4; each node's servicenode list is two members,
// spread round robin.
func benchState(n int) *pool.State {
	members := []string{"mn1", "sn1", "sn2", "sn3", "sn4"}
	st := &pool.State{
		Site:   map[string]string{siteschema.Domain: "cluster", siteschema.DisjointDHCPs: "0"},
		Master: pool.Master{Member: "mn1", Epoch: 1},
		Networks: []pool.Network{{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/14"), Gateways: addrs("10.0.0.254", "10.0.0.253"),
			DynamicStart: addr("10.3.255.1"), DynamicEnd: addr("10.3.255.254"), Domain: "cluster"}},
	}
	for i, m := range members {
		st.Members = append(st.Members, pool.Member{Name: m, Services: service.All(),
			Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})}})
	}
	base := u32(addr("10.0.1.0"))
	st.Nodes = make([]pool.Node, n)
	for i := range n {
		ip := base + uint32(i)
		st.Nodes[i] = pool.Node{
			Name:         fmt.Sprintf("cn%06d", i+1),
			Network:      "mgmt",
			IP:           netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}),
			MACs:         []string{fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))},
			ServiceNodes: []string{members[i%5], members[(i+1)%5]},
		}
	}
	return st
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// maxRSSMB is the process's peak resident set (VmHWM) in MB. It only
// grows, so run one benchmark per process to read it for that one.
func maxRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkRender renders an SN's configuration (every node, as with
// disjointdhcps=0). Goals on the 2-core machine: 100,000 nodes under
// 300 ms (ISC) and 500 ms (Kea).
func BenchmarkRender(b *testing.B) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		for _, n := range []int{5000, 100000} {
			b.Run(fmt.Sprintf("%s/nodes=%d", f, n), func(b *testing.B) {
				st := benchState(n)
				b.ReportAllocs()
				var size int
				for b.Loop() {
					cfg, err := dhcp.Render(st, "sn1", dhcp.Options{Format: f})
					if err != nil {
						b.Fatal(err)
					}
					size = len(cfg.Data)
				}
				b.ReportMetric(float64(size)/1e6, "MB-file")
				b.ReportMetric(maxRSSMB(), "maxRSS-MB")
			})
		}
	}
}

// BenchmarkParse reads a 100,000-node file back (makedhcp NODERANGE, -d
// and -q start from it).
func BenchmarkParse(b *testing.B) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		b.Run(string(f), func(b *testing.B) {
			cfg, err := dhcp.Render(benchState(100000), "sn1", dhcp.Options{Format: f})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dhcp.Parse(cfg.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
