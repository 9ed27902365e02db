package dispatch

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Routing modes of PlanOptions.Via.
const (
	// ViaAuto sends each node through the first usable member of its
	// servicenode list; nodes this member serves, members, and nodes
	// whose members are all dead run from here.
	ViaAuto = "auto"
	// ViaDirect runs everything from here (a flat management network).
	ViaDirect = "direct"
)

// Plan says which targets run from here and which through members.
type Plan struct {
	// Direct are run from here.
	Direct []Target `json:"direct"`
	// Relays are groups of targets sent to a member.
	Relays []RelayGroup `json:"relays"`
	// Failed are targets that cannot be run at all (no address); their
	// Results are delivered as they are.
	Failed []Result `json:"-"`
}

// RelayGroup is a set of targets run by a member.
type RelayGroup struct {
	// Via are the members in hop order: Via[0] is reached from here and
	// the last one runs the targets.
	Via     []Target `json:"via"`
	Targets []Target `json:"targets"`
}

// Len is the number of targets in the plan.
func (p Plan) Len() int {
	n := len(p.Direct) + len(p.Failed)
	for _, g := range p.Relays {
		n += len(g.Targets)
	}
	return n
}

// PlanOptions steer NewPlan.
type PlanOptions struct {
	// Self is the member this runs on (may be "" or a name that is no
	// member, for a host outside the pool).
	Self string
	// Via is ViaAuto (default), ViaDirect, a member name, or several
	// member names separated by commas for a chain of hops.
	Via string
	// Port is the SSH port of nodes and members (0: 22).
	Port int
	// Liveness is the members' liveness (Store.PublishedView); nil takes
	// every member as usable.
	Liveness liveness.Source
}

// Universe returns the names a noderange may use: every node, every
// member, and the node groups. Member names are whole names: sn1 never
// selects sn10.
func Universe(st *pool.State) (noderange.Universe, error) {
	names := make([]string, 0, len(st.Nodes)+len(st.Members))
	groups := map[string][]string{}
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		for _, g := range n.Groups {
			groups[g] = append(groups[g], n.Name)
		}
	}
	for _, m := range st.Members {
		names = append(names, m.Name)
	}
	return noderange.NewStatic(names, groups)
}

// Select expands an xCAT noderange over the pool's nodes and members. An
// empty expression or one that selects nothing is ErrInvalid; unknown
// names are ErrUnknown (and noderange.ErrUnknown) listing them.
func Select(st *pool.State, expr string) ([]string, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errorf(ErrInvalid, "empty noderange (give node names, ranges such as cn[001-100], or groups)")
	}
	u, err := Universe(st)
	if err != nil {
		return nil, err
	}
	names, err := noderange.Expand(expr, u, noderange.WithFileOpener(func(name string) (io.ReadCloser, error) { return os.Open(name) }))
	switch {
	case err != nil && isUnknown(err):
		return nil, kindError{kind: ErrUnknown, err: err}
	case err != nil:
		return nil, errorf(ErrInvalid, "noderange %q: %w", expr, err)
	case len(names) == 0:
		return nil, errorf(ErrInvalid, "noderange %q selects no node", expr)
	}
	return names, nil
}

func isUnknown(err error) bool { return errors.Is(err, noderange.ErrUnknown) }

// NewPlan routes names (nodes and members of st) according to o.
func NewPlan(st *pool.State, names []string, o PlanOptions) (Plan, error) {
	port := o.Port
	if port == 0 {
		port = 22
	}
	if port < 1 || port > 65535 {
		return Plan{}, errorf(ErrInvalid, "port %d (allowed: 1 to 65535)", o.Port)
	}
	pl := planner{st: st, o: o, port: strconv.Itoa(port), nodes: map[string]*pool.Node{}}
	for i := range st.Nodes {
		pl.nodes[st.Nodes[i].Name] = &st.Nodes[i]
	}
	chain, err := pl.chain()
	if err != nil {
		return Plan{}, err
	}
	var p Plan
	groups := map[string]*RelayGroup{}
	var order []string
	for _, name := range names {
		t, res, err := pl.target(name)
		if err != nil {
			return Plan{}, err
		}
		if res != nil {
			p.Failed = append(p.Failed, *res)
			continue
		}
		via := pl.via(name, chain)
		if len(via) == 0 || (len(via) == 1 && via[0].Name == name) {
			p.Direct = append(p.Direct, t)
			continue
		}
		key := viaKey(via)
		g, ok := groups[key]
		if !ok {
			g = &RelayGroup{Via: via}
			groups[key] = g
			order = append(order, key)
		}
		g.Targets = append(g.Targets, t)
	}
	sort.Strings(order)
	for _, k := range order {
		p.Relays = append(p.Relays, *groups[k])
	}
	return p, nil
}

