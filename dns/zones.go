package dns

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Zone timing defaults, in seconds. The record TTL is short so that
// caches follow the pool (new nodes, snmove) within a minute; the negative
// TTL shorter still, so that a name queried before its node was added is
// found soon after.
const (
	DefaultTTL         uint32 = 60
	DefaultNegativeTTL uint32 = 30
	DefaultRefresh     uint32 = 3600
	DefaultRetry       uint32 = 600
	DefaultExpire      uint32 = 604800
)

// ZoneOptions tune BuildZones; zero values take the defaults.
type ZoneOptions struct {
	// TTL of every record (DefaultTTL).
	TTL uint32
	// NegativeTTL is the SOA minimum: how long a resolver caches "no such
	// name" (DefaultNegativeTTL).
	NegativeTTL uint32
}

func (o ZoneOptions) withDefaults() ZoneOptions {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	return o
}

// Zone is one zone the pool is authoritative for.
type Zone struct {
	// Origin is the zone's apex: lower case, fully qualified ("cluster.").
	Origin string
	// Reverse is set for in-addr.arpa and ip6.arpa zones.
	Reverse bool
	SOA     *mdns.SOA
	NS      []mdns.RR
	// Records are the A and AAAA records (forward zones) or PTR records
	// (reverse zones), in a stable order.
	Records []mdns.RR
}

// Zones is the pool's DNS data: forward zones for site.domain and every
// network domain, reverse zones covering every network.
type Zones struct {
	// Serial is the SOA serial of every zone: the pool's change counter
	// (modulo 2^32, which RFC 1982 serial arithmetic tolerates).
	Serial uint32
	// List is sorted by origin.
	List []*Zone
}

// Zone returns the zone with the given origin ("cluster" or "cluster.").
func (z *Zones) Zone(origin string) (*Zone, bool) {
	origin = mdns.CanonicalName(origin)
	for _, zn := range z.List {
		if zn.Origin == origin {
			return zn, true
		}
	}
	return nil, false
}

// fqdn joins a host label and a domain into a lower-case FQDN.
func fqdn(name, domain string) string {
	return mdns.CanonicalName(name + "." + domain)
}

type rec struct {
	owner string
	addr  netip.Addr
}

// keyed is a record with its sort key.
type keyed struct {
	owner string
	addr  netip.Addr
	rr    mdns.RR
}

// BuildZones computes the pool's zones from a state snapshot. Nodes are
// named NODE.DOMAIN where DOMAIN is their network's domain (else
// site.domain); members are named MEMBER.DOMAIN for each network they have
// an address on. Every member that runs dns is a name server of every
// zone; the SOA names the MN when it runs dns.
func BuildZones(st *pool.State, serial uint32, o ZoneOptions) (*Zones, error) {
	o = o.withDefaults()
	zones, err := zoneOrigins(st)
	if err != nil {
		return nil, err
	}
	nsNames, primary, err := nameServers(st)
	if err != nil {
		return nil, err
	}
	pending, err := zones.records(addressRecords(st), o.TTL)
	if err != nil {
		return nil, err
	}
	origins := make([]string, 0, len(zones))
	for o := range zones {
		origins = append(origins, o)
	}
	// Longest origin first so that the first match is the closest zone.
	byLen := append([]string(nil), origins...)
	sort.Slice(byLen, func(i, j int) bool {
		if len(byLen[i]) != len(byLen[j]) {
			return len(byLen[i]) > len(byLen[j])
		}
		return byLen[i] < byLen[j]
	})
	sort.Strings(origins)
	out := &Zones{Serial: serial}
	mbox := "hostmaster."
	if d := st.Site[siteschema.Domain]; d != "" {
		mbox += mdns.CanonicalName(d)
	}
	for _, origin := range origins {
		z := zones[origin]
		zm := mbox
		if zm == "hostmaster." {
			zm += origin
		}
		z.SOA = &mdns.SOA{
			Hdr:     mdns.RR_Header{Name: origin, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: o.TTL},
			Ns:      primary,
			Mbox:    zm,
			Serial:  serial,
			Refresh: DefaultRefresh,
			Retry:   DefaultRetry,
			Expire:  DefaultExpire,
			Minttl:  o.NegativeTTL,
		}
		for _, ns := range nsNames {
			z.NS = append(z.NS, &mdns.NS{Hdr: mdns.RR_Header{Name: origin, Rrtype: mdns.TypeNS, Class: mdns.ClassINET, Ttl: o.TTL}, Ns: ns})
		}
		if !z.Reverse {
			pending[z] = append(pending[z], zones.delegations(origin, origins, byLen, nsNames, o.TTL)...)
		}
		z.Records = sortedRecords(pending[z])
		out.List = append(out.List, z)
	}
	return out, nil
}

// zoneSet is the zones being built, by canonical origin.
type zoneSet map[string]*Zone

