// Package storetest holds the store fixtures the tests of pool and of the
// packages built on it share: the backends every store test runs against
// (SQLite, and the local Galera cluster through MNPOOL_TEST_DSNS), a
// migrated store, and a seeded pool of an MN, two SNs and n nodes.
//
// It is for tests only; embedders use the public pooltest package.
package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/stretchr/testify/require"
)

// Backend is one store backend under test.
type Backend struct {
	Name string
	DSN  func(t testing.TB) string
}

// Backends lists the backends every store test runs against: the embedded
// SQLite and the local three-node Galera cluster (skipped without
// MNPOOL_TEST_DSNS, a failure with MNPOOL_REQUIRE_GALERA=1).
func Backends() []Backend {
	return []Backend{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "pool.db") }},
		{"galera", func(t testing.TB) string { return testgalera.Open(t).DSN() }},
	}
}

// EachBackend runs f as a subtest per backend with a fresh, migrated store.
func EachBackend(t *testing.T, f func(t *testing.T, s *pool.Store)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := Open(t, b.DSN(t))
			f(t, s)
		})
	}
}

// Open opens and migrates the store at dsn as member mn1, closed when the
// test ends; opts come after those defaults.
func Open(t testing.TB, dsn string, opts ...pool.Option) *pool.Store {
	t.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, dsn, append([]pool.Option{pool.WithMigrate(), pool.WithSelf("mn1")}, opts...)...)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Seed creates a pool: network mgmt 10.0.0.0/12 with a dynamic range,
// MN mn1 and SNs sn1, sn2, and n nodes cn00001.. with IPs from 10.1.0.1.
func Seed(t testing.TB, s *pool.Store, n int) {
	t.Helper()
	ctx := context.Background()
	MustNet(t, s, "mgmt", "10.0.0.0/12", "10.15.255.1-10.15.255.254")
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}}); err != nil {
		t.Fatalf("init: %v", err)
	}
	for i, sn := range []string{"sn1", "sn2"} {
		m := pool.Member{Name: sn, Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})}}
		if err := s.AddMember(ctx, m, false); err != nil {
			t.Fatalf("add member %s: %v", sn, err)
		}
	}
	if n > 0 {
		if err := s.AddNodes(ctx, MakeNodes(n), pool.AddOptions{}); err != nil {
			t.Fatalf("add nodes: %v", err)
		}
	}
}

// MustNet adds network name (cidr, dynamic range dyn, gateway .4,
// domain cluster) or fails the test.
func MustNet(t testing.TB, s *pool.Store, name, cidr, dyn string) {
	t.Helper()
	start, end, err := pool.ParseRange(dyn)
	if err != nil {
		t.Fatal(err)
	}
	n := pool.Network{Name: name, Prefix: netip.MustParsePrefix(cidr), Gateways: []netip.Addr{netip.MustParsePrefix(cidr).Addr().Next().Next().Next().Next()}, DynamicStart: start, DynamicEnd: end, Domain: "cluster"}
	if err := s.AddNetwork(context.Background(), n, false); err != nil {
		t.Fatalf("add network: %v", err)
	}
}

// MakeNodes returns n valid nodes on mgmt, alternating servicenode lists.
func MakeNodes(n int) []pool.Node {
	lists := [][]string{{"sn1", "sn2"}, {"sn2", "mn1"}, {"mn1", "sn1"}}
	out := make([]pool.Node, n)
	base := netip.MustParseAddr("10.1.0.0")
	ip := base
	for i := range out {
		ip = ip.Next()
		if b := ip.As4(); b[3] == 0 || b[3] == 255 {
			ip = ip.Next()
			if ip.As4()[3] == 0 {
				ip = ip.Next()
			}
		}
		out[i] = pool.Node{
			Name:         fmt.Sprintf("cn%05d", i+1),
			Groups:       []string{"compute", fmt.Sprintf("rack%d", i/40+1)},
			MACs:         []string{fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))},
			IP:           ip,
			Network:      "mgmt",
			ServiceNodes: lists[i%3],
		}
	}
	return out
}

// PromoteAudits returns the pool.promote audit records, oldest first.
func PromoteAudits(t testing.TB, s *pool.Store) []pool.AuditEntry {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 1000)
	require.NoError(t, err)
	var out []pool.AuditEntry
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Action == "pool.promote" {
			out = append(out, log[i])
		}
	}
	return out
}
