package dhcp_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, v := range s {
		out[i] = addr(v)
	}
	return out
}

// fixture is a small pool with an MN and SNs of different services:
//
//	mn1 (MN, all services): mgmt 10.0.0.1, svc 172.16.0.10, v6 fd00::1
//	sn1 (all services):     mgmt 10.0.0.2
//	sn2 (dhcp, dns):        mgmt 10.0.0.3, svc 172.16.0.12
//	sn3 (dns, ntp, no dhcp): mgmt 10.0.0.4
//
// and nodes that exercise list order, several MACs, a node without a MAC,
// one without an IP, one without a servicenode list and one on the second
// network.
func fixture(disjoint string) *pool.State {
	all := service.All()
	return &pool.State{
		Site: map[string]string{
			siteschema.Domain:        "cluster",
			siteschema.DisjointDHCPs: disjoint,
			siteschema.SharedTFTP:    "0",
			siteschema.Master:        "mn1",
		},
		Master: pool.Master{Member: "mn1", Epoch: 3},
		Networks: []pool.Network{
			{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Gateways: addrs("10.0.0.254", "10.0.0.253"),
				DynamicStart: addr("10.0.255.1"), DynamicEnd: addr("10.0.255.200"), Domain: "cluster"},
			{Name: "svc", Prefix: netip.MustParsePrefix("172.16.0.0/20"), Gateways: addrs("172.16.0.1"), Domain: "svc.cluster"},
			{Name: "v6", Prefix: netip.MustParsePrefix("fd00::/64")},
		},
		Members: []pool.Member{
			{Name: "mn1", Services: all, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.1"), "svc": addr("172.16.0.10"), "v6": addr("fd00::1")}},
			{Name: "sn1", Services: all, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.2")}},
			{Name: "sn2", Services: []service.Service{service.DHCP, service.DNS}, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.3"), "svc": addr("172.16.0.12")}},
			{Name: "sn3", Services: []service.Service{service.DNS, service.NTP}, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.4")}},
		},
		Nodes: []pool.Node{
			{Name: "cn001", Network: "mgmt", IP: addr("10.0.1.1"), MACs: []string{"00:1a:2b:3c:4d:01"}, ServiceNodes: []string{"sn1", "mn1"}},
			{Name: "cn002", Network: "mgmt", IP: addr("10.0.1.2"), MACs: []string{"00:1a:2b:3c:4d:02", "00:1a:2b:3c:4e:02"}, ServiceNodes: []string{"mn1", "sn1"}},
			{Name: "cn003", Network: "mgmt", IP: addr("10.0.1.3"), MACs: []string{"00:1a:2b:3c:4d:03"}, ServiceNodes: []string{"sn2", "sn1"}},
			{Name: "cn004", Network: "mgmt", IP: addr("10.0.1.4"), MACs: []string{"00:1a:2b:3c:4d:04"}, ServiceNodes: []string{"sn2", "mn1"}},
			{Name: "cn005", Network: "mgmt", IP: addr("10.0.1.5"), ServiceNodes: []string{"sn1", "sn2"}},
			{Name: "cn006", Network: "svc", IP: addr("172.16.1.6"), MACs: []string{"00:1a:2b:3c:4d:06"}, ServiceNodes: []string{"mn1", "sn2"}},
			{Name: "cn007", Network: "mgmt", MACs: []string{"00:1a:2b:3c:4d:07"}, ServiceNodes: []string{"sn1", "mn1"}},
			{Name: "cn008", Network: "mgmt", IP: addr("10.0.1.8"), MACs: []string{"00:1a:2b:3c:4d:08"}},
			{Name: "cn009", Network: "mgmt", IP: addr("10.0.1.9"), MACs: []string{"00:1a:2b:3c:4d:09"}, ServiceNodes: []string{"sn3", "sn2"}},
		},
	}
}

// requireDaemon returns the checker for f, skipping the test when the
// daemon is missing, unless CI=true or MNPOOL_REQUIRE_DAEMONS=1 make that
// a failure.
func requireDaemon(t testing.TB, f dhcp.Format) dhcp.Checker {
	t.Helper()
	var c dhcp.Checker
	if prog, ok := c.Program(f); !ok {
		if os.Getenv("CI") == "true" || os.Getenv("MNPOOL_REQUIRE_DAEMONS") == "1" {
			t.Fatalf("%s is not installed (apt-get install isc-dhcp-server kea-dhcp4-server)", prog)
		}
		t.Skipf("%s is not installed", prog)
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(2*time.Minute))
	t.Cleanup(cancel)
	return ctx
}
