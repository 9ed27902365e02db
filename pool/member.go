package pool

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/service"
)

func readMembers(ctx context.Context, tx *sqlx.Tx) ([]Member, error) {
	var rows []struct {
		Name      string `db:"name"`
		Services  string `db:"services"`
		Disabled  bool   `db:"disabled"`
		Heartbeat int64  `db:"heartbeat"`
	}
	if err := tx.SelectContext(ctx, &rows, "SELECT name, services, disabled, heartbeat FROM members ORDER BY name"); err != nil {
		return nil, err
	}
	out := make([]Member, len(rows))
	idx := make(map[string]int, len(rows))
	for i, r := range rows {
		m := Member{Name: r.Name, Disabled: r.Disabled, Heartbeat: r.Heartbeat, Addresses: map[string]netip.Addr{}, Services: []service.Service{}}
		for _, s := range splitList(r.Services) {
			m.Services = append(m.Services, service.Service(s))
		}
		out[i] = m
		idx[r.Name] = i
	}
	var addrs []struct {
		Member  string `db:"member"`
		Network string `db:"network"`
		IP      string `db:"ip"`
	}
	if err := tx.SelectContext(ctx, &addrs, "SELECT member, network, ip FROM member_addresses"); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		i, ok := idx[a.Member]
		if !ok {
			continue
		}
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			return nil, fmt.Errorf("pool: member %s in database has bad address %q", a.Member, a.IP)
		}
		out[i].Addresses[a.Network] = ip
	}
	return out, nil
}

// Members returns every member, sorted by name.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = readMembers(ctx, tx)
		return err
	})
	return out, err
}

