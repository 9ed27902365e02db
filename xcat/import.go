package xcat

import (
	"slices"
	"strconv"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Importing from xCAT: `mnpool import-xcat DIR` reads the CSV files that
// xCAT's `tabdump` writes (DIR/site.csv, networks.csv, nodelist.csv,
// noderes.csv, servicenode.csv, mac.csv, hosts.csv, as dumpxCATdb names
// them) and creates the pool from them. What has no place in the pool, or
// cannot be mapped without guessing (regular-expression attributes, a
// gateway of <xcatmaster>, per-network DHCP servers, ...), is reported as
// an Issue and left out. Values that are wrong (a bad IP, an invalid
// name, two nodes with one MAC) stop the import before anything is
// written.

// Tables are the tables import reads, in reading order. site,
// networks and nodelist are required.
func Tables() []string {
	return []string{"site", "networks", "nodelist", "servicenode", "hosts", "noderes", "mac", TableMembers, TableNodes}
}

func xcatRequired(table string) bool {
	return table == "site" || table == "networks" || table == "nodelist"
}

// Issue is something import left out, with how often it happened.
type Issue struct {
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
	// Count is how many rows had it; Keys names the first of them (node,
	// group, network or site key).
	Count int      `json:"count"`
	Keys  []string `json:"keys"`
}

// NodeIssue is a value import could not map for one node.
type NodeIssue struct {
	Node   string `json:"node"`
	Table  string `json:"table"`
	Column string `json:"column"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func (x *Import) unmapped(node, table, column, value, reason string) {
	x.Unmapped = append(x.Unmapped, NodeIssue{Node: node, Table: table, Column: column, Value: value, Reason: reason})
}

// maxIssueKeys is how many keys an issue names.
const maxIssueKeys = 5

// Import is a pool built from an xCAT dump: what Import would write,
// and what it leaves out.
type Import struct {
	Site     map[string]string `json:"site"`
	MN       pool.Member       `json:"mn"`
	Members  []pool.Member     `json:"members"` // the SNs
	Networks []pool.Network    `json:"networks"`
	Nodes    []pool.Node       `json:"nodes"`
	Issues   []Issue           `json:"issues"`
	// Unmapped lists, node by node, every value import could not map
	// (a regular expression that does not match or evaluate, a
	// group-level value that would give every node the same address).
	Unmapped []NodeIssue `json:"unmapped"`
	issueIdx map[string]int
}

func (x *Import) issue(table, column, key, reason string) {
	if x.issueIdx == nil {
		x.issueIdx = map[string]int{}
	}
	k := table + "\x00" + column + "\x00" + reason
	i, ok := x.issueIdx[k]
	if !ok {
		i = len(x.Issues)
		x.issueIdx[k] = i
		x.Issues = append(x.Issues, Issue{Table: table, Column: column, Reason: reason})
	}
	is := &x.Issues[i]
	is.Count++
	if len(is.Keys) < maxIssueKeys && key != "" && !slices.Contains(is.Keys, key) {
		is.Keys = append(is.Keys, key)
	}
}

// Options tune Plan.
type Options struct {
	// MN names the management node when site.master is an address that
	// the hosts table does not resolve, or to override it.
	MN string
}

// xcatProblems collects the errors that stop an import.
type xcatProblems []string

func (p *xcatProblems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

func (p xcatProblems) err() error {
	if len(p) == 0 {
		return nil
	}
	const show = 20
	msg := strings.Join(p[:min(len(p), show)], "; ")
	if len(p) > show {
		msg += fmt.Sprintf("; and %d more", len(p)-show)
	}
	return fmt.Errorf("%w: xCAT import: %s", ErrInvalid, msg)
}

// xcatColumns lists, per table, the columns import maps and the columns it
// knowingly ignores (they have no meaning in the pool and are not worth a
// report). Any other column with a value is reported.
func xcatMapped(table string) (mapped, quiet []string) {
	quiet = []string{"comments", "disable"}
	switch table {
	case TableMembers:
		return colsMembers, quiet
	case TableNodes:
		return colsNodes, quiet
	case "site":
		return []string{"key", "value"}, quiet
	case "networks":
		return []string{"netname", "net", "mask", "mgtifname", "gateway", "dynamicrange", "domain"}, quiet
	case "nodelist":
		return []string{"node", "groups", "hidden"}, append(quiet, "status", "statustime", "appstatus", "appstatustime", "updatestatus", "updatestatustime", "primarysn")
	case "servicenode":
		return []string{"node", "nameserver", "dhcpserver", "tftpserver", "conserver", "ntpserver"}, quiet
	case "hosts":
		return []string{"node", "ip", "otherinterfaces"}, quiet
	case "noderes":
		return []string{"node", "servicenode", "xcatmaster"}, quiet
	case "mac":
		return []string{"node", "mac"}, quiet
	}
	return nil, quiet
}

func xcatNo(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "no", "n":
		return true
	}
	return false
}

func xcatYes(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "2", "yes", "y":
		return true
	}
	return false
}

// Plan reads the tables from fsys (DIR/TABLE.csv) and builds the
// pool they describe, without touching any database.
func Plan(fsys fs.FS, o Options) (*Import, error) {
	tabs := map[string]*Tabdump{}
	x := &Import{Site: map[string]string{}}
	var probs xcatProblems
	for _, name := range Tables() {
		f, err := fsys.Open(name + ".csv")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if name == TableMembers || name == TableNodes {
					continue // only an mnpool export has them
				}
				if xcatRequired(name) {
					probs.add("%s.csv is missing (write it with `tabdump %s > %s.csv`)", name, name, name)
				} else {
					x.issue(name, "", "", "table not found ("+name+".csv); nothing imported from it")
				}
				continue
			}
			return nil, fmt.Errorf("pool: xCAT import: %w", err)
		}
		t, err := ReadTabdump(f)
		f.Close()
		if err != nil {
			probs.add("%s.csv: %v", name, detail(err))
			continue
		}
		mapped, quiet := xcatMapped(name)
		if !t.Has(mapped[0]) {
			probs.add("%s.csv has no %s column (columns: %s)", name, mapped[0], strings.Join(t.Columns, ","))
			continue
		}
		tabs[name] = t
		for _, c := range t.Columns {
			if slices.Contains(mapped, c) || slices.Contains(quiet, c) {
				continue
			}
			for _, r := range t.Rows {
				v := t.Get(r, c)
				if name == "servicenode" && xcatNo(v) {
					continue // a service flag that is off: nothing lost
				}
				if v != "" && !t.Disabled(r) {
					x.issue(name, c, t.Get(r, mapped[0]), "not imported: the pool has no such attribute")
				}
			}
		}
	}
	if others, err := fs.Glob(fsys, "*.csv"); err == nil {
		for _, f := range others {
			name := strings.TrimSuffix(f, ".csv")
			if !slices.Contains(Tables(), name) {
				x.issue(name, "", "", "table not imported: the pool does not use it")
			}
		}
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	b := &xcatBuilder{x: x, t: tabs, probs: &probs}
	b.nodelist()
	b.hosts()
	b.networks()
	b.site(o.MN)
	b.members()
	b.mnpoolMembers()
	b.nodes()
	b.mnpoolNodes()
	if err := probs.err(); err != nil {
		return nil, err
	}
	sort.SliceStable(x.Issues, func(i, j int) bool {
		if x.Issues[i].Table != x.Issues[j].Table {
			return x.Issues[i].Table < x.Issues[j].Table
		}
		return x.Issues[i].Column < x.Issues[j].Column
	})
	return x, nil
}

type xcatBuilder struct {
	x     *Import
	t     map[string]*Tabdump
	probs *xcatProblems

	nodeOrder []string            // nodelist order
	groups    map[string][]string // node -> groups, in order
	inGroup   map[string][]string // group -> nodes
	hidden    map[string]bool
	hostIP    map[string]netip.Addr // node -> hosts.ip
	ipHost    map[netip.Addr]string // hosts.ip -> node
	otherIPs  map[string][]netip.Addr
	isMember  map[string]map[string]netip.Addr // member -> its addresses
}

// rows calls fn for every enabled row of table, reporting disabled ones.
func (b *xcatBuilder) rows(table string, fn func(t *Tabdump, key string, r TabdumpRow)) {
	t := b.t[table]
	if t == nil {
		return
	}
	mapped, _ := xcatMapped(table)
	for _, r := range t.Rows {
		key := strings.TrimSpace(t.Get(r, mapped[0]))
		if t.Disabled(r) {
			b.x.issue(table, "disable", key, "row is disabled; skipped")
			continue
		}
		if key == "" {
			b.probs.add("%s.csv line %d: empty %s", table, r.Line, mapped[0])
			continue
		}
		fn(t, key, r)
	}
}

func (b *xcatBuilder) nodelist() {
	b.groups, b.inGroup, b.hidden = map[string][]string{}, map[string][]string{}, map[string]bool{}
	b.rows("nodelist", func(t *Tabdump, node string, r TabdumpRow) {
		if _, dup := b.groups[node]; dup {
			b.probs.add("nodelist.csv line %d: node %s is listed twice", r.Line, node)
			return
		}
		b.nodeOrder = append(b.nodeOrder, node)
		var gs []string
		groups, _ := b.attr(t, r, "nodelist", "groups", node, node)
		for _, g := range strings.Split(groups, ",") {
			if g = strings.TrimSpace(g); g != "" && !slices.Contains(gs, g) {
				gs = append(gs, g)
				b.inGroup[g] = append(b.inGroup[g], node)
			}
		}
		b.groups[node] = gs
		if xcatYes(t.Get(r, "hidden")) {
			b.hidden[node] = true
		}
	})
}

// isGroup reports whether key names a group rather than a node.
func (b *xcatBuilder) isGroup(key string) bool {
	_, node := b.groups[key]
	_, group := b.inGroup[key]
	return group && !node
}

// attr returns node's value of table.column from row r (keyed by key: the
// node itself or one of its groups), evaluating xCAT regular expressions.
// A value that cannot be mapped is listed for the node and ok is false.
func (b *xcatBuilder) attr(t *Tabdump, r TabdumpRow, table, column, key, node string) (v string, ok bool) {
	raw := strings.TrimSpace(t.Get(r, column))
	if !IsRegex(raw) {
		return raw, true
	}
	v, err := Eval(raw, node)
	if err != nil {
		reason := strings.TrimPrefix(detail(err), ErrNoMatch.Error()+": ")
		if errors.Is(err, ErrNoMatch) {
			reason = "regular expression of " + key + " does not match the node name"
		}
		b.x.unmapped(node, table, column, raw, reason)
		return "", false
	}
	return v, true
}

func (b *xcatBuilder) hosts() {
	b.hostIP, b.ipHost, b.otherIPs = map[string]netip.Addr{}, map[netip.Addr]string{}, map[string][]netip.Addr{}
	rows := b.keyed("hosts")
	t := b.t["hosts"]
	for _, key := range sortedKeys(rows) {
		if _, node := b.groups[key]; !node && !b.isGroup(key) {
			b.x.issue("hosts", "node", key, "not a node or group of nodelist; row skipped")
		}
	}
	for _, node := range b.nodeOrder {
		r, key, ok := b.lookup(rows, node)
		if !ok {
			continue
		}
		b.hostRow(t, r, key, node)
	}
}

func (b *xcatBuilder) hostRow(t *Tabdump, r TabdumpRow, key, node string) {
	if ipS, ok := b.attr(t, r, "hosts", "ip", key, node); ok && ipS != "" {
		ip, err := netip.ParseAddr(ipS)
		switch {
		case err != nil && key == node && !IsRegex(t.Get(r, "ip")):
			b.probs.add("hosts.csv line %d: node %s: ip %q is not an IP address", r.Line, node, clip(ipS))
			return
		case err != nil:
			b.x.unmapped(node, "hosts", "ip", t.Get(r, "ip"), fmt.Sprintf("gives %q, not an IP address", clip(ipS)))
		case key != node && !IsRegex(t.Get(r, "ip")):
			b.x.unmapped(node, "hosts", "ip", ipS, "the address of group "+key+" would be every node's; give each node its own (or a regular expression)")
		default:
			ip = ip.Unmap()
			if other, dup := b.ipHost[ip]; dup {
				b.probs.add("hosts.csv line %d: %s has the address %s of %s", r.Line, node, ip, other)
				return
			}
			b.hostIP[node] = ip
			b.ipHost[ip] = node
		}
	}
	// otherinterfaces: "name:ip,name:ip" (or '|' separated).
	other, ok := b.attr(t, r, "hosts", "otherinterfaces", key, node)
	if !ok {
		return
	}
	for _, part := range strings.FieldsFunc(other, func(c rune) bool { return c == ',' || c == '|' }) {
		_, ipPart, ok := strings.Cut(strings.TrimSpace(part), ":")
		ip, err := netip.ParseAddr(strings.TrimSpace(ipPart))
		if !ok || err != nil {
			b.x.issue("hosts", "otherinterfaces", node, "entry is not NAME:IP; not imported")
			continue
		}
		b.otherIPs[node] = append(b.otherIPs[node], ip.Unmap())
	}
}

func maskBits(mask string) (int, bool) {
	if n, ok := strings.CutPrefix(strings.TrimSpace(mask), "/"); ok {
		bits, err := strconv.Atoi(n)
		return bits, err == nil && bits >= 0 && bits <= 128
	}
	m, err := netip.ParseAddr(strings.TrimSpace(mask))
	if err != nil || !m.Is4() {
		return 0, false
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	return bits, v == 0
}

func (b *xcatBuilder) networks() {
	seen := map[string]bool{}
	b.rows("networks", func(t *Tabdump, name string, r TabdumpRow) {
		if seen[name] {
			b.probs.add("networks.csv line %d: network %s is listed twice", r.Line, name)
			return
		}
		seen[name] = true
		n := pool.Network{Name: name, Domain: strings.TrimSpace(t.Get(r, "domain"))}
		addr, err := netip.ParseAddr(strings.TrimSpace(t.Get(r, "net")))
		bits, ok := maskBits(t.Get(r, "mask"))
		if err != nil || !ok || bits > addr.BitLen() || (addr.Is6() && !strings.HasPrefix(strings.TrimSpace(t.Get(r, "mask")), "/")) {
			b.probs.add("networks.csv line %d: network %s: net %q / mask %q is not an IPv4 network and contiguous mask (or an IPv6 network and /LENGTH)", r.Line, name, clip(t.Get(r, "net")), clip(t.Get(r, "mask")))
			return
		}
		n.Prefix = netip.PrefixFrom(addr, bits)
		switch gw := strings.TrimSpace(t.Get(r, "gateway")); {
		case gw == "":
		case strings.EqualFold(gw, "<xcatmaster>"):
			b.x.issue("networks", "gateway", name, "<xcatmaster> (each member its nodes' gateway) is not imported; give the network its real gateways with `mnpool network add NAME CIDR --replace --gateway IP`")
		default:
			for _, g := range strings.Split(gw, ",") {
				a, err := netip.ParseAddr(strings.TrimSpace(g))
				if err != nil {
					b.probs.add("networks.csv line %d: network %s: gateway %q is not an IP address", r.Line, name, clip(g))
					return
				}
				n.Gateways = append(n.Gateways, a.Unmap())
			}
		}
		if dr := strings.TrimSpace(t.Get(r, "dynamicrange")); dr != "" {
			s, e, err := pool.ParseRange(dr)
			if err != nil {
				b.x.issue("networks", "dynamicrange", name, "not one START-END range; not imported")
			} else {
				n.DynamicStart, n.DynamicEnd = s, e
			}
		}
		if ifn := strings.TrimSpace(t.Get(r, "mgtifname")); ifn != "" {
			if ifNameRE.MatchString(ifn) {
				n.MgtIfName = ifn
			} else {
				b.x.issue("networks", "mgtifname", name, "not an interface name (e.g. !remote! relays); not imported")
			}
		}
		if err := pool.CheckNetwork(n); err != nil {
			b.probs.add("networks.csv line %d: %v", r.Line, detail(err))
			return
		}
		b.x.Networks = append(b.x.Networks, n)
	})
	sort.Slice(b.x.Networks, func(i, j int) bool { return b.x.Networks[i].Name < b.x.Networks[j].Name })
}

func (b *xcatBuilder) networkOf(ip netip.Addr) (string, bool) {
	for _, n := range b.x.Networks {
		if n.Prefix.Contains(ip) {
			return n.Name, true
		}
	}
	return "", false
}

func (b *xcatBuilder) site(mnOverride string) {
	var master string
	b.rows("site", func(t *Tabdump, key string, r TabdumpRow) {
		v := t.Get(r, "value")
		if key == siteschema.Master {
			master = strings.TrimSpace(v)
			return
		}
		if err := siteschema.ValidateKey(key); err != nil {
			b.x.issue("site", "key", key, "not a valid site key; not imported")
			return
		}
		if err := siteschema.ValidateValue(key, v); err != nil {
			b.x.issue("site", "value", key, "not imported, breaks the site schema: "+detail(err))
			return
		}
		switch {
		case key == siteschema.DisjointDHCPs && v == "1":
			b.x.issue("site", "value", key, "disjointdhcps=1: a pool wants 0 (every member serves every node of its network); imported as it is, change it with `mnpool site set disjointdhcps=0`")
		case key == siteschema.SharedTFTP && v == "1":
			b.x.issue("site", "value", key, "sharedtftp=1: a pool wants 0; imported as it is, change it with `mnpool site set sharedtftp=0`")
		}
		b.x.Site[key] = v
	})
	mn := mnOverride
	if mn == "" {
		switch ip, err := netip.ParseAddr(master); {
		case master == "":
			b.probs.add("site.master is not set; name the MN with --mn")
			return
		case err == nil:
			host, ok := b.ipHost[ip.Unmap()]
			if !ok {
				b.probs.add("site.master is the address %s, which no hosts row has; name the MN with --mn", ip)
				return
			}
			mn = host
		default:
			mn, _, _ = strings.Cut(master, ".")
		}
	}
	if err := pool.ValidateName("member", mn); err != nil {
		b.probs.add("MN: %v", detail(err))
		return
	}
	b.x.MN = pool.Member{Name: mn}
	if ip, err := netip.ParseAddr(master); err == nil {
		if _, ok := b.hostIP[mn]; !ok {
			b.hostIP[mn] = ip.Unmap()
		}
	}
}

// lookup returns the row of table for node: its own row, else the row of
// its first group that has one (xCAT's precedence), and the key used.
func (b *xcatBuilder) lookup(rows map[string]TabdumpRow, node string) (TabdumpRow, string, bool) {
	if r, ok := rows[node]; ok {
		return r, node, true
	}
	for _, g := range b.groups[node] {
		if r, ok := rows[g]; ok {
			return r, g, true
		}
	}
	return TabdumpRow{}, "", false
}

func (b *xcatBuilder) keyed(table string) map[string]TabdumpRow {
	out := map[string]TabdumpRow{}
	b.rows(table, func(t *Tabdump, key string, r TabdumpRow) {
		if _, dup := out[key]; dup {
			b.probs.add("%s.csv line %d: %s has a second row", table, r.Line, key)
			return
		}
		out[key] = r
	})
	return out
}

func (b *xcatBuilder) memberAddrs(name string) map[string]netip.Addr {
	addrs := map[string]netip.Addr{}
	ips := append([]netip.Addr(nil), b.otherIPs[name]...)
	if ip, ok := b.hostIP[name]; ok {
		ips = append([]netip.Addr{ip}, ips...)
	}
	for _, ip := range ips {
		net, ok := b.networkOf(ip)
		if !ok {
			b.x.issue("hosts", "ip", name, "member address is in no network of the pool; not imported")
			continue
		}
		if _, dup := addrs[net]; dup {
			b.x.issue("hosts", "otherinterfaces", name, "a second member address on one network; not imported")
			continue
		}
		addrs[net] = ip
	}
	if len(addrs) == 0 {
		b.x.issue("hosts", "ip", name, "member has no address on any network; it gets no nodes until `mnpool member set NAME --ip NETWORK=IP`")
	}
	return addrs
}

func (b *xcatBuilder) members() {
	if b.x.MN.Name == "" {
		return
	}
	b.isMember = map[string]map[string]netip.Addr{b.x.MN.Name: nil}
	sn := b.keyed("servicenode")
	t := b.t["servicenode"]
	services := func(r TabdumpRow) []service.Service {
		var out []service.Service
		for _, c := range []struct {
			col string
			svc service.Service
		}{{"dhcpserver", service.DHCP}, {"nameserver", service.DNS}, {"ntpserver", service.NTP}, {"tftpserver", service.TFTP}, {"conserver", service.Console}} {
			if xcatYes(t.Get(r, c.col)) {
				out = append(out, c.svc)
			}
		}
		return out
	}
	var names []string
	for _, key := range sortedKeys(sn) {
		if b.isGroup(key) {
			names = append(names, b.inGroup[key]...)
			continue
		}
		names = append(names, key)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := b.isMember[name]; ok {
			continue
		}
		if err := pool.ValidateName("member", name); err != nil {
			b.probs.add("servicenode: %v", detail(err))
			continue
		}
		r, _, _ := b.lookup(sn, name)
		m := pool.Member{Name: name, Services: services(r), Addresses: b.memberAddrs(name)}
		b.isMember[name] = m.Addresses
		b.x.Members = append(b.x.Members, m)
	}
	mn := &b.x.MN
	mn.Addresses = b.memberAddrs(mn.Name)
	b.isMember[mn.Name] = mn.Addresses
	if r, _, ok := b.lookup(sn, mn.Name); ok {
		mn.Services = append(services(r), service.DB)
	} else {
		mn.Services = service.All()
	}
	if len(b.x.Members) > 0 {
		b.x.issue("servicenode", "", "", "service db: xCAT has no servicenode column for it; the MN gets it, give it to the SNs holding a database replica with `mnpool member set NAME --services ...`")
	}
}

func (b *xcatBuilder) nodes() {
	if b.x.MN.Name == "" {
		return
	}
	noderes := b.keyed("noderes")
	macs := b.keyed("mac")
	nr, mt := b.t["noderes"], b.t["mac"]
	// Group-level rows that cannot apply.
	for _, key := range sortedKeys(macs) {
		r := macs[key]
		if b.isGroup(key) {
			if !IsRegex(strings.TrimSpace(mt.Get(r, "mac"))) {
				b.x.issue("mac", "mac", key, "group-level MAC (the same for every node) not imported")
			}
			continue
		}
		if _, ok := b.isMember[key]; ok && r.Line > 0 {
			b.x.issue("mac", "mac", key, "MAC of a member not imported (members have none in the pool)")
		}
	}
	for _, key := range sortedKeys(noderes) {
		if _, ok := b.groups[key]; !ok && !b.isGroup(key) {
			b.x.issue("noderes", "node", key, "not a node or group of nodelist; row skipped")
		}
	}
	for _, name := range b.nodeOrder {
		if _, ok := b.isMember[name]; ok {
			continue
		}
		if b.hidden[name] {
			b.x.issue("nodelist", "hidden", name, "hidden node (hardware control point) not imported")
			continue
		}
		if err := pool.ValidateName("node", name); err != nil {
			b.probs.add("nodelist: %v", detail(err))
			continue
		}
		n := pool.Node{Name: name}
		for _, g := range b.groups[name] {
			if g == "all" {
				// xCAT puts every node in group all by convention; in a
				// noderange all already means every node.
				continue
			}
			if pool.ValidateGroup(g) != nil {
				b.x.issue("nodelist", "groups", name, fmt.Sprintf("group %q is not a valid pool group name; dropped", clip(g)))
				continue
			}
			n.Groups = append(n.Groups, g)
		}
		if ip, ok := b.hostIP[name]; ok {
			n.IP = ip
			if net, ok := b.networkOf(ip); ok {
				n.Network = net
			} else {
				b.probs.add("node %s: address %s is in no network of networks.csv", name, ip)
				continue
			}
		}
		if len(b.otherIPs[name]) > 0 {
			b.x.issue("hosts", "otherinterfaces", name, "node interfaces other than the install one are not imported")
		}
		if !b.nodeMACs(&n, macs, mt) {
			continue
		}
		b.nodeServiceNodes(&n, noderes, nr)
		b.x.Nodes = append(b.x.Nodes, n)
	}
	sort.Slice(b.x.Nodes, func(i, j int) bool { return b.x.Nodes[i].Name < b.x.Nodes[j].Name })
}

// nodeServiceNodes sets n's servicenode list from its noderes row (its
// own, or its first group's; regular expressions evaluated).
func (b *xcatBuilder) nodeServiceNodes(n *pool.Node, noderes map[string]TabdumpRow, nr *Tabdump) {
	if r, key, ok := b.lookup(noderes, n.Name); ok {
		if v := strings.TrimSpace(nr.Get(r, "xcatmaster")); v != "" {
			b.x.issue("noderes", "xcatmaster", key, "not imported: in a pool it stays blank (the servicenode list decides)")
		}
		sns, ok := b.attr(nr, r, "noderes", "servicenode", key, n.Name)
		switch {
		case !ok || sns == "":
		default:
			for _, s := range strings.Split(sns, ",") {
				s = strings.TrimSpace(s)
				if ip, err := netip.ParseAddr(s); err == nil {
					if h, ok := b.ipHost[ip.Unmap()]; ok {
						s = h
					}
				}
				addrs, ok := b.isMember[s]
				if !ok {
					b.x.issue("noderes", "servicenode", n.Name, fmt.Sprintf("%q is not a member (not the MN, not in the servicenode table); dropped from the list", clip(s)))
					continue
				}
				if _, on := addrs[n.Network]; n.Network != "" && !on {
					b.x.issue("noderes", "servicenode", n.Name, fmt.Sprintf("member %s has no address on the node's network; dropped from the list", s))
					continue
				}
				if !slices.Contains(n.ServiceNodes, s) {
					n.ServiceNodes = append(n.ServiceNodes, s)
				}
			}
			if len(n.ServiceNodes) >= pool.MinWidth {
				n.Manual = true
			} else if len(n.ServiceNodes) > 0 {
				b.x.issue("noderes", "servicenode", n.Name, "fewer than 2 servicenodes: imported as an automatic list; `mnpool assign` completes it")
			}
		}
	}
}

// mnpoolMembers applies mnpool_members.csv (an export's exact members:
// services, disabled flag, addresses by network), over what the xCAT
// tables said.
func (b *xcatBuilder) mnpoolMembers() {
	if b.x.MN.Name == "" {
		return
	}
	b.rows(TableMembers, func(t *Tabdump, name string, r TabdumpRow) {
		m := pool.Member{Name: name, Disabled: t.Get(r, "disabled") == "1", Addresses: map[string]netip.Addr{}}
		for _, s := range splitComma(t.Get(r, "services")) {
			svc, err := service.Parse(s)
			if err != nil {
				b.probs.add("%s.csv line %d: member %s: %v", TableMembers, r.Line, name, err)
				return
			}
			m.Services = append(m.Services, svc)
		}
		for _, a := range splitComma(t.Get(r, "addresses")) {
			net, ipS, _ := strings.Cut(a, "=")
			ip, err := netip.ParseAddr(ipS)
			if err != nil {
				b.probs.add("%s.csv line %d: member %s: address %q: want NETWORK=IP", TableMembers, r.Line, name, clip(a))
				return
			}
			m.Addresses[net] = ip
		}
		b.isMember[name] = m.Addresses
		if name == b.x.MN.Name {
			b.x.MN = m
			return
		}
		for i := range b.x.Members {
			if b.x.Members[i].Name == name {
				b.x.Members[i] = m
				return
			}
		}
		b.x.Members = append(b.x.Members, m)
		sort.Slice(b.x.Members, func(i, j int) bool { return b.x.Members[i].Name < b.x.Members[j].Name })
	})
}

// mnpoolNodes applies mnpool_nodes.csv: each node's network and whether
// its servicenode list was set by hand.
func (b *xcatBuilder) mnpoolNodes() {
	idx := map[string]int{}
	for i, n := range b.x.Nodes {
		idx[n.Name] = i
	}
	b.rows(TableNodes, func(t *Tabdump, name string, r TabdumpRow) {
		i, ok := idx[name]
		if !ok {
			b.x.issue(TableNodes, "node", name, "not a node of nodelist; row skipped")
			return
		}
		n := &b.x.Nodes[i]
		if nw := t.Get(r, "network"); nw != "" {
			n.Network = nw
		}
		n.Manual = t.Get(r, "manual") == "1" && len(n.ServiceNodes) > 0
	})
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// nodeMACs sets n.MACs from the node's mac row (its own, or its group's
// regular expression). It returns false when the import must stop.
func (b *xcatBuilder) nodeMACs(n *pool.Node, macs map[string]TabdumpRow, mt *Tabdump) bool {
	r, key, ok := b.lookup(macs, n.Name)
	if !ok {
		return true
	}
	if key != n.Name && !IsRegex(strings.TrimSpace(mt.Get(r, "mac"))) {
		return true // reported once for the group
	}
	v, ok := b.attr(mt, r, "mac", "mac", key, n.Name)
	if !ok {
		return true
	}
	for _, part := range strings.Split(v, "|") {
		mac, host, _ := strings.Cut(strings.TrimSpace(part), "!")
		if mac == "" {
			continue
		}
		if host != "" && host != n.Name {
			b.x.issue("mac", "mac", n.Name, "MAC bound to another host name (MAC!HOST) not imported")
			continue
		}
		m, err := pool.NormalizeMAC(mac)
		if err != nil && key != n.Name {
			b.x.unmapped(n.Name, "mac", "mac", mt.Get(r, "mac"), fmt.Sprintf("gives %q, not a MAC address", clip(mac)))
			return true
		}
		if err != nil {
			b.probs.add("mac.csv line %d: node %s: %q is not a MAC address", r.Line, n.Name, clip(mac))
			return false
		}
		if !slices.Contains(n.MACs, m) {
			n.MACs = append(n.MACs, m)
		}
	}
	return true
}

// Apply creates the pool described by x in s. The pool must be new
// (no MN yet) or already have x's MN (an interrupted import is finished
// by running it again: networks, members and nodes are then replaced).
// Everything is first applied to a scratch SQLite database, so invalid
// data stops the import before s is written.
func Apply(ctx context.Context, s *pool.Store, x *Import) error {
	m, err := s.Master(ctx)
	if err != nil {
		if _, lerr := s.LoadState(ctx); errors.Is(lerr, pool.ErrNotInitialized) {
			m = pool.Master{}
		} else {
			return err
		}
	}
	if m.Member != "" && m.Member != x.MN.Name {
		return fmt.Errorf("%w: the pool exists already with MN %s (epoch %d); import-xcat creates a new pool (the dump's MN is %s)", pool.ErrConflict, m.Member, m.Epoch, x.MN.Name)
	}
	if err := Validate(ctx, x); err != nil {
		return err
	}
	return apply(ctx, s, x)
}

// Validate applies x to a scratch SQLite database in a temporary
// directory and reports the first error. Nothing else is written.
func Validate(ctx context.Context, x *Import) error {
	dir, err := os.MkdirTemp("", "mnpool-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	scratch, err := pool.Open(ctx, "sqlite:"+filepath.Join(dir, "check.db"), pool.WithMigrate())
	if err != nil {
		return err
	}
	defer scratch.Close()
	if err := apply(ctx, scratch, x); err != nil {
		return fmt.Errorf("xCAT import: nothing was written: %w", err)
	}
	return nil
}

func apply(ctx context.Context, s *pool.Store, x *Import) error {
	for _, n := range x.Networks {
		if err := s.AddNetwork(ctx, n, true); err != nil {
			return err
		}
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: x.MN, Site: x.Site}); err != nil {
		return fmt.Errorf("MN %s: %w", x.MN.Name, err)
	}
	if err := s.AddMember(ctx, x.MN, true); err != nil {
		return err
	}
	for _, m := range x.Members {
		if err := s.AddMember(ctx, m, true); err != nil {
			return err
		}
	}
	if err := s.AddNodes(ctx, x.Nodes, pool.AddOptions{Replace: true}); err != nil {
		var ne *pool.NodeError
		if errors.As(err, &ne) {
			return fmt.Errorf("node %s: %w", ne.Node, ne.Err)
		}
		return err
	}
	return nil
}

func sortedKeys(m map[string]TabdumpRow) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// detail is err's message for a problem list, without the sentinel it
// starts with (ErrInvalid, ErrNoMatch, pool.ErrInvalid): the list says
// what kind of problem it is already. The sentinel is found with
// errors.Is; only its own text is cut.
func detail(err error) string {
	msg := err.Error()
	for _, s := range []error{ErrInvalid, ErrNoMatch, pool.ErrInvalid} {
		if errors.Is(err, s) {
			msg = strings.TrimPrefix(msg, s.Error()+": ")
		}
	}
	return msg
}
