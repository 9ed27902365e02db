package dhcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
)

// MakeOptions are the arguments of Make: xCAT's makedhcp, for the member
// Self. The flags combine as in xCAT:
//
//	New          -n: write a new configuration; a file that was written for
//	             another member, or that is not mnpool's, is replaced
//	All          -a: every node (brings back nodes removed with -d)
//	Noderange    NODERANGE: these nodes (brings them back after a -d)
//	Delete       -d NODERANGE (or -d -a): remove these nodes' host entries,
//	             on every member, until they are brought back
//	Query        -q NODERANGE (or -q -a): what the file on disk holds
//	AllMembers   --all-members: every DHCP member's file into the
//	             directory Applier.Path, for inspection (no reload)
//	CheckOnly    --check: render and check with the daemon; write nothing
//
// The file always holds every node the member serves except those removed
// with Delete; the set of removed nodes is kept in the pool database
// (table dhcp_excluded), so makemn's sync and the agent leave them out
// too.
type MakeOptions struct {
	Self       string
	Applier    ApplierConfig
	New        bool
	All        bool
	Noderange  string
	Delete     bool
	Query      bool
	AllMembers bool
	CheckOnly  bool
	// Gate, when set, decides whether the dynamic range is served (the
	// MN guard of a running agent). Without it Make confirms the member
	// as the MN of the current epoch with a mnguard.Guard built from
	// Guard: through a healthy database node, and after the guard's hold
	// unless the file on disk already serves the range under this epoch.
	Gate  poolsync.DynamicGate
	Guard []mnguard.Option
}

// Validate checks the combination of options; the errors wrap ErrInvalid
// and say what is allowed. Nothing is read or written.
func (o MakeOptions) Validate() error {
	nr := strings.TrimSpace(o.Noderange) != ""
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case o.AllMembers:
		if nr || o.Delete || o.Query || o.New || o.All || o.CheckOnly {
			return bad("--all-members renders every node for every member; it takes no NODERANGE, -n, -a, -d, -q or --check")
		}
	case o.Query:
		if o.New || o.Delete || o.CheckOnly {
			return bad("-q only reads the configuration; it does not go with -n, -d or --check")
		}
		if nr == o.All {
			return bad("-q needs a NODERANGE or -a")
		}
	case o.Delete:
		if nr == o.All {
			return bad("-d needs a NODERANGE (or -a for every node)")
		}
	default:
		if o.All && nr {
			return bad("give -a or a NODERANGE, not both")
		}
		if !o.New && !o.All && !nr {
			return bad("nothing to do: give -n, -a or a NODERANGE")
		}
	}
	if !o.AllMembers {
		if err := pool.ValidateName("member", o.Self); err != nil {
			return fmt.Errorf("%w: this member: %v", ErrInvalid, err)
		}
	}
	return o.Applier.Validate()
}

// Dynamic says whether the file serves the networks' dynamic ranges and
// why.
type Dynamic struct {
	Served bool   `json:"served"`
	Epoch  int64  `json:"epoch,omitempty"`
	Why    string `json:"why"`
}

// MemberFile is one member's file of an AllMembers run.
type MemberFile struct {
	Config *Config `json:"config"`
	Result Result  `json:"result"`
}

// QueryEntry is what the file holds for one node.
type QueryEntry struct {
	Node       string          `json:"node"`
	Configured bool            `json:"configured"`
	Excluded   bool            `json:"removed,omitempty"`
	Hosts      []InstalledHost `json:"hosts,omitempty"`
}

// QueryReport is the answer of a Query run.
type QueryReport struct {
	Path    string       `json:"path"`
	Member  string       `json:"member"`
	MN      string       `json:"mn"`
	Epoch   int64        `json:"epoch"`
	Dynamic bool         `json:"dynamic"`
	Nodes   []QueryEntry `json:"nodes"`
}

// MakeReport is what Make found and did.
type MakeReport struct {
	Member    string  `json:"member,omitempty"`
	CheckOnly bool    `json:"check_only,omitempty"`
	Config    *Config `json:"config,omitempty"`
	Result    Result  `json:"result"`
	Dynamic   Dynamic `json:"dynamic"`
	// Removed are the nodes this run removed (Delete); Restored those it
	// brought back; StillRemoved counts the nodes left out because of an
	// earlier -d.
	Removed      []string `json:"removed,omitempty"`
	Restored     []string `json:"restored,omitempty"`
	StillRemoved int      `json:"still_removed,omitempty"`
	// Notes are things a person should know (a node not served here, a
	// Kea socket missing, ...).
	Notes   []string     `json:"notes,omitempty"`
	Members []MemberFile `json:"members,omitempty"`
	Query   *QueryReport `json:"query,omitempty"`
}

