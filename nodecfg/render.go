package nodecfg

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mnpool/mnpool/pool"
)

// Renderer gives the files of one node from a pool snapshot. The node is
// st's copy (its servicenode list already the new one). Output must be
// deterministic: the same state gives the same bytes.
type Renderer interface {
	Render(st *pool.State, node pool.Node) ([]File, error)
}

// RendererFunc adapts a function to Renderer.
type RendererFunc func(st *pool.State, node pool.Node) ([]File, error)

// Render implements Renderer.
func (f RendererFunc) Render(st *pool.State, node pool.Node) ([]File, error) { return f(st, node) }

// MaxNameservers is the resolver's limit on nameserver lines (MAXNS).
const MaxNameservers = 3

// Builtin is a simple Renderer until the dns and ntp packages provide
// resolv.conf and chrony.conf:
//
//   - resolv.conf: `search` the network's domain (else site.domain), then
//     one `nameserver` per servicenode that runs dns, in list order, at
//     most MaxNameservers;
//   - chrony.conf: `server ADDR iburst` per servicenode that runs ntp;
//   - rsyslog: forward everything over TCP to the first servicenode, the
//     others as failover targets in list order;
//   - default route: via the first servicenode (in list order) whose
//     address is a gateway of the node's network, else the network's
//     first gateway; none when the network has no gateway.
//
// Addresses are each member's address on the node's network; members
// without one are left out. A file with nothing to say is not produced.
// The zero value renders every kind.
type Builtin struct {
	// Kinds limits what is rendered (default: all).
	Kinds []Kind
}

func (b Builtin) wants(k Kind) bool { return len(b.Kinds) == 0 || slices.Contains(b.Kinds, k) }

// Render implements Renderer.
func (b Builtin) Render(st *pool.State, n pool.Node) ([]File, error) {
	if n.Network == "" {
		return nil, fmt.Errorf("%w: node %s has no network", ErrRender, n.Name)
	}
	nw, ok := st.Network(n.Network)
	if !ok {
		return nil, fmt.Errorf("%w: node %s: network %s is not in the pool", ErrRender, n.Name, n.Network)
	}
	type sn struct {
		name string
		addr netip.Addr
		m    pool.Member
	}
	var sns []sn
	for _, name := range n.ServiceNodes {
		m, ok := st.Member(name)
		if !ok {
			continue
		}
		if a, ok := m.Addresses[n.Network]; ok {
			sns = append(sns, sn{name, a, m})
		}
	}
	if len(sns) == 0 {
		return nil, fmt.Errorf("%w: node %s: no servicenode in %v has an address on network %s", ErrRender, n.Name, n.ServiceNodes, n.Network)
	}
	header := fmt.Sprintf("# Written by mnpool for %s (servicenodes %s); snmove rewrites it.\n", n.Name, strings.Join(n.ServiceNodes, ","))
	var out []File
	if b.wants(KindResolv) {
		var w strings.Builder
		count := 0
		for _, s := range sns {
			if s.m.Runs(pool.ServiceDNS) && count < MaxNameservers {
				if count == 0 {
					w.WriteString(header)
					domain := nw.Domain
					if domain == "" {
						domain = st.Site[pool.SiteDomain]
					}
					if domain != "" {
						if err := pool.ValidateDomain(domain); err != nil {
							return nil, fmt.Errorf("%w: node %s: %v", ErrRender, n.Name, err)
						}
						fmt.Fprintf(&w, "search %s\n", domain)
					}
				}
				fmt.Fprintf(&w, "nameserver %s\n", s.addr)
				count++
			}
		}
		if count > 0 {
			out = append(out, File{Kind: KindResolv, Data: []byte(w.String())})
		}
	}
	if b.wants(KindChrony) {
		var w strings.Builder
		for _, s := range sns {
			if s.m.Runs(pool.ServiceNTP) {
				fmt.Fprintf(&w, "server %s iburst\n", s.addr)
			}
		}
		if w.Len() > 0 {
			data := header + w.String() + "driftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\n"
			out = append(out, File{Kind: KindChrony, Data: []byte(data)})
		}
	}
	if b.wants(KindSyslog) {
		var w strings.Builder
		w.WriteString(header)
		for i, s := range sns {
			switch i {
			case 0:
				w.WriteString("*.* ")
			case 1:
				w.WriteString("$ActionExecOnlyWhenPreviousIsSuspended on\n& ")
			default:
				w.WriteString("& ")
			}
			fmt.Fprintf(&w, "@@%s\n", hostPort(s.addr))
		}
		if len(sns) > 1 {
			w.WriteString("$ActionExecOnlyWhenPreviousIsSuspended off\n")
		}
		out = append(out, File{Kind: KindSyslog, Data: []byte(w.String())})
	}
	if b.wants(KindRoute) && len(nw.Gateways) > 0 {
		gw := nw.Gateways[0]
		for _, s := range sns {
			if slices.Contains(nw.Gateways, s.addr) {
				gw = s.addr
				break
			}
		}
		out = append(out, File{Kind: KindRoute, Data: []byte(gw.String() + "\n")})
	}
	return out, nil
}

// hostPort writes an address for rsyslog's @@host: IPv6 in brackets.
func hostPort(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// UseAddress returns a copy of st in which member's addresses are all
// addr, the address the nodes should use for it (snmove -D). st is not
// changed.
func UseAddress(st *pool.State, member string, addr netip.Addr) *pool.State {
	if !addr.IsValid() {
		return st
	}
	cp := *st
	cp.Members = slices.Clone(st.Members)
	for i, m := range cp.Members {
		if m.Name != member {
			continue
		}
		addrs := make(map[string]netip.Addr, len(m.Addresses))
		for k := range m.Addresses {
			addrs[k] = addr
		}
		cp.Members[i].Addresses = addrs
	}
	return &cp
}
