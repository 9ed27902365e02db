package console

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"

	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Defaults of ConserverOptions.
const (
	DefaultProgram = "/usr/bin/mnpool"
	DefaultLogDir  = "/var/log/consoles"
)

var safePathRE = regexp.MustCompile(`^/[A-Za-z0-9._+/-]*$`)

// ConserverOptions configure RenderConserver.
type ConserverOptions struct {
	// Member is the pool member the file is for.
	Member string
	// Program is the mnpool program conserver runs for each console
	// (default DefaultProgram).
	Program string
	// Socket is the Unix socket of the member's own broker that the
	// console command connects to (default DefaultSocket). conserver
	// runs as root on the member, so the broker admits it by its peer
	// credentials; conserver's own access rules then decide who may use
	// each console.
	Socket string
	// LogDir is where conserver logs each console (default
	// DefaultLogDir).
	LogDir string
	// OnDemand makes conserver open a console only while someone is
	// attached (conserver's "options ondemand"), so the member holds a
	// node's lease only then.
	OnDemand bool
}

// ServedBy returns the nodes whose console member serves now (see
// ServerNow), in natural order.
func ServedBy(st *pool.State, specs []Spec, holders map[string]Holder, live liveness.Source, member string) []string {
	if live == nil {
		live = liveness.Static(nil)
	}
	nodes := make(map[string]pool.Node, len(st.Nodes))
	for _, n := range st.Nodes {
		nodes[n.Name] = n
	}
	var out []string
	for _, sp := range specs {
		n, ok := nodes[sp.Node]
		if !ok {
			continue
		}
		if ServerNow(Allowed(st, n, sp), holders[sp.Node], live) == member {
			out = append(out, sp.Node)
		}
	}
	sort.Slice(out, func(i, j int) bool { return noderange.Less(out[i], out[j]) })
	return out
}

// RenderConserver renders conserver.cf for o.Member: one console block
// for each node whose console the member serves now. Each console is an
// exec console running `mnpool console --raw --socket PATH NODE`, so
// conserver attaches through the member's broker, which holds the node's
// console lease: the node's console still has one connection in the whole
// pool, and when the lease moves, conserver's client is proxied to the
// new holder until the file is rendered again. The output is
// deterministic.
func RenderConserver(st *pool.State, specs []Spec, holders map[string]Holder, live liveness.Source, o ConserverOptions) ([]byte, error) {
	if err := pool.ValidateName("member", o.Member); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, ok := st.Member(o.Member); !ok {
		return nil, fmt.Errorf("%w: member %q is not in the pool", ErrNotFound, o.Member)
	}
	if o.Program == "" {
		o.Program = DefaultProgram
	}
	if o.LogDir == "" {
		o.LogDir = DefaultLogDir
	}
	if !safePathRE.MatchString(o.Program) {
		return nil, fmt.Errorf("%w: program path %q: want an absolute path of letters, digits, '.', '_', '+', '-', '/'", ErrInvalid, o.Program)
	}
	if !safePathRE.MatchString(o.LogDir) {
		return nil, fmt.Errorf("%w: log directory %q: want an absolute path of letters, digits, '.', '_', '+', '-', '/'", ErrInvalid, o.LogDir)
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if !safePathRE.MatchString(o.Socket) {
		return nil, fmt.Errorf("%w: socket path %q: want an absolute path of letters, digits, '.', '_', '+', '-', '/'", ErrInvalid, o.Socket)
	}
	served := ServedBy(st, specs, holders, live, o.Member)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# conserver.cf for pool member %s, rendered by mnpool; do not edit.\n", o.Member)
	fmt.Fprintf(&b, "# Render again when consoles move: mnpool console conserver --member %s --file FILE\n", o.Member)
	b.WriteString("# Each console attaches through this member's mnpool console broker, which\n")
	b.WriteString("# holds the node's console lease: one connection per console in the pool.\n")
	fmt.Fprintf(&b, "# %d console(s) served by %s now.\n", len(served), o.Member)
	b.WriteString("\n")
	b.WriteString("default full {\n\trw *;\n}\n\n")
	b.WriteString("default mnpool {\n")
	b.WriteString("\tmaster localhost;\n")
	b.WriteString("\ttype exec;\n")
	fmt.Fprintf(&b, "\tlogfile %s/&;\n", o.LogDir)
	b.WriteString("\ttimestamp 1hab;\n")
	b.WriteString("\tinclude full;\n")
	if o.OnDemand {
		b.WriteString("\toptions ondemand,!autoreinit;\n")
	} else {
		b.WriteString("\toptions !ondemand,autoreinit;\n")
	}
	b.WriteString("}\n\n")
	b.WriteString("access * {\n\ttrusted 127.0.0.1;\n}\n")
	for _, n := range served {
		fmt.Fprintf(&b, "\nconsole %s {\n", n)
		b.WriteString("\tinclude mnpool;\n")
		fmt.Fprintf(&b, "\texec %s console --raw --socket %s %s;\n", o.Program, o.Socket, n)
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}