func (zs zoneSet) add(origin string, reverse bool) {
	if _, ok := zs[origin]; !ok {
		zs[origin] = &Zone{Origin: origin, Reverse: reverse}
	}
}

// zoneOf returns the closest zone of name (canonical): the longest suffix
// of name on a label boundary that is an origin; nil when none is.
func (zs zoneSet) zoneOf(name string) *Zone {
	for off := 0; off < len(name); {
		if z, ok := zs[name[off:]]; ok {
			return z
		}
		i := strings.IndexByte(name[off:], '.')
		if i < 0 {
			return nil
		}
		off += i + 1
	}
	return nil
}

// zoneOrigins returns the (empty) zones of the pool: site.domain, every
// network's domain and the reverse zones of the networks.
func zoneOrigins(st *pool.State) (zoneSet, error) {
	zones := zoneSet{}
	if d := st.Site[siteschema.Domain]; d != "" {
		if err := pool.ValidateDomain(d); err != nil {
			return nil, fmt.Errorf("%w: site.domain: %v", ErrInvalid, err)
		}
		zones.add(mdns.CanonicalName(d), false)
	}
	for _, n := range st.Networks {
		if d := memberaddr.Domain(st, n.Name); d != "" {
			zones.add(mdns.CanonicalName(d), false)
		}
		for _, r := range ReverseZones(n.Prefix) {
			zones.add(r, true)
		}
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%w: the pool has no domain (set site.domain) and no network", ErrInvalid)
	}
	return zones, nil
}

// nameServers returns the name of every member that runs dns, by its
// first name, sorted, and the primary of the SOA: the MN when it runs
// dns, else the first name.
func nameServers(st *pool.State) (names []string, primary string, err error) {
	for _, m := range st.Members {
		if !m.Runs(service.DNS) {
			continue
		}
		name := memberFQDN(st, m)
		if name == "" {
			continue
		}
		names = append(names, name)
		if st.IsMN(m.Name) {
			primary = name
		}
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("%w: no member with an address runs dns (mnpool member add NAME --services dns,...)", ErrNoServers)
	}
	sort.Strings(names)
	if primary == "" {
		primary = names[0]
	}
	return names, primary, nil
}

// addressRecords returns a name and address for every node with an IP
// and for every member on each of its networks that has a domain.
func addressRecords(st *pool.State) []rec {
	recs := make([]rec, 0, len(st.Nodes)+2*len(st.Members))
	for _, n := range st.Nodes {
		if !n.IP.IsValid() {
			continue
		}
		if d := memberaddr.Domain(st, n.Network); d != "" {
			recs = append(recs, rec{owner: fqdn(n.Name, d), addr: n.IP})
		}
	}
	for _, m := range st.Members {
		for _, net := range memberaddr.Networks(st, m) {
			if d := memberaddr.Domain(st, net); d != "" {
				recs = append(recs, rec{owner: fqdn(m.Name, d), addr: m.Addresses[net]})
			}
		}
	}
	return recs
}

// records sorts recs into the zones: an A or AAAA record in the closest
// forward zone of the owner, a PTR record in the closest reverse zone of
// the address, each once. The records carry their sort key: forward
// records by owner then address, PTR records by the address they name
// (owner key "").
func (zs zoneSet) records(recs []rec, ttl uint32) (map[*Zone][]keyed, error) {
	pending := map[*Zone][]keyed{}
	type dupKey struct {
		owner string
		addr  netip.Addr
	}
	const seenFwd, seenPTR = 1, 2
	seen := make(map[dupKey]uint8, len(recs))
	var ip4 []byte // A record data, carved from one block
	for _, r := range recs {
		a := r.addr.Unmap()
		k := dupKey{r.owner, a}
		was := seen[k]
		if z := zs.zoneOf(r.owner); z != nil && was&seenFwd == 0 {
			was |= seenFwd
			var fwd mdns.RR
			fwd, ip4 = addressRR(r.owner, a, ttl, ip4)
			pending[z] = append(pending[z], keyed{owner: r.owner, addr: a, rr: fwd})
		}
		arpa, err := reverseName(a)
		if err != nil {
			return nil, fmt.Errorf("%w: address %s of %s: %v", ErrInvalid, a, r.owner, err)
		}
		if z := zs.zoneOf(arpa); z != nil && was&seenPTR == 0 {
			was |= seenPTR
			ptr := &mdns.PTR{Hdr: mdns.RR_Header{Name: arpa, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: ttl}, Ptr: r.owner}
			pending[z] = append(pending[z], keyed{addr: a, rr: ptr})
		}
		seen[k] = was
	}
	return pending, nil
}

