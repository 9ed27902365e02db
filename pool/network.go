package pool

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/jmoiron/sqlx"
)

type networkRow struct {
	Name         string `db:"name"`
	CIDR         string `db:"cidr"`
	Gateways     string `db:"gateways"`
	DynamicStart string `db:"dynamic_start"`
	DynamicEnd   string `db:"dynamic_end"`
	Domain       string `db:"domain"`
	MgtIfName    string `db:"mgtifname"`
}

func (r networkRow) network() (Network, error) {
	n := Network{Name: r.Name, Domain: r.Domain, MgtIfName: r.MgtIfName}
	var err error
	if n.Prefix, err = netip.ParsePrefix(r.CIDR); err != nil {
		return n, fmt.Errorf("pool: network %s in database has bad CIDR %q", r.Name, r.CIDR)
	}
	for _, g := range splitList(r.Gateways) {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return n, fmt.Errorf("pool: network %s in database has bad gateway %q", r.Name, g)
		}
		n.Gateways = append(n.Gateways, a)
	}
	if r.DynamicStart != "" {
		n.DynamicStart, _ = netip.ParseAddr(r.DynamicStart)
		n.DynamicEnd, _ = netip.ParseAddr(r.DynamicEnd)
	}
	return n, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func readNetworks(ctx context.Context, tx *sqlx.Tx) ([]Network, error) {
	var rows []networkRow
	if err := tx.SelectContext(ctx, &rows, "SELECT name, cidr, gateways, dynamic_start, dynamic_end, domain, mgtifname FROM networks ORDER BY name"); err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(rows))
	for _, r := range rows {
		n, err := r.network()
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Networks returns every network, sorted by name.
func (s *Store) Networks(ctx context.Context) ([]Network, error) {
	var out []Network
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = readNetworks(ctx, tx)
		return err
	})
	return out, err
}

// WithLoopbackNetworks lets the store accept loopback networks
// (127.0.0.0/8, ::1/128), which CheckNetwork refuses. It is for tests and
// single-host demos whose "nodes" are loopback addresses; no renderer
// serves such a network.
func WithLoopbackNetworks() Option { return func(o *options) { o.loopbackNets = true } }

// AddNetwork creates a network. With replace it updates an existing one;
// a changed CIDR or dynamic range is checked against the nodes and
// members already on the network.
func (s *Store) AddNetwork(ctx context.Context, n Network, replace bool) error {
	if err := checkNetwork(n, s.o.loopbackNets); err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		nets, err := readNetworks(ctx, tx)
		if err != nil {
			return err
		}
		var others []Network
		for _, o := range nets {
			if o.Name == n.Name {
				if !replace {
					return fmt.Errorf("%w: network %s (use --replace to change it)", ErrExists, n.Name)
				}
				continue
			}
			others = append(others, o)
		}
		if err := checkAgainst(n, others); err != nil {
			return err
		}
		if err := checkNetworkAgainstUsers(ctx, tx, n); err != nil {
			return err
		}
		var gws []string
		for _, g := range n.Gateways {
			gws = append(gws, g.String())
		}
		q := s.Dialect().Upsert("networks", []string{"name"}, []string{"name", "cidr", "gateways", "dynamic_start", "dynamic_end", "domain", "mgtifname"})
		if _, err := tx.ExecContext(ctx, q, n.Name, n.Prefix.String(), strings.Join(gws, ","), addrString(n.DynamicStart), addrString(n.DynamicEnd), n.Domain, n.MgtIfName); err != nil {
			return err
		}
		return s.Audit(ctx, tx, "network.add", n.Name, n)
	})
}

// checkNetworkAgainstUsers verifies that the nodes and member addresses on
// network n stay inside it and out of its dynamic range.
func checkNetworkAgainstUsers(ctx context.Context, tx *sqlx.Tx, n Network) error {
	var ips []struct {
		Name string `db:"name"`
		IP   string `db:"ip"`
	}
	if err := tx.SelectContext(ctx, &ips, "SELECT name, ip FROM nodes WHERE network = ? AND ip IS NOT NULL", n.Name); err != nil {
		return err
	}
	var mips []struct {
		Name string `db:"member"`
		IP   string `db:"ip"`
	}
	if err := tx.SelectContext(ctx, &mips, "SELECT member, ip FROM member_addresses WHERE network = ?", n.Name); err != nil {
		return err
	}
	check := func(kind, name, ip string) error {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil
		}
		if !n.Prefix.Contains(a) {
			return fmt.Errorf("%w: network %s: %s %s has address %s outside %s", ErrInvalid, n.Name, kind, name, a, n.Prefix)
		}
		if n.InRange(a) {
			return fmt.Errorf("%w: network %s: dynamic range %s-%s includes the address %s of %s %s", ErrInvalid, n.Name, n.DynamicStart, n.DynamicEnd, a, kind, name)
		}
		return nil
	}
	for _, r := range ips {
		if err := check("node", r.Name, r.IP); err != nil {
			return err
		}
	}
	for _, r := range mips {
		if err := check("member", r.Name, r.IP); err != nil {
			return err
		}
	}
	return nil
}

// RemoveNetwork deletes a network that no node and no member uses.
func (s *Store) RemoveNetwork(ctx context.Context, name string) error {
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		var users int
		if err := tx.GetContext(ctx, &users, "SELECT (SELECT COUNT(*) FROM nodes WHERE network = ?) + (SELECT COUNT(*) FROM member_addresses WHERE network = ?)", name, name); err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("%w: network %s is used by %d nodes or member addresses", ErrConflict, name, users)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM networks WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: network %s", ErrNotFound, name)
		}
		return s.Audit(ctx, tx, "network.remove", name, nil)
	})
}
