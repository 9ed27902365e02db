package dns

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Handler defaults.
const (
	// DefaultForwardTimeout bounds one exchange with one forwarder.
	DefaultForwardTimeout = 2 * time.Second
	// DefaultUDPSize is the EDNS buffer size the server advertises (the
	// DNS flag day 2020 value, safe from fragmentation).
	DefaultUDPSize = 1232
	// DefaultMaxForwards bounds the queries being forwarded at once, all
	// forwarders together; a query over the bound gets SERVFAIL at once.
	DefaultMaxForwards = 256
	// DefaultMaxForwardsPerUpstream bounds the queries in flight to one
	// forwarder; when it is full the next forwarder is asked.
	DefaultMaxForwardsPerUpstream = 64
	// LoopMarkOption is the EDNS option code (from the local-use range
	// of RFC 6891) a pool server adds to every query it forwards. A pool
	// server never forwards a query that carries it, so two servers that
	// name each other (or a chain of them) as forwarders cannot loop.
	LoopMarkOption = 65431
)

// HandlerOptions tune a Handler; zero values take the defaults.
type HandlerOptions struct {
	Logger         *slog.Logger
	ForwardTimeout time.Duration
	UDPSize        uint16
	// MaxForwards and MaxForwardsPerUpstream bound the forwarding in
	// flight (DefaultMaxForwards, DefaultMaxForwardsPerUpstream).
	MaxForwards, MaxForwardsPerUpstream int
	// RateLimit configures response rate limiting of UDP answers.
	RateLimit RateLimit
}

// Data is what a Handler serves.
type Data struct {
	Zones *Zones
	// Forwarders are asked for names outside the zones, in order. They
	// must not include pool members (the Server drops them).
	Forwarders []netip.AddrPort
	// Allow lists the clients that get answers (AllowList); others get
	// REFUSED. Empty: loopback only.
	Allow []netip.Prefix
	// Version is the pool change counter the zones were built from.
	Version int64
}

// Handler answers DNS queries (it is a github.com/miekg/dns Handler). It
// holds an immutable snapshot of the pool's zones, replaced whole by
// Update, so a query never waits for the database and never sees half an
// update. Names in the pool's zones get authoritative answers (NXDOMAIN for
// names the pool does not have); other names go to the forwarders when the
// query asks for recursion, else get REFUSED. Clients outside the allow
// list get REFUSED. Before the first Update every query gets SERVFAIL.
type Handler struct {
	snap      atomic.Pointer[snapshot]
	log       *slog.Logger
	timeout   time.Duration
	udpSize   uint16
	rrl       *limiter
	fwdSlots  chan struct{}
	perUp     int
	upstreams atomic.Pointer[map[netip.AddrPort]chan struct{}]
	stats     handlerStats
}

type handlerStats struct {
	forwards, forwardsRefusedBusy, loopsStopped, refused atomic.Uint64
}

// NewHandler returns a handler without data.
func NewHandler(o HandlerOptions) *Handler {
	h := &Handler{log: o.Logger, timeout: o.ForwardTimeout, udpSize: o.UDPSize, rrl: newLimiter(o.RateLimit)}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.timeout <= 0 {
		h.timeout = DefaultForwardTimeout
	}
	if h.udpSize < mdns.MinMsgSize {
		h.udpSize = DefaultUDPSize
	}
	if h.udpSize > maxUDPOut {
		h.udpSize = maxUDPOut
	}
	if o.MaxForwards <= 0 {
		o.MaxForwards = DefaultMaxForwards
	}
	h.perUp = o.MaxForwardsPerUpstream
	if h.perUp <= 0 {
		h.perUp = DefaultMaxForwardsPerUpstream
	}
	h.fwdSlots = make(chan struct{}, o.MaxForwards)
	return h
}

