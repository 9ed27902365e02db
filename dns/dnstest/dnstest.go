// Package dnstest builds the small pool that the dns, ntp and gateway
// tests render files for, through the real store (so the fixture obeys the
// pool's own validation).
//
// The pool (site.domain=cluster, MN mn1):
//
//	network mgmt 10.0.0.0/16   gateways 10.0.255.254,10.0.255.253  domain (site: cluster)
//	network ib   10.1.0.0/16   gateway  10.1.0.1 (the MN)          domain ib.cluster
//	network v6   fd00:10::/64  gateway  fd00:10::fffe              domain (site: cluster)
//
//	member mn1  mgmt 10.0.0.1  ib 10.1.0.1  v6 fd00:10::1  all services (the MN)
//	member sn1  mgmt 10.0.0.2  ib 10.1.0.2                 all services
//	member sn2  mgmt 10.0.0.3  v6 fd00:10::3               all services
//	member sn3  mgmt 10.0.0.4                              dhcp,tftp (no dns, no ntp)
//	member sn4  mgmt 10.0.0.5                              all services
//
//	node cn001  10.0.1.1      servicenodes mn1,sn1  (the MN and an SN)
//	node cn002  10.0.1.2      servicenodes sn1,sn2
//	node cn003  10.0.1.3      servicenodes sn3,sn2  (sn3 runs neither dns nor ntp)
//	node cn004  10.0.1.4      servicenodes sn2,sn1,mn1,sn4 (four servers)
//	node ib01   10.1.1.1      servicenodes sn1,mn1
//	node v6n01  fd00:10::101  servicenodes sn2,mn1
//	node spare                servicenodes mn1,sn1  (no address yet)
package dnstest

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/internal/golden"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// SQLite returns the DSN of a fresh SQLite database in t.TempDir().
func SQLite(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "pool.db") }

// Open opens and migrates the store at dsn (as member mn1) and closes it
// at the end of the test.
func Open(t testing.TB, dsn string) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		t.Fatalf("dnstest: open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// Seed fills an empty store with the pool described in the package
// documentation.
func Seed(t testing.TB, s *pool.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("dnstest: %s: %v", what, err)
		}
	}
	nets := []pool.Network{
		{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Gateways: []netip.Addr{a("10.0.255.254"), a("10.0.255.253")}, DynamicStart: a("10.0.200.1"), DynamicEnd: a("10.0.200.254"), MgtIfName: "eth0"},
		{Name: "ib", Prefix: netip.MustParsePrefix("10.1.0.0/16"), Gateways: []netip.Addr{a("10.1.0.1")}, Domain: "ib.cluster", MgtIfName: "ib0"},
		{Name: "v6", Prefix: netip.MustParsePrefix("fd00:10::/64"), Gateways: []netip.Addr{a("fd00:10::fffe")}},
	}
	for _, n := range nets {
		must("add network "+n.Name, s.AddNetwork(ctx, n, false))
	}
	_, err := s.Init(ctx, pool.InitOptions{
		MN:   pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.1"), "ib": a("10.1.0.1"), "v6": a("fd00:10::1")}},
		Site: map[string]string{siteschema.Domain: "cluster"},
	})
	must("init", err)
	members := []pool.Member{
		{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.2"), "ib": a("10.1.0.2")}},
		{Name: "sn2", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.3"), "v6": a("fd00:10::3")}},
		{Name: "sn3", Services: []service.Service{service.DHCP, service.TFTP}, Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.4")}},
		{Name: "sn4", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": a("10.0.0.5")}},
	}
	for _, m := range members {
		must("add member "+m.Name, s.AddMember(ctx, m, false))
	}
	nodes := []pool.Node{
		{Name: "cn001", IP: a("10.0.1.1"), ServiceNodes: []string{"mn1", "sn1"}, MACs: []string{"02:00:00:00:01:01"}},
		{Name: "cn002", IP: a("10.0.1.2"), ServiceNodes: []string{"sn1", "sn2"}},
		{Name: "cn003", IP: a("10.0.1.3"), ServiceNodes: []string{"sn3", "sn2"}},
		{Name: "cn004", IP: a("10.0.1.4"), ServiceNodes: []string{"sn2", "sn1", "mn1", "sn4"}},
		{Name: "ib01", IP: a("10.1.1.1"), ServiceNodes: []string{"sn1", "mn1"}},
		{Name: "v6n01", IP: a("fd00:10::101"), ServiceNodes: []string{"sn2", "mn1"}},
		{Name: "spare", ServiceNodes: []string{"mn1", "sn1"}},
	}
	must("add nodes", s.AddNodes(ctx, nodes, pool.AddOptions{}))
}

// State seeds a fresh SQLite store and returns its state.
func State(t testing.TB) *pool.State {
	t.Helper()
	s := Open(t, SQLite(t))
	Seed(t, s)
	st, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatalf("dnstest: load state: %v", err)
	}
	return st
}

// Node returns the named node of st or fails the test.
func Node(t testing.TB, st *pool.State, name string) pool.Node {
	t.Helper()
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("dnstest: no node %s", name)
	return pool.Node{}
}

// Golden compares got with the file testdata/name, or rewrites the file
// when the test runs with -update (see package internal/golden).
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// EnvRequireTools names the variable that turns a missing external tool
// (dig, chronyd, named-checkzone, keepalived) from a skip into a failure;
// CI sets it to 1.
const EnvRequireTools = "MNPOOL_REQUIRE_TOOLS"

// Tool returns the path of an external program; without it the test is
// skipped, or fails when $MNPOOL_REQUIRE_TOOLS is 1.
func Tool(t testing.TB, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(EnvRequireTools) == "1" {
		t.Fatalf("%s not found (Debian package %s) and %s=1", name, debPackage, EnvRequireTools)
	}
	t.Skipf("%s not found (Debian package %s); set %s=1 to make this a failure", name, debPackage, EnvRequireTools)
	return ""
}