// addressRR returns the A (IPv4) or AAAA record of owner. An A record's
// data is carved from ip4, a block shared by many records, which it
// returns shortened (or new when it was too short).
func addressRR(owner string, a netip.Addr, ttl uint32, ip4 []byte) (mdns.RR, []byte) {
	hdr := mdns.RR_Header{Name: owner, Class: mdns.ClassINET, Ttl: ttl}
	if !a.Is4() {
		hdr.Rrtype = mdns.TypeAAAA
		return &mdns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}, ip4
	}
	if len(ip4) < 4 {
		ip4 = make([]byte, 4*1024)
	}
	v := a.As4()
	copy(ip4, v[:])
	hdr.Rrtype = mdns.TypeA
	return &mdns.A{Hdr: hdr, A: ip4[:4:4]}, ip4[4:]
}

// delegations returns the NS records by which the forward zone origin
// delegates the forward zones directly inside it (ib.cluster inside
// cluster), so that BIND and resolvers walking down from the parent find
// them.
func (zs zoneSet) delegations(origin string, origins, byLen, nsNames []string, ttl uint32) []keyed {
	var out []keyed
	for _, child := range origins {
		if child != origin && !zs[child].Reverse && zs.zoneOf(child) == zs[child] && parentZone(child, byLen) == origin {
			for _, ns := range nsNames {
				out = append(out, keyed{owner: child, rr: &mdns.NS{Hdr: mdns.RR_Header{Name: child, Rrtype: mdns.TypeNS, Class: mdns.ClassINET, Ttl: ttl}, Ns: ns}})
			}
		}
	}
	return out
}

// sortedRecords returns the records of list by their sort key (stable).
func sortedRecords(list []keyed) []mdns.RR {
	slices.SortStableFunc(list, func(a, b keyed) int {
		if c := strings.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	out := make([]mdns.RR, len(list))
	for i, k := range list {
		out[i] = k.rr
	}
	return out
}

// reverseName returns the in-addr.arpa or ip6.arpa name of a (one
// allocation for IPv4).
func reverseName(a netip.Addr) (string, error) {
	if !a.Is4() {
		return mdns.ReverseAddr(a.String())
	}
	v := a.As4()
	b := make([]byte, 0, len("255.255.255.255.in-addr.arpa."))
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(v[i]), 10)
		b = append(b, '.')
	}
	b = append(b, "in-addr.arpa."...)
	return unsafe.String(&b[0], len(b)), nil
}

// parentZone returns the closest origin in byLen (longest first) strictly
// above child, "" when none.
func parentZone(child string, byLen []string) string {
	for _, o := range byLen {
		if o != child && mdns.IsSubDomain(o, child) {
			return o
		}
	}
	return ""
}

// memberFQDN is a member's main name: on its first network (in
// memberaddr.Networks order) that has a domain. "" when none has.
func memberFQDN(st *pool.State, m pool.Member) string {
	for _, n := range memberaddr.Networks(st, m) {
		if d := memberaddr.Domain(st, n); d != "" {
			return fqdn(m.Name, d)
		}
	}
	return ""
}

// ReverseZones returns the reverse zones that cover prefix, on label
// boundaries (octets for IPv4, nibbles for IPv6): 10.0.0.0/16 gives
// 0.10.in-addr.arpa., 10.0.0.0/12 gives the sixteen zones 0.10 to
// 15.10.in-addr.arpa., and a prefix longer than /24 (IPv4) or /124 (IPv6)
// gives the one zone that contains it.
func ReverseZones(p netip.Prefix) []string {
	p = p.Masked()
	unit, suffix := 8, "in-addr.arpa."
	if p.Addr().Is6() {
		unit, suffix = 4, "ip6.arpa."
	}
	bitLen := p.Addr().BitLen()
	zbits := (p.Bits() + unit - 1) / unit * unit
	if zbits == 0 {
		zbits = unit
	}
	if zbits > bitLen-unit {
		zbits = bitLen - unit
	}
	count := 1
	if zbits > p.Bits() {
		count = 1 << (zbits - p.Bits())
	}
	base := new(big.Int).SetBytes(p.Addr().AsSlice())
	step := new(big.Int).Lsh(big.NewInt(1), uint(bitLen-zbits))
	out := make([]string, 0, count)
	for i := 0; i < count; i++ {
		v := new(big.Int).Add(base, new(big.Int).Mul(step, big.NewInt(int64(i))))
		b := v.FillBytes(make([]byte, bitLen/8))
		var labels []string
		if unit == 8 {
			for j := 0; j < zbits/8; j++ {
				labels = append(labels, fmt.Sprint(b[j]))
			}
		} else {
			for j := 0; j < zbits/4; j++ {
				nib := b[j/2] >> 4
				if j%2 == 1 {
					nib = b[j/2] & 0xf
				}
				labels = append(labels, fmt.Sprintf("%x", nib))
			}
		}
		for l, r := 0, len(labels)-1; l < r; l, r = l+1, r-1 {
			labels[l], labels[r] = labels[r], labels[l]
		}
		out = append(out, strings.Join(labels, ".")+"."+suffix)
	}
	return out
}