// Stats are counters of a Handler since it was made.
type Stats struct {
	// Forwards counts exchanges with forwarders (attempts, each
	// forwarder asked counts once).
	Forwards uint64
	// ForwardsBusy counts queries answered SERVFAIL because the
	// forwarding bounds were full.
	ForwardsBusy uint64
	// LoopsStopped counts queries that arrived already forwarded by a
	// pool server and were not forwarded again.
	LoopsStopped uint64
	// Refused counts queries from clients outside the allow list.
	Refused uint64
	// RateLimited counts UDP answers over the rate limit (dropped or
	// sent truncated).
	RateLimited uint64
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Forwards:     h.stats.forwards.Load(),
		ForwardsBusy: h.stats.forwardsRefusedBusy.Load(),
		LoopsStopped: h.stats.loopsStopped.Load(),
		Refused:      h.stats.refused.Load(),
		RateLimited:  h.rrl.limited.Load(),
	}
}

// nameSet is the records of one name, by type (types in the order
// first seen; most names have one).
type nameSet struct {
	zone  *zoneIndex
	types []typeSet
	// inline holds the first types, so that most names need no
	// allocation of their own.
	inline [2]typeSet
}

type typeSet struct {
	t   uint16
	rrs []mdns.RR
}

func (n *nameSet) get(t uint16) []mdns.RR {
	for i := range n.types {
		if n.types[i].t == t {
			return n.types[i].rrs
		}
	}
	return nil
}

// add adds record i of recs (a zone's records, where the records of one
// name and type are usually next to each other: then the set is a part of
// recs, not a copy).
func (n *nameSet) add(recs []mdns.RR, i int) {
	rr := recs[i]
	t := rr.Header().Rrtype
	for j := range n.types {
		ts := &n.types[j]
		if ts.t != t {
			continue
		}
		if l := len(ts.rrs); i >= l && &recs[i-1] == &ts.rrs[l-1] && &recs[i-l] == &ts.rrs[0] {
			ts.rrs = recs[i-l : i+1 : i+1]
		} else {
			ts.rrs = append(ts.rrs, rr)
		}
		return
	}
	if n.types == nil {
		n.types = n.inline[:0]
	}
	n.types = append(n.types, typeSet{t: t, rrs: recs[i : i+1 : i+1]})
}

type zoneIndex struct {
	*Zone
	negSOA mdns.RR // SOA with the negative TTL, for the authority section
}

type snapshot struct {
	version    int64
	zones      []zoneIndex // longest origin first
	names      map[string]*nameSet
	forwarders []netip.AddrPort
	allow      []netip.Prefix
	wire       *wireIndex
}

// Update replaces the handler's data. Queries are answered from the
// previous data until the new one is complete.
func (h *Handler) Update(d Data) {
	s := &snapshot{version: d.Version,
		forwarders: append([]netip.AddrPort(nil), d.Forwarders...),
		allow:      append([]netip.Prefix(nil), d.Allow...)}
	if len(s.allow) == 0 {
		s.allow = loopback
	}
	size := 0
	for _, z := range d.Zones.List {
		neg := mdns.Copy(z.SOA)
		neg.Header().Ttl = min(z.SOA.Hdr.Ttl, z.SOA.Minttl)
		s.zones = append(s.zones, zoneIndex{Zone: z, negSOA: neg})
		size += len(z.Records) + 1
	}
	sort.SliceStable(s.zones, func(i, j int) bool { return len(s.zones[i].Origin) > len(s.zones[j].Origin) })
	s.names = make(map[string]*nameSet, size)
	sets := make([]nameSet, 0, size) // one allocation for all names
	set := func(name string, z *zoneIndex) *nameSet {
		r, ok := s.names[name]
		if !ok {
			if len(sets) == cap(sets) {
				sets = make([]nameSet, 0, 1024)
			}
			sets = append(sets, nameSet{zone: z})
			r = &sets[len(sets)-1]
			s.names[name] = r
		}
		return r
	}
	for i := range s.zones {
		z := &s.zones[i]
		apex := set(z.Origin, z)
		if apex.types == nil {
			apex.types = apex.inline[:0]
		}
		apex.types = append(apex.types, typeSet{t: mdns.TypeSOA, rrs: []mdns.RR{z.SOA}}, typeSet{t: mdns.TypeNS, rrs: z.NS})
		for i, rr := range z.Records {
			if rr.Header().Rrtype == mdns.TypeNS {
				// A delegation to a child zone this server also serves:
				// the child's apex answers.
				continue
			}
			name := rr.Header().Name
			set(name, z).add(z.Records, i)
			// Names between the record and the apex exist (empty
			// non-terminals): NODATA there, not NXDOMAIN.
			for off, end := mdns.NextLabel(name, 0); !end; off, end = mdns.NextLabel(name, off) {
				parent := name[off:]
				if len(parent) <= len(z.Origin) {
					break
				}
				set(parent, z)
			}
		}
	}
	s.wire = buildWire(s)
	h.snap.Store(s)
	h.setUpstreams(s.forwarders)
}

