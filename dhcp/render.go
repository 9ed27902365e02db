package dhcp

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// Config is one rendered configuration with what went into it.
type Config struct {
	Format Format `json:"format"`
	// Member the configuration is for, and the master record it was
	// rendered under.
	Member string `json:"member"`
	MN     string `json:"mn"`
	Epoch  int64  `json:"epoch"`
	// Dynamic is set when at least one dynamic range is in the file.
	Dynamic bool `json:"dynamic"`
	// Networks served, by name, sorted.
	Networks []string `json:"networks"`
	// Nodes with a reservation, and reservations (one per MAC).
	Nodes int `json:"nodes"`
	Hosts int `json:"hosts"`
	// Skipped lists nodes the member would serve that got no
	// reservation (no IP, no MAC), sorted by node.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Notes are things left out of the file on purpose (an IPv6 network).
	Notes []string `json:"notes,omitempty"`
	// Data is the file content.
	Data []byte `json:"-"`
}

// Skipped is a node without a reservation and why.
type Skipped struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// plan is the format-independent content of one member's configuration.
type plan struct {
	member  string
	mn      string
	epoch   int64
	set     settings
	dynamic bool
	// authoritative: the member answers for the whole subnet (NAKs
	// unknown addresses). Only the member serving the dynamic range is;
	// the others would NAK the clients of the MN's range.
	authoritative bool
	subnets       []*subnet
	ifaces        []string
	keaSocket     string
	keaLeases     string
}

type subnet struct {
	net     pool.Network
	domain  string
	self    netip.Addr
	next    netip.Addr // next-server of the subnet; invalid: none
	dns     []netip.Addr
	ntp     []netip.Addr
	dynamic bool
	hosts   []host
}

type host struct {
	node *pool.Node
	next netip.Addr // per-host next-server; invalid: the subnet's
	srv  *servers   // nil: the subnet's DNS and NTP servers
}

// servers are the DNS and NTP servers of the nodes that share one
// servicenode list on one network, computed once per list.
type servers struct {
	dns, ntp []netip.Addr
	isc, kea []byte // pre-rendered options
}

// Render renders member's DHCP configuration from st. It validates every
// value it writes and fails with ErrInvalid naming the first bad one, or
// ErrNotServer when member is no DHCP server of the pool.
func Render(st *pool.State, member string, o Options) (*Config, error) {
	if o.Format == "" {
		o.Format = FormatISC
	}
	if o.Format != FormatISC && o.Format != FormatKea {
		return nil, fmt.Errorf("%w: format %q: want isc or kea", ErrFormat, o.Format)
	}
	p, cfg, err := buildPlan(st, member, o)
	if err != nil {
		return nil, err
	}
	if o.Format == FormatKea {
		cfg.Data = writeKea(p, cfg)
	} else {
		cfg.Data = writeISC(p, cfg)
	}
	return cfg, nil
}

// buildPlan checks the member and the site settings, picks the networks
// the member serves and the reservations on them.
func buildPlan(st *pool.State, member string, o Options) (*plan, *Config, error) {
	me, err := dhcpMember(st, member)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPlan(st, member, o)
	if err != nil {
		return nil, nil, err
	}
	cfg := &Config{Format: o.Format, Member: member, MN: p.mn, Epoch: p.epoch, Networks: []string{}}
	members := make(map[string]*pool.Member, len(st.Members))
	for i := range st.Members {
		members[st.Members[i].Name] = &st.Members[i]
	}
	reserved := map[netip.Addr]string{} // addresses no node may take
	byNet, err := p.addSubnets(st.Networks, me, o.ServeDynamic, reserved, cfg)
	if err != nil {
		return nil, nil, err
	}
	p.authoritative = p.dynamic
	cfg.Dynamic = p.dynamic
	reserveMemberAddrs(st.Members, byNet, reserved)
	if err := p.addHosts(st, me, members, byNet, reserved, o.Select, cfg); err != nil {
		return nil, nil, err
	}
	return p, cfg, nil
}

