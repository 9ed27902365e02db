package dhcp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// dynDecision is whether a file may carry the dynamic range.
type dynDecision struct {
	serve bool
	epoch int64
	why   string
	// still asks again just before the file is published.
	still func() bool
}

// decideDynamic: only the member that the MN guard confirms as the MN of
// the current epoch serves the dynamic range.
func (r *makeRun) decideDynamic(ctx context.Context) (dynDecision, error) {
	mn := r.st.Master
	if !r.st.IsMN(r.o.Self) {
		return dynDecision{why: fmt.Sprintf("not the MN (the MN is %s, epoch %d)", mn.Member, mn.Epoch)}, nil
	}
	if g := r.o.Gate; g != nil {
		e, ok := g.ServeDynamic()
		if !ok || e != mn.Epoch {
			return dynDecision{why: fmt.Sprintf("the MN guard does not confirm %s as the MN of epoch %d", r.o.Self, mn.Epoch)}, nil
		}
		return dynDecision{serve: true, epoch: e, why: fmt.Sprintf("confirmed MN of epoch %d", e),
			still: func() bool { e2, ok := g.ServeDynamic(); return ok && e2 == e }}, nil
	}
	return oneShotDynamic(ctx, r.s, r.o.Self, mn, r.onDisk, r.o.Guard)
}

// oneShotDynamic decides the dynamic range for a run without a running
// guard (makedhcp, mnpool sync): it confirms self as the MN of epoch mn
// with a mnguard.Guard built from opts, through a healthy database node.
// When the file on disk (onDisk, this member's) already serves the range
// under this epoch, the hold was waited out when it was written and the
// range is kept at once; otherwise the guard's hold is waited out first.
func oneShotDynamic(ctx context.Context, s *pool.Store, self string, mn pool.Master, onDisk *Installed, opts []mnguard.Option) (dynDecision, error) {
	opts = append([]mnguard.Option(nil), opts...)
	held := onDisk != nil && onDisk.Member == self && onDisk.Dynamic && onDisk.Epoch == mn.Epoch && onDisk.MN == self
	if held {
		opts = append(opts, mnguard.WithHold(0))
	}
	guard, err := mnguard.New(s, self, opts...)
	if err != nil {
		return dynDecision{}, err
	}
	m, err := guard.Confirm(ctx)
	if err != nil {
		return dynDecision{why: fmt.Sprintf("cannot confirm the MN role through a healthy database node (%v): no dynamic range", err)}, nil
	}
	if m.Member != self || m.Epoch != mn.Epoch {
		return dynDecision{why: fmt.Sprintf("the master record moved on: %s is the MN of epoch %d", m.Member, m.Epoch)}, nil
	}
	e, ok := guard.ServeDynamic()
	if !ok {
		e, ok = guard.WaitServe(ctx)
	}
	if !ok || e != mn.Epoch {
		st := guard.Status()
		return dynDecision{why: fmt.Sprintf("the MN guard did not confirm %s as the MN of epoch %d for its hold (%v; last error: %s)", self, mn.Epoch, st.Hold, st.LastError)}, nil
	}
	why := fmt.Sprintf("confirmed MN of epoch %d", e)
	if !held {
		_, _, hold := guard.Timing()
		why += fmt.Sprintf(" (after the hold of %v)", hold)
	}
	still := func() bool {
		if _, err := guard.Confirm(ctx); err != nil {
			return false
		}
		e2, ok := guard.ServeDynamic()
		return ok && e2 == e
	}
	return dynDecision{serve: true, epoch: e, why: why, still: still}, nil
}

// query reports what the file on disk holds for the nodes asked.
func query(st *pool.State, excl map[string]bool, o MakeOptions) (*MakeReport, error) {
	path := o.Applier.Path
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	in, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	byNode := map[string][]InstalledHost{}
	for _, h := range in.Hosts {
		byNode[h.Node] = append(byNode[h.Node], h)
	}
	names := in.Nodes()
	if !o.All {
		// Nodes of the pool that the file lacks are reported as not
		// configured: -q answers "is it configured?".
		inFile := make(map[string]bool, len(names))
		for _, n := range names {
			inFile[n] = true
		}
		if names, err = expandNodes(st, o.Noderange, inFile); err != nil {
			return nil, err
		}
	}
	q := &QueryReport{Path: path, Member: in.Member, MN: in.MN, Epoch: in.Epoch, Dynamic: in.Dynamic}
	for _, n := range names {
		hs := byNode[n]
		q.Nodes = append(q.Nodes, QueryEntry{Node: n, Configured: len(hs) > 0, Excluded: excl[n], Hosts: hs})
	}
	return &MakeReport{Member: in.Member, Query: q, Result: Result{Path: path}}, nil
}

// allMembers renders every DHCP member's configuration (all nodes but the
// removed ones, the dynamic range on the MN of the master record) into
// the directory c.Path, checked when the daemon is installed, for
// inspection. Nothing is reloaded.
func allMembers(ctx context.Context, st *pool.State, excl map[string]bool, c ApplierConfig) (*MakeReport, error) {
	if err := os.MkdirAll(c.Path, 0o755); err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	ext := ".dhcpd.conf"
	if c.Format == FormatKea {
		ext = ".kea-dhcp4.json"
	}
	members := append([]pool.Member(nil), st.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	rep := &MakeReport{Result: Result{Path: c.Path}}
	for _, m := range members {
		if !m.Runs(service.DHCP) {
			continue
		}
		cfg, _, err := renderFor(st, m.Name, excl, c.RenderOptions(), st.IsMN(m.Name))
		if err != nil {
			return rep, fmt.Errorf("member %s: %w", m.Name, err)
		}
		mc := c
		mc.Path, mc.Backup, mc.ReloadCommand, mc.KeaControlSocket = filepath.Join(c.Path, m.Name+ext), "-", nil, ""
		a := mc.Applier()
		a.KeaControlSocket = "" // inspection: never reload
		if ifs, _ := ParseInterfaces(st.Site[SiteDHCPInterfaces], m.Name); c.Format == FormatKea && len(ifs) > 0 && !(len(ifs) == 1 && ifs[0] == "*") {
			// kea-dhcp4 -t fails on interfaces that exist only on the
			// member, not on this host.
			a.Check = CheckNever
		}
		res, err := a.Apply(ctx, cfg.Data)
		if err != nil {
			return rep, fmt.Errorf("member %s: %w", m.Name, err)
		}
		if !res.Changed {
			res.Checked = ""
		}
		rep.Members = append(rep.Members, MemberFile{Config: cfg, Result: res})
	}
	return rep, nil
}