// Make runs makedhcp for o.Self (see MakeOptions). It reads the pool
// once, changes the set of removed nodes (Delete, All, Noderange), decides
// the dynamic range with the MN guard, renders, checks with the daemon,
// writes atomically with a backup and reloads the daemon (Applier).
//
// Errors: ErrInvalid for bad options (nothing read or written); ErrFormat
// when the file on disk belongs to another member or format and New is
// not set (nothing written); ErrCheck when the daemon rejects the file
// (nothing written); ErrReload when the file was written but the daemon
// could not be told (the report then says what was written).
func Make(ctx context.Context, s *pool.Store, o MakeOptions) (*MakeReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.Applier = o.Applier.WithDefaults()
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	excl, err := Excluded(ctx, s)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Query:
		return query(st, excl, o)
	case o.AllMembers:
		return allMembers(ctx, st, excl, o.Applier)
	}
	r := &makeRun{s: s, o: o, st: st, excl: excl, rep: &MakeReport{Member: o.Self, CheckOnly: o.CheckOnly}}
	return r.rep, r.run(ctx)
}

type makeRun struct {
	s      *pool.Store
	o      MakeOptions
	st     *pool.State
	excl   map[string]bool
	onDisk *Installed // the file on disk, when it is this member's
	old    []byte
	rep    *MakeReport
}

func (r *makeRun) note(format string, args ...any) {
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(format, args...))
}

func (r *makeRun) run(ctx context.Context) error {
	fileNodes, err := r.readFile()
	if err != nil {
		return err
	}
	change, asked, err := r.plan(fileNodes)
	if err != nil {
		return err
	}
	newExcl := make(map[string]bool, len(r.excl))
	for n := range r.excl {
		newExcl[n] = true
	}
	for _, n := range change.add {
		newExcl[n] = true
	}
	for _, n := range change.remove {
		delete(newExcl, n)
	}
	dyn, err := r.decideDynamic(ctx)
	if err != nil {
		return err
	}
	r.rep.Dynamic = Dynamic{Served: dyn.serve, Epoch: dyn.epoch, Why: dyn.why}
	cfg, served, err := renderFor(r.st, r.o.Self, newExcl, r.o.Applier.RenderOptions(), dyn.serve)
	if err != nil {
		return err
	}
	r.rep.Config = cfg
	r.explain(cfg, asked, served, newExcl)
	if r.o.CheckOnly {
		return r.checkOnly(ctx, cfg)
	}
	if dyn.serve && dyn.still != nil && !dyn.still() {
		// The confirmation expired while rendering: render without.
		r.rep.Dynamic = Dynamic{Why: "the MN guard's confirmation expired while rendering; no dynamic range"}
		if cfg, _, err = renderFor(r.st, r.o.Self, newExcl, r.o.Applier.RenderOptions(), false); err != nil {
			return err
		}
		r.rep.Config = cfg
	}
	res, err := r.o.Applier.Applier().Apply(ctx, cfg.Data)
	r.rep.Result = res
	if res.NotReloaded != "" {
		r.note("%s", res.NotReloaded)
	}
	if err != nil && !res.Changed {
		return err
	}
	if werr := writeExclusions(ctx, r.s, change); werr != nil {
		return errors.Join(err, fmt.Errorf("%s was written, but the removed nodes could not be recorded (run makedhcp again): %w", res.Path, werr))
	}
	r.rep.Removed, r.rep.Restored = change.add, change.remove
	return err
}

// readFile reads the file on disk and returns the nodes it holds. A file
// of another member or format, or not mnpool's, is replaced only with New.
func (r *makeRun) readFile() (map[string]bool, error) {
	have := map[string]bool{}
	path := r.o.Applier.Path
	old, err := atomicfile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return have, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: reading %s: %w", path, err)
	}
	r.old = old
	in, perr := Parse(old)
	switch {
	case perr != nil && !r.o.New:
		return nil, fmt.Errorf("%s: %w; use -n to replace it (the old file is kept as %s.bak)", path, perr, path)
	case perr != nil:
		return have, nil
	case in.Format != r.o.Applier.Format:
		return nil, fmt.Errorf("%w: %s is a %s configuration; use --dhcp-format %s (or another --dhcp-config)", ErrFormat, path, in.Format, in.Format)
	case in.Member != r.o.Self && !r.o.New:
		return nil, fmt.Errorf("%w: %s was written for member %s, and this is %s; use -n to replace it", ErrFormat, path, in.Member, r.o.Self)
	case in.Member == r.o.Self:
		r.onDisk = in
		for _, n := range in.Nodes() {
			have[n] = true
		}
	}
	return have, nil
}

