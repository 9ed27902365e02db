package makemn_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/stretchr/testify/require"
)

// Helpers copied from the pool package's tests, for the makemn tests that
// moved here with RunUnlocked.

func openStore(t testing.TB, dsn string, opts ...pool.Option) *pool.Store {
	t.Helper()
	ctx := context.Background()
	s, err := pool.Open(ctx, dsn, append([]pool.Option{pool.WithMigrate(), pool.WithSelf("mn1")}, opts...)...)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seed creates a pool: network mgmt 10.0.0.0/12 with a dynamic range,
// MN mn1 and SNs sn1, sn2, and n nodes cn00001.. with IPs from 10.1.0.1.
func seed(t testing.TB, s *pool.Store, n int) {
	t.Helper()
	ctx := context.Background()
	mustNet(t, s, "mgmt", "10.0.0.0/12", "10.15.255.1-10.15.255.254")
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
		if err := s.AddNodes(ctx, makeNodes(n), pool.AddOptions{}); err != nil {
			t.Fatalf("add nodes: %v", err)
		}
	}
}
func mustNet(t testing.TB, s *pool.Store, name, cidr, dyn string) {
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

// makeNodes returns n valid nodes on mgmt, alternating servicenode lists.
func makeNodes(n int) []pool.Node {
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
func roleFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"etc/xCATMN", "etc/xCATSN"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// dhcpProbe is a sync step that records what a DHCP renderer is told.
type dhcpProbe struct {
	calls []poolsync.Input
}

func (p *dhcpProbe) step() poolsync.Step {
	return poolsync.StepFunc("dhcp", func(_ context.Context, in *poolsync.Input) (poolsync.Change, error) {
		p.calls = append(p.calls, *in)
		return poolsync.Change{Changed: true, Detail: "rendered"}, nil
	})
}
func (p *dhcpProbe) last(t testing.TB) poolsync.Input {
	t.Helper()
	require.NotEmpty(t, p.calls, "the DHCP step ran")
	return p.calls[len(p.calls)-1]
}
func promoteAudits(t testing.TB, s *pool.Store) []pool.AuditEntry {
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
