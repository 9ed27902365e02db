package dns

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// DefaultDNSPort is the port a forwarder is asked on when none is given.
const DefaultDNSPort = 53

// ParseForwarders parses site.forwarders: addresses separated by commas
// or spaces, each "IP" (port 53), "IPv4:PORT" or "[IPv6]:PORT". Names are
// refused: resolving the forwarder through DNS would need the forwarder.
// The order is kept (the first answering forwarder wins); duplicates are
// an error.
func ParseForwarders(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		ap, err := parseForwarder(f)
		if err != nil {
			return nil, err
		}
		if seen[ap] {
			return nil, fmt.Errorf("%w: site.forwarders: %s is listed twice", ErrInvalid, ap)
		}
		seen[ap] = true
		out = append(out, ap)
	}
	return out, nil
}

func parseForwarder(f string) (netip.AddrPort, error) {
	bad := func(why string) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("%w: site.forwarders: %q %s; want IP, IPv4:PORT or [IPv6]:PORT, such as 192.0.2.53 or 127.0.0.1:5353", ErrInvalid, f, why)
	}
	if a, err := netip.ParseAddr(f); err == nil {
		if a.Zone() != "" {
			return bad("has an IPv6 zone")
		}
		return valid(netip.AddrPortFrom(a.Unmap(), DefaultDNSPort), bad)
	}
	host, port, ok := strings.Cut(f, "]:")
	if ok && strings.HasPrefix(host, "[") {
		host = host[1:]
	} else if i := strings.LastIndexByte(f, ':'); i > 0 && !strings.Contains(f[:i], ":") {
		host, port = f[:i], f[i+1:]
	} else {
		return bad("is not an IP address")
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return bad("is not an IP address")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return bad("has a bad port (want 1-65535)")
	}
	return valid(netip.AddrPortFrom(a.Unmap(), uint16(p)), bad)
}

func valid(ap netip.AddrPort, bad func(string) (netip.AddrPort, error)) (netip.AddrPort, error) {
	a := ap.Addr()
	if a.IsUnspecified() || a.IsMulticast() {
		return bad("is not a unicast address")
	}
	return ap, nil
}

// forward asks the forwarders in order and returns the first answer that
// is not SERVFAIL or REFUSED (else the last such answer, else SERVFAIL).
// A truncated UDP answer is asked again over TCP. The query carries the
// loop mark (LoopMarkOption) so that a pool server never forwards it
// again. Each exchange is bounded in time (the forward timeout) and the
// exchanges in flight are bounded in number, in all and per forwarder:
// a forwarder whose bound is full is skipped, and a query that finds the
// overall bound full gets SERVFAIL at once.
func (h *Handler) forward(r *mdns.Msg, tcp bool, fwd []netip.AddrPort) *mdns.Msg {
	select {
	case h.fwdSlots <- struct{}{}:
		defer func() { <-h.fwdSlots }()
	default:
		h.stats.forwardsRefusedBusy.Add(1)
		return new(mdns.Msg).SetRcode(r, mdns.RcodeServerFailure)
	}
	return h.ask(r, tcp, fwd)
}

// ask is forward once the overall bound is taken.
func (h *Handler) ask(r *mdns.Msg, tcp bool, fwd []netip.AddrPort) *mdns.Msg {
	q := markedCopy(r)
	ups := h.upstreams.Load()
	var last *mdns.Msg
	for _, f := range fwd {
		var slot chan struct{}
		if ups != nil {
			slot = (*ups)[f]
		}
		if slot != nil {
			select {
			case slot <- struct{}{}:
			default:
				h.log.Debug("dns: forwarder busy, skipped", "forwarder", f)
				continue
			}
		}
		h.stats.forwards.Add(1)
		resp, err := h.exchange(q, f, tcp)
		if slot != nil {
			<-slot
		}
		if err != nil {
			h.log.Debug("dns: forwarder did not answer", "forwarder", f, "name", q.Question[0].Name, "err", err)
			continue
		}
		resp.Id = r.Id
		stripMark(resp)
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

// markedCopy returns a copy of r with the loop mark in its OPT record
// (added when r has none).
func markedCopy(r *mdns.Msg) *mdns.Msg {
	q := r.Copy()
	opt := q.IsEdns0()
	if opt == nil {
		q.SetEdns0(DefaultUDPSize, false)
		opt = q.IsEdns0()
	}
	opt.Option = append(opt.Option, &mdns.EDNS0_LOCAL{Code: LoopMarkOption, Data: []byte("mnpool")})
	return q
}

// stripMark removes the loop mark from an answer (an upstream may echo
// unknown options).
func stripMark(m *mdns.Msg) {
	opt := m.IsEdns0()
	if opt == nil {
		return
	}
	out := opt.Option[:0]
	for _, o := range opt.Option {
		if o.Option() != LoopMarkOption {
			out = append(out, o)
		}
	}
	opt.Option = out
}

func (h *Handler) exchange(q *mdns.Msg, f netip.AddrPort, tcp bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: h.timeout, UDPSize: DefaultUDPSize}
	resp, _, err := c.ExchangeContext(ctx, q, f.String())
	if err == nil && resp.Truncated && !tcp {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, f.String())
	}
	return resp, err
}
