package nodecfg

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/ntp"
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

// Builtin is the Renderer snmove uses:
//
//   - resolv.conf: dns.NodeResolvConf (the servicenodes that run dns, in
//     list order, at most three; search the network's domain, then
//     site.domain);
//   - chrony.conf: ntp.NodeConf (`server ADDR iburst` per servicenode
//     that runs ntp);
//   - rsyslog: forward everything over TCP to the first servicenode, the
//     others as failover targets in list order;
//   - default route: via the first servicenode (in list order) whose
//     address is a gateway of the node's network, else the network's
//     first gateway (gateway.ForNode); none when the network has none.
//
// Addresses are each member's address on the node's network. A file with
// nothing to say (no servicenode runs dns, or ntp; no gateway) is not
// produced. The zero value renders every kind.
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
	if _, ok := st.Network(n.Network); !ok {
		return nil, fmt.Errorf("%w: node %s: network %s is not in the pool", ErrRender, n.Name, n.Network)
	}
	sns := memberaddr.ServiceNodes(st, n)
	if len(sns) == 0 {
		return nil, fmt.Errorf("%w: node %s: no servicenode in %v has an address on network %s", ErrRender, n.Name, n.ServiceNodes, n.Network)
	}
	header := fmt.Sprintf("# Written by mnpool for %s (servicenodes %s); snmove rewrites it.\n", n.Name, strings.Join(n.ServiceNodes, ","))
	var out []File
	if b.wants(KindResolv) {
		data, err := renderResolv(st, n)
		if err != nil {
			return nil, fmt.Errorf("%w: node %s: resolv.conf: %w", ErrRender, n.Name, err)
		}
		if data != nil {
			out = append(out, File{Kind: KindResolv, Data: data})
		}
	}
	if b.wants(KindChrony) {
		data, err := renderChrony(st, n)
		if err != nil {
			return nil, fmt.Errorf("%w: node %s: chrony.conf: %w", ErrRender, n.Name, err)
		}
		if data != nil {
			out = append(out, File{Kind: KindChrony, Data: data})
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
			fmt.Fprintf(&w, "@@%s\n", hostPort(s.Addr))
		}
		if len(sns) > 1 {
			w.WriteString("$ActionExecOnlyWhenPreviousIsSuspended off\n")
		}
		out = append(out, File{Kind: KindSyslog, Data: []byte(w.String())})
	}
	if b.wants(KindRoute) {
		gws, err := gateway.ForNode(st, n)
		if err != nil {
			return nil, fmt.Errorf("%w: node %s: default route: %w", ErrRender, n.Name, err)
		}
		if len(gws) > 0 {
			gw := gws[0]
			for _, s := range sns {
				if slices.Contains(gws, s.Addr) {
					gw = s.Addr
					break
				}
			}
			out = append(out, File{Kind: KindRoute, Data: []byte(gw.String() + "\n")})
		}
	}
	return out, nil
}

// renderResolv is the node's resolv.conf, nil when none of its
// servicenodes runs dns.
func renderResolv(st *pool.State, n pool.Node) ([]byte, error) {
	rc, err := dns.NodeResolvConf(st, n)
	if errors.Is(err, dns.ErrNoServers) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return rc.Render()
}

// renderChrony is the node's chrony.conf, nil when none of its
// servicenodes runs ntp.
func renderChrony(st *pool.State, n pool.Node) ([]byte, error) {
	c, err := ntp.NodeConf(st, n)
	if errors.Is(err, ntp.ErrNoServers) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.Render()
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
