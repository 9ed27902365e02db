// Package pooltest gives a product's tests a seeded mnpool pool in one
// call, in the manner of net/http/httptest:
//
//	func TestMyProduct(t *testing.T) {
//		p := pooltest.New(t, pooltest.WithNodes(100))
//		// p.Store is open (member mn1), migrated and seeded; closed and
//		// removed when the test ends.
//	}
//
// The pool is on a fresh SQLite file by default, or with
// WithBackend(pooltest.Galera) in a fresh database on the Galera cluster
// named by MNPOOL_TEST_DSNS (comma-separated mysql: DSNs, one per node, as
// `scripts/galera.sh up` prints them), dropped when the test ends. Without
// MNPOOL_TEST_DSNS a Galera test is skipped, or failed when
// MNPOOL_REQUIRE_GALERA=1. Each runs every test on both.
//
// The seeded pool: network "mgmt" (WithPrefix, default 10.0.0.0/16) with
// the domain "cluster", a gateway at .254 of the first /24 and a dynamic
// range in the last /24; the members (WithMembers, default mn1, sn1, sn2;
// the first is the MN) at the first addresses, every service on; and the
// nodes cn0001... from the second /24 on, their servicenode lists rotating
// over the members ([mn1 sn1 sn2], [sn1 sn2 mn1], ...).
package pooltest

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/internal/schemas"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// Backend is where the pool's database lives.
type Backend string

// Backends.
const (
	SQLite Backend = "sqlite"
	Galera Backend = "galera"
)

// Backends lists every backend, for tests that run on each.
func Backends() []Backend { return []Backend{SQLite, Galera} }

// NetworkName is the name of the seeded network.
const NetworkName = "mgmt"

type options struct {
	backend Backend
	nodes   int
	members []string
	prefix  netip.Prefix
	self    string
	actor   string
	site    map[string]string
}

// Option changes the pool New seeds.
type Option func(*options)

// WithBackend puts the pool on SQLite (default) or Galera.
func WithBackend(b Backend) Option { return func(o *options) { o.backend = b } }

// WithNodes seeds n nodes (default 0).
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

// WithMembers names the members, MN first (default mn1, sn1, sn2).
func WithMembers(names ...string) Option { return func(o *options) { o.members = names } }

// WithPrefix sets the network's IPv4 prefix, /8 to /22 (default
// 10.0.0.0/16). A loopback prefix such as 127.42.0.0/16 gives nodes that
// a test's own servers (sshd, dhcpd) can answer for.
func WithPrefix(p netip.Prefix) Option { return func(o *options) { o.prefix = p } }

// WithSelf opens Store as this member (default the MN).
func WithSelf(member string) Option { return func(o *options) { o.self = member } }

// WithSite sets site values at init (for example autofailover=1).
func WithSite(kv map[string]string) Option { return func(o *options) { o.site = kv } }

// Pool is a seeded pool for one test.
type Pool struct {
	// Store is open as the Self member; closed when the test ends.
	Store *pool.Store
	// DSN opens the same pool (pool.Open), for a second store or a
	// program under test.
	DSN     string
	Backend Backend
	// Self is the member Store was opened for.
	Self string
	// Network, Members and Nodes are what was seeded.
	Network pool.Network
	Members []pool.Member
	Nodes   []pool.Node
}