// dhcpMember returns the member named member, which must run the dhcp
// service, or fails with ErrNotServer.
func dhcpMember(st *pool.State, member string) (pool.Member, error) {
	if st == nil {
		return pool.Member{}, fmt.Errorf("%w: no pool state", ErrInvalid)
	}
	if err := checkLabel("member name", member); err != nil {
		return pool.Member{}, err
	}
	me, ok := st.Member(member)
	if !ok {
		// st.Member needs sorted members; fall back to a scan.
		for _, m := range st.Members {
			if m.Name == member {
				me, ok = m, true
			}
		}
	}
	if !ok {
		return pool.Member{}, fmt.Errorf("%w: %s is not a member of the pool", ErrNotServer, member)
	}
	if !me.Runs(service.DHCP) {
		return pool.Member{}, fmt.Errorf("%w: member %s does not run the dhcp service (its services: %s)", ErrNotServer, member, servicesString(me.Services))
	}
	return me, nil
}

// newPlan starts member's plan with the site settings, the master record,
// the Kea paths and the interfaces, each checked.
func newPlan(st *pool.State, member string, o Options) (*plan, error) {
	set, err := siteSettings(st.Site, member)
	if err != nil {
		return nil, err
	}
	if st.Master.Member != "" {
		if err := checkLabel("MN name", st.Master.Member); err != nil {
			return nil, err
		}
	}
	p := &plan{member: member, mn: st.Master.Member, epoch: st.Master.Epoch, set: set,
		keaSocket: o.KeaControlSocket, keaLeases: o.KeaLeaseFile, ifaces: o.Interfaces}
	if p.keaSocket == "" {
		p.keaSocket = DefaultKeaControlSocket
	}
	if p.keaLeases == "" {
		p.keaLeases = DefaultKeaLeaseFile
	}
	if err := checkPath("Kea control socket", p.keaSocket, 107); err != nil {
		return nil, err
	}
	if err := checkPath("Kea lease file", p.keaLeases, 4095); err != nil {
		return nil, err
	}
	if p.ifaces == nil {
		p.ifaces = set.interfaces
	}
	if len(p.ifaces) == 0 {
		p.ifaces = []string{"*"}
	}
	for _, i := range p.ifaces {
		if err := checkInterface(i); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addSubnets adds, in name order, a subnet for each network me has an
// address on, reserves the networks' gateways and returns the subnets by
// network name. An IPv6 network is left out with a note in cfg.
func (p *plan) addSubnets(networks []pool.Network, me pool.Member, serveDynamic bool, reserved map[netip.Addr]string, cfg *Config) (map[string]*subnet, error) {
	nets := slices.Clone(networks)
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	byNet := map[string]*subnet{}
	for _, n := range nets {
		self, ok := me.Addresses[n.Name]
		if !ok {
			continue
		}
		if ipv6, err := checkServedNetwork(n); err != nil {
			return nil, err
		} else if ipv6 {
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("network %s (%s) is IPv6; DHCPv4 leaves it out", n.Name, n.Prefix))
			continue
		}
		sn, err := p.newSubnet(n, me, self, serveDynamic)
		if err != nil {
			return nil, err
		}
		for _, g := range n.Gateways {
			reserved[g] = "a gateway of network " + n.Name
		}
		p.dynamic = p.dynamic || sn.dynamic
		p.subnets = append(p.subnets, sn)
		byNet[n.Name] = sn
		cfg.Networks = append(cfg.Networks, n.Name)
	}
	return byNet, nil
}

// checkServedNetwork checks the name and CIDR of a network a member has
// an address on; ipv6 is true for an IPv6 network, which DHCPv4 leaves
// out.
func checkServedNetwork(n pool.Network) (ipv6 bool, err error) {
	if err := checkNetName(n.Name); err != nil {
		return false, err
	}
	if !n.Prefix.IsValid() || !n.Prefix.Addr().Is4() {
		if n.Prefix.IsValid() && n.Prefix.Addr().Is6() {
			return true, nil
		}
		return false, fmt.Errorf("%w: network %s: bad CIDR %q", ErrInvalid, n.Name, n.Prefix)
	}
	if n.Prefix != n.Prefix.Masked() || n.Prefix.Bits() > 30 {
		return false, fmt.Errorf("%w: network %s: CIDR %s: want a network address with a prefix length of at most /30", ErrInvalid, n.Name, n.Prefix)
	}
	if id := u32(n.Prefix.Addr()); id == 0 {
		return false, fmt.Errorf("%w: network %s: %s cannot be served (Kea subnet id 0)", ErrInvalid, n.Name, n.Prefix)
	}
	return false, nil
}

// newSubnet is network n as me (at address self) serves it: its domain,
// its dynamic range when serveDynamic, and me as its next-server, DNS and
// NTP server when me runs them. It fails when n breaks the store's
// network rules or overlaps a subnet already in the plan.
func (p *plan) newSubnet(n pool.Network, me pool.Member, self netip.Addr, serveDynamic bool) (*subnet, error) {
	sn := &subnet{net: n, self: self, domain: n.Domain}
	if why := hostAddrProblem(n.Prefix, self); why != "" {
		return nil, fmt.Errorf("%w: member %s: address %s on network %s is %s", ErrInvalid, me.Name, self, n.Name, why)
	}
	if sn.domain == "" {
		sn.domain = p.set.domain
	}
	// The network rules are the store's (pool.CheckNetwork): one
	// function, so the store never accepts what this renderer refuses.
	if err := pool.CheckNetwork(n); err != nil {
		return nil, poolRuleError{err}
	}
	if n.DynamicStart.IsValid() {
		if n.InRange(self) {
			return nil, fmt.Errorf("%w: member %s: address %s is inside the dynamic range %s-%s of network %s", ErrInvalid, me.Name, self, n.DynamicStart, n.DynamicEnd, n.Name)
		}
		sn.dynamic = serveDynamic
	}
	for _, prev := range p.subnets {
		if prev.net.Prefix.Overlaps(n.Prefix) {
			return nil, fmt.Errorf("%w: networks %s (%s) and %s (%s) overlap", ErrInvalid, prev.net.Name, prev.net.Prefix, n.Name, n.Prefix)
		}
	}
	if me.Runs(service.TFTP) {
		sn.next = self
	}
	if me.Runs(service.DNS) {
		sn.dns = []netip.Addr{self}
	}
	if me.Runs(service.NTP) {
		sn.ntp = []netip.Addr{self}
	}
	return sn, nil
}

// reserveMemberAddrs reserves the members' addresses on the served
// networks: no node may take them.
func reserveMemberAddrs(members []pool.Member, byNet map[string]*subnet, reserved map[netip.Addr]string) {
	for _, m := range members {
		for netName, a := range m.Addresses {
			if _, served := byNet[netName]; served {
				reserved[a] = "member " + m.Name + "'s address"
			}
		}
	}
}

// addHosts picks the reservations: the nodes on the served networks,
// only those listing the member when disjointdhcps=1.
func (p *plan) addHosts(st *pool.State, me pool.Member, members map[string]*pool.Member, byNet map[string]*subnet, reserved map[netip.Addr]string, sel func(string) bool, cfg *Config) error {
	if len(byNet) == 0 {
		return nil
	}
	isMN := st.IsMN(me.Name)
	book := newAddrBook(reserved, len(st.Nodes))
	cache := serverCache{p: p, self: me.Name, members: members, lists: map[string]*servers{}}
	prev := ""
	for k, idx := range nameOrder(st.Nodes) {
		n := &st.Nodes[idx]
		if k > 0 && n.Name == prev {
			return fmt.Errorf("%w: node %q is in the pool twice", ErrInvalid, n.Name)
		}
		prev = n.Name
		sn := p.subnetOf(n, byNet)
		if sn == nil || !p.reserves(n, me.Name, isMN) || sel != nil && !sel(n.Name) {
			continue
		}
		if err := checkLabel("node name", n.Name); err != nil {
			return err
		}
		if why := missingAddress(n); why != "" {
			cfg.Skipped = append(cfg.Skipped, Skipped{n.Name, why})
			continue
		}
		if err := book.add(sn, n); err != nil {
			return err
		}
		h := host{node: n, srv: cache.get(sn, n.ServiceNodes)}
		if !sn.next.IsValid() {
			h.next = firstWith(service.TFTP, sn.net, n.ServiceNodes, members)
		}
		sn.hosts = append(sn.hosts, h)
		cfg.Nodes++
		cfg.Hosts += len(n.MACs)
	}
	return nil
}

// nameOrder returns the indexes of nodes in name order (stable, so
// duplicate names end up side by side in their original order).
func nameOrder(nodes []pool.Node) []int {
	order := make([]int, len(nodes))
	sorted := true
	for i := range order {
		order[i] = i
		if i > 0 && nodes[i].Name <= nodes[i-1].Name {
			sorted = false
		}
	}
	if !sorted {
		sort.SliceStable(order, func(a, b int) bool { return nodes[order[a]].Name < nodes[order[b]].Name })
	}
	return order
}

// reserves reports whether the member named self gives node n a
// reservation: every node when disjointdhcps=0, else only the nodes
// listing it (and, on the MN, the nodes with no servicenode list).
func (p *plan) reserves(n *pool.Node, self string, isMN bool) bool {
	return !p.set.disjoint || slices.Contains(n.ServiceNodes, self) || len(n.ServiceNodes) == 0 && isMN
}

// missingAddress says why node n can have no reservation, or "".
func missingAddress(n *pool.Node) string {
	if !n.IP.IsValid() {
		return "no IP address"
	}
	if len(n.MACs) == 0 {
		return "no MAC address"
	}
	return ""
}

// addrBook holds the addresses taken so far: reserved ones and the IPs
// and MACs of the nodes added. Integer keys: hashing 100,000 MAC strings
// costs more than the rest of the render.
type addrBook struct {
	reserved map[netip.Addr]string
	ips      map[uint32]string
	macs     map[uint64]string
}

func newAddrBook(reserved map[netip.Addr]string, nodes int) *addrBook {
	return &addrBook{reserved: reserved, ips: make(map[uint32]string, nodes), macs: make(map[uint64]string, nodes)}
}

// add checks node n's IP on subnet sn and its MACs against the book and
// takes them.
func (b *addrBook) add(sn *subnet, n *pool.Node) error {
	if why := hostAddrProblem(sn.net.Prefix, n.IP); why != "" {
		return fmt.Errorf("%w: node %s: IP %s is %s (network %s)", ErrInvalid, n.Name, n.IP, why, sn.net.Name)
	}
	if sn.net.InRange(n.IP) {
		return fmt.Errorf("%w: node %s: IP %s is inside the dynamic range %s-%s of network %s", ErrInvalid, n.Name, n.IP, sn.net.DynamicStart, sn.net.DynamicEnd, sn.net.Name)
	}
	if what, taken := b.reserved[n.IP]; taken {
		return fmt.Errorf("%w: node %s: IP %s is %s", ErrInvalid, n.Name, n.IP, what)
	}
	if other, dup := b.ips[u32(n.IP)]; dup {
		return fmt.Errorf("%w: node %s: IP %s is node %s's too", ErrInvalid, n.Name, n.IP, other)
	}
	b.ips[u32(n.IP)] = n.Name
	for _, m := range n.MACs {
		if !isMAC(m) {
			return fmt.Errorf("%w: node %s: MAC %q: want six lower-case hex bytes separated by ':'", ErrInvalid, n.Name, m)
		}
		k := macKey(m)
		if other, dup := b.macs[k]; dup {
			return fmt.Errorf("%w: node %s: MAC %s is node %s's too", ErrInvalid, n.Name, m, other)
		}
		b.macs[k] = n.Name
	}
	return nil
}

// serverCache computes the DNS and NTP servers (serversFor) once per
// network and servicenode list.
type serverCache struct {
	p       *plan
	self    string
	members map[string]*pool.Member
	lists   map[string]*servers
	key     []byte
}

// get returns the servers of list on sn's network; nil for an empty list
// or one that keeps the subnet's servers.
func (c *serverCache) get(sn *subnet, list []string) *servers {
	if len(list) == 0 {
		return nil
	}
	c.key = append(c.key[:0], sn.net.Name...)
	for _, s := range list {
		c.key = append(c.key, ',')
		c.key = append(c.key, s...)
	}
	srv, ok := c.lists[string(c.key)]
	if !ok {
		srv = c.p.serversFor(sn, c.self, list, c.members)
		c.lists[string(c.key)] = srv
	}
	return srv
}

// subnetOf returns the served subnet of node n, or nil.
func (p *plan) subnetOf(n *pool.Node, byNet map[string]*subnet) *subnet {
	if n.Network != "" {
		return byNet[n.Network]
	}
	if !n.IP.IsValid() {
		return nil
	}
	for _, sn := range p.subnets {
		if sn.net.Prefix.Contains(n.IP) {
			return sn
		}
	}
	return nil
}

// serversFor orders the DNS and NTP servers of a servicenode list on
// sn's network: the list order, the rendering member first when it is in
// the list, only members running the service and having an address on
// the network. A nil result means the subnet's defaults.
func (p *plan) serversFor(sn *subnet, self string, list []string, members map[string]*pool.Member) *servers {
	pick := func(svc service.Service) []netip.Addr {
		var out []netip.Addr
		if slices.Contains(list, self) {
			if m := members[self]; m != nil && m.Runs(svc) {
				out = append(out, sn.self)
			}
		}
		for _, name := range list {
			m := members[name]
			if name == self || m == nil || !m.Runs(svc) {
				continue
			}
			if a, ok := memberaddr.OnNetwork(*m, sn.net.Name); ok && a.Is4() && sn.net.Prefix.Contains(a) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
	srv := &servers{dns: pick(service.DNS), ntp: pick(service.NTP)}
	// A list without any DNS (NTP) server keeps the subnet's: a host
	// cannot take an option away from its subnet.
	if len(srv.dns) == 0 {
		srv.dns = sn.dns
	}
	if len(srv.ntp) == 0 {
		srv.ntp = sn.ntp
	}
	if slices.Equal(srv.dns, sn.dns) && slices.Equal(srv.ntp, sn.ntp) {
		return nil
	}
	srv.isc = iscServerOptions(srv, sn)
	srv.kea = keaServerOptions(srv, sn)
	return srv
}

// firstWith returns the address on network of the first member of list
// running svc, or the zero Addr.
func firstWith(svc service.Service, network pool.Network, list []string, members map[string]*pool.Member) netip.Addr {
	for _, name := range list {
		if m := members[name]; m != nil && m.Runs(svc) {
			if a, ok := memberaddr.OnNetwork(*m, network.Name); ok && a.Is4() && network.Prefix.Contains(a) {
				return a
			}
		}
	}
	return netip.Addr{}
}

func servicesString(s []service.Service) string {
	if len(s) == 0 {
		return "none"
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}

// yesNo is used in headers.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// poolRuleError is a broken rule of the store's (pool.ErrInvalid)
// reported by the renderer: its message is pool's, and errors.Is matches
// both ErrInvalid and pool.ErrInvalid.
type poolRuleError struct{ err error }

func (e poolRuleError) Error() string   { return e.err.Error() }
func (e poolRuleError) Unwrap() []error { return []error{ErrInvalid, e.err} }