// setUpstreams keeps one bound per forwarder, reusing the bounds of
// forwarders already known so that queries in flight stay counted.
func (h *Handler) setUpstreams(fwd []netip.AddrPort) {
	old := h.upstreams.Load()
	m := make(map[netip.AddrPort]chan struct{}, len(fwd))
	for _, f := range fwd {
		if old != nil && (*old)[f] != nil {
			m[f] = (*old)[f]
		} else {
			m[f] = make(chan struct{}, h.perUp)
		}
	}
	h.upstreams.Store(&m)
}

// Version returns the pool change counter of the data being served, -1
// before the first Update.
func (h *Handler) Version() int64 {
	if s := h.snap.Load(); s != nil {
		return s.version
	}
	return -1
}

func (s *snapshot) zoneFor(name string) *zoneIndex {
	for i := range s.zones {
		if mdns.IsSubDomain(s.zones[i].Origin, name) {
			return &s.zones[i]
		}
	}
	return nil
}

// addrOf returns the IP address of a net.Addr (invalid when it has none).
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ServeDNS answers one query (the TCP path of the Server, and any
// miekg/dns server the handler is mounted in).
func (h *Handler) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	tcp := false
	if a := w.LocalAddr(); a != nil {
		tcp = a.Network() == "tcp"
	}
	client := addrOf(w.RemoteAddr())
	m := h.Answer(r, client, tcp)
	if m == nil {
		return
	}
	if !tcp {
		switch h.limit(m, client) {
		case rrlDrop:
			return
		case rrlSlip:
			m = slipped(r)
		}
	}
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("dns: writing answer", "client", w.RemoteAddr(), "err", err)
	}
}

// Answer computes the full reply to r from client (forwarding when
// needed; tcp tells how r arrived), with EDNS and truncation done, but
// without rate limiting.
func (h *Handler) Answer(r *mdns.Msg, client netip.Addr, tcp bool) *mdns.Msg {
	s := h.snap.Load()
	m, fwd := h.reply(s, r, client)
	if fwd {
		m = h.forward(r, tcp, s.forwarders)
	}
	return h.finish(m, r, tcp)
}

// finish adds EDNS and truncates to the size the client takes.
func (h *Handler) finish(m, r *mdns.Msg, tcp bool) *mdns.Msg {
	size := mdns.MinMsgSize
	if tcp {
		size = mdns.MaxMsgSize
	}
	if opt := r.IsEdns0(); opt != nil {
		if o := m.IsEdns0(); o == nil {
			m.SetEdns0(h.udpSize, opt.Do())
		} else {
			o.SetVersion(0)
			o.SetUDPSize(h.udpSize)
		}
		if !tcp && int(opt.UDPSize()) > size {
			size = int(min(opt.UDPSize(), h.udpSize))
		}
	}
	m.Truncate(size)
	return m
}