func viaKey(via []Target) string {
	names := make([]string, len(via))
	for i, v := range via {
		names[i] = v.Name
	}
	return strings.Join(names, ",")
}

type planner struct {
	st    *pool.State
	o     PlanOptions
	port  string
	nodes map[string]*pool.Node
}

// chain resolves an explicit --via list (nil for auto and direct).
func (pl *planner) chain() ([]Target, error) {
	switch pl.o.Via {
	case "", ViaAuto, ViaDirect:
		return nil, nil
	}
	var out []Target
	for _, m := range strings.Split(pl.o.Via, ",") {
		if _, ok := pl.st.Member(m); !ok {
			return nil, errorf(ErrInvalid, "--via %q: %q is not a member of the pool (allowed: auto, direct, or member names: %s)", pl.o.Via, m, strings.Join(pl.memberNames(), ", "))
		}
		if m == pl.o.Self && len(out) == 0 {
			continue // through ourselves: nothing to hop
		}
		out = append(out, pl.memberTarget(m))
	}
	return out, nil
}

func (pl *planner) memberNames() []string {
	out := make([]string, len(pl.st.Members))
	for i, m := range pl.st.Members {
		out[i] = m.Name
	}
	return out
}

// target builds the target of name, or a failed Result when it has no
// address.
func (pl *planner) target(name string) (Target, *Result, error) {
	if _, ok := pl.st.Member(name); ok {
		t := pl.memberTarget(name)
		if t.Addr == "" {
			return t, &Result{Node: name, Kind: KindMember, ExitCode: -1,
				Err: errorf(ErrConnect, "member %s has no address", name)}, nil
		}
		return t, nil, nil
	}
	n, ok := pl.nodes[name]
	if !ok {
		return Target{}, nil, errorf(ErrUnknown, "%s is neither a node nor a member", name)
	}
	t := Target{Name: name, Kind: KindNode}
	if !n.IP.IsValid() {
		return t, &Result{Node: name, Kind: KindNode, ExitCode: -1,
			Err: errorf(ErrConnect, "node %s has no IP address in the pool", name)}, nil
	}
	t.Addr = net.JoinHostPort(n.IP.String(), pl.port)
	return t, nil, nil
}

// memberTarget addresses a member: its address on a network this member
// is also on, else its address on the first network by name.
func (pl *planner) memberTarget(name string) Target {
	m, _ := pl.st.Member(name)
	t := Target{Name: name, Kind: KindMember}
	var self pool.Member
	if pl.o.Self != "" {
		self, _ = pl.st.Member(pl.o.Self)
	}
	nets := make([]string, 0, len(m.Addresses))
	for n := range m.Addresses {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	var addr netip.Addr
	for _, n := range nets {
		if _, ok := self.Addresses[n]; ok {
			addr = m.Addresses[n]
			break
		}
	}
	if !addr.IsValid() && len(nets) > 0 {
		addr = m.Addresses[nets[0]]
	}
	if addr.IsValid() {
		t.Addr = net.JoinHostPort(addr.String(), pl.port)
	}
	return t
}

// via returns the members name goes through (nil: from here).
func (pl *planner) via(name string, chain []Target) []Target {
	switch pl.o.Via {
	case ViaDirect:
		return nil
	case "", ViaAuto:
	default:
		return chain
	}
	n, ok := pl.nodes[name]
	if !ok {
		return nil // members are run from here
	}
	for _, sn := range n.ServiceNodes {
		if _, ok := pl.st.Member(sn); !ok {
			continue
		}
		if pl.o.Liveness != nil && !pl.o.Liveness.LiveState(sn).Usable() {
			continue
		}
		if sn == pl.o.Self {
			return nil
		}
		t := pl.memberTarget(sn)
		if t.Addr == "" {
			continue
		}
		return []Target{t}
	}
	return nil // every servicenode is dead: run it from here
}

// ViaChain names the members of a relay group, "sn1" or "sn1,sn2".
func ViaChain(g RelayGroup) string { return viaKey(g.Via) }