// New creates a fresh database, migrates and seeds it, and opens Store on
// it. Everything is removed when the test ends. It fails the test on any
// error.
func New(t testing.TB, opts ...Option) *Pool {
	t.Helper()
	o := options{backend: SQLite, members: []string{"mn1", "sn1", "sn2"}, prefix: netip.MustParsePrefix("10.0.0.0/16"), actor: "pooltest"}
	for _, f := range opts {
		f(&o)
	}
	seed, err := plan(o)
	if err != nil {
		t.Fatalf("pooltest: %v", err)
	}
	p := &Pool{Backend: o.backend, Self: o.self, Network: seed.network, Members: seed.members, Nodes: seed.nodes}
	if p.Self == "" {
		p.Self = o.members[0]
	}
	switch o.backend {
	case SQLite:
		p.DSN = "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	case Galera:
		p.DSN = testgalera.Open(t).DSN()
	default:
		t.Fatalf("pooltest: backend %q (want %s or %s)", o.backend, SQLite, Galera)
	}
	ctx := context.Background()
	s, err := pool.Open(ctx, p.DSN, pool.WithMigrate(schemas.All()...), pool.WithLoopbackNetworks(), pool.WithSelf(p.Self), pool.WithActor(o.actor))
	if err != nil {
		t.Fatalf("pooltest: open %s: %v", p.DSN, err)
	}
	t.Cleanup(func() { s.Close() })
	p.Store = s
	if err := seed.apply(ctx, s, o.site); err != nil {
		t.Fatalf("pooltest: seeding the pool: %v", err)
	}
	return p
}

// Each runs f as a subtest per backend (sqlite, galera), each with its
// own pool from New with opts.
func Each(t *testing.T, f func(t *testing.T, p *Pool), opts ...Option) {
	for _, b := range Backends() {
		t.Run(string(b), func(t *testing.T) {
			f(t, New(t, append(append([]Option{}, opts...), WithBackend(b))...))
		})
	}
}

// Open opens another store on the pool (closed when the test ends), for
// example as another member with pool.WithSelf.
func (p *Pool) Open(t testing.TB, opts ...pool.Option) *pool.Store {
	t.Helper()
	s, err := pool.Open(context.Background(), p.DSN, append([]pool.Option{pool.WithLoopbackNetworks()}, opts...)...)
	if err != nil {
		t.Fatalf("pooltest: open %s: %v", p.DSN, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type seedPlan struct {
	network pool.Network
	members []pool.Member
	nodes   []pool.Node
}

// plan computes the seeded objects.
func plan(o options) (*seedPlan, error) {
	pf := o.prefix.Masked()
	if !pf.Addr().Is4() || pf.Bits() < 8 || pf.Bits() > 22 {
		return nil, fmt.Errorf("prefix %s: want an IPv4 prefix from /8 to /22", o.prefix)
	}
	if len(o.members) == 0 {
		return nil, fmt.Errorf("no members")
	}
	size := 1 << (32 - pf.Bits())
	if o.nodes < 0 || o.nodes > size-3*256 {
		return nil, fmt.Errorf("%d nodes: %s holds at most %d", o.nodes, pf, size-3*256)
	}
	at := func(off int) netip.Addr {
		b := pf.Addr().As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(off)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	sp := &seedPlan{network: pool.Network{Name: NetworkName, Prefix: pf, Domain: "cluster",
		Gateways: []netip.Addr{at(254)}, DynamicStart: at(size - 255), DynamicEnd: at(size - 2)}}
	for i, m := range o.members {
		sp.members = append(sp.members, pool.Member{Name: m, Addresses: map[string]netip.Addr{NetworkName: at(1 + i)}, Services: service.All()})
	}
	off := 256
	for i := 0; i < o.nodes; i++ {
		for off%256 == 0 || off%256 == 255 {
			off++
		}
		list := make([]string, len(o.members))
		for j := range list {
			list[j] = o.members[(i+j)%len(o.members)]
		}
		sp.nodes = append(sp.nodes, pool.Node{
			Name:         fmt.Sprintf("cn%04d", i+1),
			Groups:       []string{"compute"},
			MACs:         []string{fmt.Sprintf("02:00:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))},
			IP:           at(off),
			Network:      NetworkName,
			ServiceNodes: list,
		})
		off++
	}
	return sp, nil
}

func (sp *seedPlan) apply(ctx context.Context, s *pool.Store, site map[string]string) error {
	if err := s.AddNetwork(ctx, sp.network, false); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: sp.members[0], Site: site}); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, m := range sp.members[1:] {
		if err := s.AddMember(ctx, m, false); err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
	}
	if len(sp.nodes) > 0 {
		if err := s.AddNodes(ctx, sp.nodes, pool.AddOptions{}); err != nil {
			return fmt.Errorf("nodes: %w", err)
		}
	}
	return nil
}