// Member returns one member.
func (s *Store) Member(ctx context.Context, name string) (Member, error) {
	ms, err := s.Members(ctx)
	if err != nil {
		return Member{}, err
	}
	for _, m := range ms {
		if m.Name == name {
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%w: member %s", ErrNotFound, name)
}

// validateMember checks m against the networks, nodes and other members in
// tx. It normalizes m.Services.
func validateMember(ctx context.Context, tx *sqlx.Tx, m *Member) error {
	if err := ValidateName("member", m.Name); err != nil {
		return err
	}
	ns, err := loadNameSpace(ctx, tx)
	if err != nil {
		return err
	}
	if err := ns.free(kindMember, m.Name); err != nil {
		return err
	}
	svcs, err := normalizeServices(m.Services)
	if err != nil {
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	m.Services = svcs
	nets, err := readNetworks(ctx, tx)
	if err != nil {
		return err
	}
	byName := map[string]Network{}
	for _, n := range nets {
		byName[n.Name] = n
	}
	for netName, ip := range m.Addresses {
		n, ok := byName[netName]
		if !ok {
			return fmt.Errorf("%w: member %s: network %q does not exist (known: %s)", ErrInvalid, m.Name, netName, networkNames(nets))
		}
		ip = ip.Unmap()
		m.Addresses[netName] = ip
		if !n.Prefix.Contains(ip) {
			return fmt.Errorf("%w: member %s: address %s is outside network %s (%s)", ErrInvalid, m.Name, ip, n.Name, n.Prefix)
		}
		if n.InRange(ip) {
			return fmt.Errorf("%w: member %s: address %s is inside the dynamic range %s-%s of network %s", ErrInvalid, m.Name, ip, n.DynamicStart, n.DynamicEnd, n.Name)
		}
		if ip == n.Prefix.Addr() && n.Prefix.Bits() < ip.BitLen()-1 {
			return fmt.Errorf("%w: member %s: address %s is the network address of %s", ErrInvalid, m.Name, ip, n.Prefix)
		}
		if ip.Is4() && n.Prefix.Bits() < 31 && ip == lastAddr(n.Prefix) {
			return fmt.Errorf("%w: member %s: address %s is the broadcast address of %s", ErrInvalid, m.Name, ip, n.Prefix)
		}
		var owner string
		err := tx.GetContext(ctx, &owner, "SELECT name FROM nodes WHERE ip = ?", ip.String())
		if err == nil {
			return fmt.Errorf("%w: member %s: address %s is node %s's", ErrExists, m.Name, ip, owner)
		}
		err = tx.GetContext(ctx, &owner, "SELECT member FROM member_addresses WHERE ip = ? AND member <> ?", ip.String(), m.Name)
		if err == nil {
			return fmt.Errorf("%w: member %s: address %s is member %s's", ErrExists, m.Name, ip, owner)
		}
	}
	return nil
}

func networkNames(nets []Network) string {
	if len(nets) == 0 {
		return "none; add one with `mnpool network add`"
	}
	var s []string
	for _, n := range nets {
		s = append(s, n.Name)
	}
	return strings.Join(s, ", ")
}

func servicesString(svcs []service.Service) string {
	s := make([]string, len(svcs))
	for i, v := range svcs {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

// AddMember adds a member to the pool. With replace, an existing member's
// addresses, services and disabled flag are replaced (its heartbeat is
// kept).
func (s *Store) AddMember(ctx context.Context, m Member, replace bool) error {
	if m.Addresses == nil {
		m.Addresses = map[string]netip.Addr{}
	}
	m.Addresses = cloneAddrs(m.Addresses)
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		if err := validateMember(ctx, tx, &m); err != nil {
			return err
		}
		return s.writeMember(ctx, tx, m, replace)
	})
}

func cloneAddrs(in map[string]netip.Addr) map[string]netip.Addr {
	out := make(map[string]netip.Addr, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (s *Store) writeMember(ctx context.Context, tx *sqlx.Tx, m Member, replace bool) error {
	var exists int
	if err := tx.GetContext(ctx, &exists, "SELECT COUNT(*) FROM members WHERE name = ?", m.Name); err != nil {
		return err
	}
	action := "member.add"
	switch {
	case exists > 0 && !replace:
		return fmt.Errorf("%w: member %s", ErrExists, m.Name)
	case exists > 0:
		action = "member.set"
		if _, err := tx.ExecContext(ctx, "UPDATE members SET services = ?, disabled = ? WHERE name = ?", servicesString(m.Services), m.Disabled, m.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM member_addresses WHERE member = ?", m.Name); err != nil {
			return err
		}
	default:
		if _, err := tx.ExecContext(ctx, "INSERT INTO members (name, services, disabled, heartbeat) VALUES (?,?,?,0)", m.Name, servicesString(m.Services), m.Disabled); err != nil {
			if s.IsDuplicate(err) {
				return fmt.Errorf("%w: member %s", ErrExists, m.Name)
			}
			return err
		}
	}
	nets := make([]string, 0, len(m.Addresses))
	for n := range m.Addresses {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	for _, n := range nets {
		if _, err := tx.ExecContext(ctx, "INSERT INTO member_addresses (member, network, ip) VALUES (?,?,?)", m.Name, n, m.Addresses[n].String()); err != nil {
			if s.IsDuplicate(err) {
				return fmt.Errorf("%w: member %s address %s", ErrExists, m.Name, m.Addresses[n])
			}
			return err
		}
	}
	return s.Audit(ctx, tx, action, m.Name, m)
}

// RemoveMember removes a member. It refuses to remove the MN, and a member
// that is still in any node's servicenode list (move the nodes first).
func (s *Store) RemoveMember(ctx context.Context, name string) error {
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		m, err := readMaster(ctx, tx)
		if err != nil {
			return err
		}
		if m.Member == name {
			return fmt.Errorf("%w: member %s is the MN (epoch %d); make another member the MN first (makemn)", ErrConflict, name, m.Epoch)
		}
		var users int
		if err := tx.GetContext(ctx, &users, "SELECT COUNT(*) FROM nodes WHERE servicenodes = ? OR servicenodes LIKE ? OR servicenodes LIKE ? OR servicenodes LIKE ?",
			name, name+",%", "%,"+name, "%,"+name+",%"); err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("%w: member %s is in the servicenode list of %d nodes; move them first (snmove -s %s)", ErrConflict, name, users, name)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM members WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: member %s", ErrNotFound, name)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM member_addresses WHERE member = ?", name); err != nil {
			return err
		}
		return s.Audit(ctx, tx, "member.remove", name, nil)
	})
}