// plan works out the change to the removed nodes and the nodes asked for.
func (r *makeRun) plan(fileNodes map[string]bool) (exclusionChange, []string, error) {
	var c exclusionChange
	inPool := make(map[string]bool, len(r.st.Nodes))
	for _, n := range r.st.Nodes {
		inPool[n.Name] = true
	}
	if !r.o.CheckOnly {
		for n := range r.excl {
			if !inPool[n] {
				c.purge = append(c.purge, n)
			}
		}
	}
	switch {
	case r.o.Delete && r.o.All:
		for _, n := range r.st.Nodes {
			if !r.excl[n.Name] {
				c.add = append(c.add, n.Name)
			}
		}
		return c, nil, nil
	case r.o.Delete:
		names, err := expandNodes(r.st, r.o.Noderange, fileNodes)
		if err != nil {
			return c, nil, err
		}
		for _, n := range names {
			switch {
			case !inPool[n]:
				r.note("%s: not a node of the pool; its entry is left out of the file", n)
			case r.excl[n]:
				r.note("%s: removed already (makedhcp -d)", n)
			default:
				if !fileNodes[n] && r.onDisk != nil {
					r.note("%s: had no host entry", n)
				}
				c.add = append(c.add, n)
			}
		}
		return c, nil, nil
	case r.o.All:
		c.remove = excludedList(r.excl)
		return c, nil, nil
	case strings.TrimSpace(r.o.Noderange) != "":
		names, err := expandNodes(r.st, r.o.Noderange, nil)
		if err != nil {
			return c, nil, err
		}
		for _, n := range names {
			if r.excl[n] {
				c.remove = append(c.remove, n)
			}
		}
		return c, names, nil
	}
	return c, nil, nil // -n alone: the node set stays
}

// explain adds notes on nodes asked for but not served and on skipped
// nodes.
func (r *makeRun) explain(cfg *Config, asked []string, served, excl map[string]bool) {
	for _, n := range asked {
		if !served[n] {
			r.note("%s: not served by %s (%s)", n, r.o.Self, whyNotServed(r.st, r.o.Self, n))
		}
	}
	for _, sk := range cfg.Skipped {
		r.note("%s: no host entry: %s", sk.Node, sk.Reason)
	}
	r.rep.Notes = append(r.rep.Notes, cfg.Notes...)
	for n := range excl {
		if served[n] {
			r.rep.StillRemoved++
		}
	}
}

func (r *makeRun) checkOnly(ctx context.Context, cfg *Config) error {
	a := r.o.Applier.Applier()
	if err := a.Checker.Check(ctx, a.Format, cfg.Data, ""); err != nil {
		return err
	}
	prog, _ := a.Checker.Program(a.Format)
	r.rep.Result = Result{Path: a.Path, Checked: prog, Changed: string(r.old) != string(cfg.Data)}
	return nil
}

// renderFor renders member's file with every node it serves except the
// removed ones. It is the one rendering of makedhcp, makemn's sync and
// the agent. served records the nodes Render considered for the member.
func renderFor(st *pool.State, member string, excl map[string]bool, ro Options, dynamic bool) (*Config, map[string]bool, error) {
	served := map[string]bool{}
	ro.ServeDynamic = dynamic
	ro.Select = func(n string) bool {
		served[n] = true
		return !excl[n]
	}
	cfg, err := Render(st, member, ro)
	return cfg, served, err
}

// whyNotServed explains why member renders no entry for node.
func whyNotServed(st *pool.State, member, node string) string {
	me, _ := st.Member(member)
	for _, n := range st.Nodes {
		if n.Name != node {
			continue
		}
		if n.Network == "" {
			return "the node has no network"
		}
		if _, ok := me.Addresses[n.Network]; !ok {
			return "it has no address on network " + n.Network
		}
		return "site.disjointdhcps=1 and the node's servicenode list does not name it"
	}
	return "unknown node"
}

// expandNodes expands a NODERANGE (xCAT syntax) against the pool's nodes
// and groups plus, for -d and -q, the names only the file has (nodes
// removed from the pool).
func expandNodes(st *pool.State, nr string, extra map[string]bool) ([]string, error) {
	names := make([]string, 0, len(st.Nodes)+len(extra))
	groups := map[string][]string{}
	known := make(map[string]bool, len(st.Nodes))
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		known[n.Name] = true
		for _, g := range n.Groups {
			groups[g] = append(groups[g], n.Name)
		}
	}
	for n := range extra {
		if !known[n] {
			names = append(names, n)
		}
	}
	u, err := noderange.NewStatic(names, groups)
	if err != nil {
		return nil, err
	}
	return noderange.Expand(nr, u, noderange.WithFileOpener(func(name string) (io.ReadCloser, error) { return os.Open(name) }))
}
