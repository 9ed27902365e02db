package dns

import (
	"context"
	"io"
	"log/slog"
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
)

// HandlerOptions tune a Handler; zero values take the defaults.
type HandlerOptions struct {
	Logger         *slog.Logger
	ForwardTimeout time.Duration
	UDPSize        uint16
}

// Handler answers DNS queries (it is a github.com/miekg/dns Handler). It
// holds an immutable snapshot of the pool's zones, replaced whole by
// Update, so a query never waits for the database and never sees half an
// update. Names in the pool's zones get authoritative answers (NXDOMAIN for
// names the pool does not have); other names go to the forwarders when the
// query asks for recursion, else get REFUSED. Before the first Update every
// query gets SERVFAIL.
type Handler struct {
	snap    atomic.Pointer[snapshot]
	log     *slog.Logger
	timeout time.Duration
	udpSize uint16
}

// NewHandler returns a handler without data.
func NewHandler(o HandlerOptions) *Handler {
	h := &Handler{log: o.Logger, timeout: o.ForwardTimeout, udpSize: o.UDPSize}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.timeout <= 0 {
		h.timeout = DefaultForwardTimeout
	}
	if h.udpSize < mdns.MinMsgSize {
		h.udpSize = DefaultUDPSize
	}
	return h
}

type rrset map[uint16][]mdns.RR

type zoneIndex struct {
	*Zone
	negSOA mdns.RR // SOA with the negative TTL, for the authority section
}

type snapshot struct {
	version    int64
	zones      []zoneIndex // longest origin first
	names      map[string]rrset
	forwarders []netip.AddrPort
}

// Update replaces the handler's data. version is the pool change counter
// the zones were built from (reported by Version).
func (h *Handler) Update(zs *Zones, forwarders []netip.AddrPort, version int64) {
	s := &snapshot{version: version, names: map[string]rrset{}, forwarders: append([]netip.AddrPort(nil), forwarders...)}
	set := func(name string) rrset {
		r, ok := s.names[name]
		if !ok {
			r = rrset{}
			s.names[name] = r
		}
		return r
	}
	for _, z := range zs.List {
		neg := mdns.Copy(z.SOA)
		neg.Header().Ttl = min(z.SOA.Hdr.Ttl, z.SOA.Minttl)
		s.zones = append(s.zones, zoneIndex{Zone: z, negSOA: neg})
		apex := set(z.Origin)
		apex[mdns.TypeSOA] = []mdns.RR{z.SOA}
		apex[mdns.TypeNS] = append([]mdns.RR(nil), z.NS...)
		for _, rr := range z.Records {
			if rr.Header().Rrtype == mdns.TypeNS {
				// A delegation to a child zone this server also serves:
				// the child's apex answers.
				continue
			}
			name := rr.Header().Name
			r := set(name)
			r[rr.Header().Rrtype] = append(r[rr.Header().Rrtype], rr)
			// Names between the record and the apex exist (empty
			// non-terminals): NODATA there, not NXDOMAIN.
			for off, end := mdns.NextLabel(name, 0); !end; off, end = mdns.NextLabel(name, off) {
				parent := name[off:]
				if parent == z.Origin || !mdns.IsSubDomain(z.Origin, parent) {
					break
				}
				set(parent)
			}
		}
	}
	sort.SliceStable(s.zones, func(i, j int) bool { return len(s.zones[i].Origin) > len(s.zones[j].Origin) })
	h.snap.Store(s)
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

// ServeDNS answers one query.
func (h *Handler) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	tcp := false
	if a := w.LocalAddr(); a != nil {
		tcp = a.Network() == "tcp"
	}
	m := h.Answer(r, tcp)
	size := mdns.MinMsgSize
	if tcp {
		size = mdns.MaxMsgSize
	}
	if opt := r.IsEdns0(); opt != nil {
		if m.IsEdns0() == nil {
			m.SetEdns0(h.udpSize, false)
		}
		if !tcp && int(opt.UDPSize()) > size {
			size = int(min(opt.UDPSize(), h.udpSize))
		}
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("dns: writing answer", "client", w.RemoteAddr(), "err", err)
	}
}

// Answer computes the reply to r (tcp tells how it arrived, for
// forwarding) without EDNS or size handling; ServeDNS adds those.
func (h *Handler) Answer(r *mdns.Msg, tcp bool) *mdns.Msg {
	m := new(mdns.Msg)
	if r.Opcode != mdns.OpcodeQuery {
		return m.SetRcode(r, mdns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, mdns.RcodeFormatError)
	}
	s := h.snap.Load()
	if s == nil {
		return m.SetRcode(r, mdns.RcodeServerFailure)
	}
	q := r.Question[0]
	name := mdns.CanonicalName(q.Name)
	z := s.zoneFor(name)
	if z == nil || q.Qclass != mdns.ClassINET {
		if q.Qclass == mdns.ClassINET && r.RecursionDesired && len(s.forwarders) > 0 {
			return h.forward(r, tcp, s.forwarders)
		}
		return m.SetRcode(r, mdns.RcodeRefused)
	}
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = len(s.forwarders) > 0
	set, ok := s.names[name]
	if !ok {
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{z.negSOA}
		return m
	}
	switch q.Qtype {
	case mdns.TypeANY:
		types := make([]int, 0, len(set))
		for t := range set {
			types = append(types, int(t))
		}
		sort.Ints(types)
		for _, t := range types {
			m.Answer = append(m.Answer, set[uint16(t)]...)
		}
	default:
		m.Answer = append(m.Answer, set[q.Qtype]...)
	}
	if len(m.Answer) == 0 {
		m.Ns = []mdns.RR{z.negSOA}
		return m
	}
	if q.Qtype == mdns.TypeNS {
		for _, rr := range m.Answer {
			if glue, ok := s.names[rr.(*mdns.NS).Ns]; ok {
				m.Extra = append(m.Extra, glue[mdns.TypeA]...)
				m.Extra = append(m.Extra, glue[mdns.TypeAAAA]...)
			}
		}
	}
	return m
}

// forward asks the forwarders in order and returns the first answer that
// is not SERVFAIL or REFUSED (else the last such answer, else SERVFAIL).
// A truncated UDP answer is asked again over TCP.
func (h *Handler) forward(r *mdns.Msg, tcp bool, fwd []netip.AddrPort) *mdns.Msg {
	q := r.Copy()
	var last *mdns.Msg
	for _, f := range fwd {
		resp, err := h.exchange(q, f, tcp)
		if err != nil {
			h.log.Debug("dns: forwarder did not answer", "forwarder", f, "name", q.Question[0].Name, "err", err)
			continue
		}
		resp.Id = r.Id
		if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			last = resp
			continue
		}
		return resp
	}
	if last != nil {
		return last
	}
	return new(mdns.Msg).SetRcode(r, mdns.RcodeServerFailure)
}

func (h *Handler) exchange(q *mdns.Msg, f netip.AddrPort, tcp bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: h.timeout}
	resp, _, err := c.ExchangeContext(ctx, q, f.String())
	if err == nil && resp.Truncated && !tcp {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, f.String())
	}
	return resp, err
}