// limit charges an answer to client's rate limit account.
func (h *Handler) limit(m *mdns.Msg, client netip.Addr) rrlVerdict {
	if h.rrl.disabled {
		return rrlSend
	}
	var buf [16 + 4 + 256]byte
	var name [256]byte
	kind, qtype, n := rrlError, uint16(0), 0
	if m.Rcode == mdns.RcodeSuccess || m.Rcode == mdns.RcodeNameError {
		kind = rrlAnswer
		if m.Rcode == mdns.RcodeNameError {
			kind = rrlNX
		}
		if len(m.Question) == 1 {
			qtype = m.Question[0].Qtype
			n, _ = mdns.PackDomainName(mdns.CanonicalName(m.Question[0].Name), name[:], 0, nil, false)
		}
	}
	return h.rrl.check(h.rrl.key(buf[:], client, kind, qtype, m.Rcode, name[:n]))
}

// slipped is the empty truncated answer sent instead of a rate-limited
// one.
func slipped(r *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg).SetReply(r)
	m.Truncated = true
	return m
}

// marked reports whether r was forwarded by a pool server.
func marked(r *mdns.Msg) bool {
	opt := r.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if o.Option() == LoopMarkOption {
			return true
		}
	}
	return false
}

// reply computes the answer to r from the snapshot, or reports that r
// is to be forwarded (m is then nil).
func (h *Handler) reply(s *snapshot, r *mdns.Msg, client netip.Addr) (m *mdns.Msg, forward bool) {
	m = new(mdns.Msg)
	if s == nil {
		return m.SetRcode(r, mdns.RcodeServerFailure), false
	}
	if !allowed(s.allow, client) {
		h.stats.refused.Add(1)
		return m.SetRcode(r, mdns.RcodeRefused), false
	}
	if r.Opcode != mdns.OpcodeQuery {
		return m.SetRcode(r, mdns.RcodeNotImplemented), false
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, mdns.RcodeFormatError), false
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		m.SetRcode(r, mdns.RcodeBadVers)
		m.SetEdns0(h.udpSize, opt.Do())
		return m, false
	}
	q := r.Question[0]
	name := mdns.CanonicalName(q.Name)
	z := s.zoneFor(name)
	if z == nil || q.Qclass != mdns.ClassINET {
		if q.Qclass == mdns.ClassINET && r.RecursionDesired && len(s.forwarders) > 0 {
			if !marked(r) {
				return nil, true
			}
			h.stats.loopsStopped.Add(1)
		}
		return m.SetRcode(r, mdns.RcodeRefused), false
	}
	m.SetReply(r)
	s.authoritative(m, z, name, q.Qtype)
	return m, false
}

// authoritative fills m (a reply to a query for name, type qtype, in
// zone z) from the snapshot.
func (s *snapshot) authoritative(m *mdns.Msg, z *zoneIndex, name string, qtype uint16) {
	m.Authoritative = true
	m.RecursionAvailable = len(s.forwarders) > 0
	set, ok := s.names[name]
	if !ok {
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{z.negSOA}
		return
	}
	switch qtype {
	case mdns.TypeANY:
		types := append([]typeSet(nil), set.types...)
		sort.Slice(types, func(i, j int) bool { return types[i].t < types[j].t })
		for _, t := range types {
			m.Answer = append(m.Answer, t.rrs...)
		}
	default:
		m.Answer = append(m.Answer, set.get(qtype)...)
	}
	if len(m.Answer) == 0 {
		m.Ns = []mdns.RR{z.negSOA}
		return
	}
	if qtype == mdns.TypeNS {
		for _, rr := range m.Answer {
			if glue, ok := s.names[rr.(*mdns.NS).Ns]; ok {
				m.Extra = append(m.Extra, glue.get(mdns.TypeA)...)
				m.Extra = append(m.Extra, glue.get(mdns.TypeAAAA)...)
			}
		}
	}
}
