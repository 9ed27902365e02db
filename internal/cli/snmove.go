package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/sshkeys"
)

// progressMin is the number of nodes from which a progress bar is shown
// (on a terminal only).
const progressMin = 200

// snmoveFlags are snmove's own flags.
type snmoveFlags struct {
	source, dest, destIP string
	ignoreNodes, force   bool
	dryRun               bool
	parallel             int
	timeout              time.Duration
	sshUser              string
	sshPort              int
	keyDir               string
	knownHosts           []string
	noHostKeyCheck       bool
	nodeRoot             string
}

// snmoveOutput is what --json prints.
type snmoveOutput struct {
	Move    *pool.MoveResult `json:"move"`
	NodeCfg []nodecfg.Result `json:"nodecfg"`
	Summary snmoveSummary    `json:"summary"`
}

type snmoveSummary struct {
	pool.MoveCounts
	// Reconfigured and ReconfigFailed count the moved nodes whose
	// configuration was (not) pushed.
	Reconfigured    int  `json:"reconfigured"`
	ReconfigFailed  int  `json:"reconfig_failed"`
	ReconfigSkipped bool `json:"reconfig_skipped"`
	// Problems counts the nodes that make the exit status 1.
	Problems int `json:"problems"`
}

// NewSnmove builds the snmove command.
func NewSnmove(io IO) *cobra.Command {
	g := &globals{io: io}
	f := &snmoveFlags{}
	cmd := &cobra.Command{
		Use:   "snmove NODERANGE [-d DEST] [-D DEST_IP] | snmove -s SOURCE [-d DEST]",
		Short: "Move compute nodes to another member of the pool (xCAT snmove)",
		Long: `snmove moves compute nodes from one pool member (MN or SN) to another: it
reorders each node's servicenode list so that the destination comes first and
the source last, which moves the node's DHCP next-server, TFTP, NFS and console
server with it, and then points the services on the node (resolv.conf,
chrony.conf, the rsyslog target, the default route) at the new member over SSH
with the pool key.

Select the nodes by NODERANGE, or with -s by the member they are on (the
nodes whose servicenode list starts with SOURCE). The source may be down.
Without -d each node goes to the next usable member of its own list; with
a NODERANGE and no -d or -s only nodes whose first member is not usable
move. A dead or disabled destination is refused unless -f is given.

Running the same snmove again changes nothing. --dry-run prints the plan.
The exit status is 1 when any node could not be moved or reconfigured.`,
		Example: `  snmove -s sn1                      # sn1 died: move its nodes to their next member
  snmove -s sn1 -d sn2 --dry-run      # show what moving sn1's nodes to sn2 would change
  snmove cn001,cn002 -d sn3 -D 10.1.0.3
  snmove -s sn1 -i --json             # database only, machine-readable`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnmove(cmd.Context(), g, f, args)
		},
	}
	cmd.SetIn(io.In)
	cmd.SetOut(io.Out)
	cmd.SetErr(io.Err)
	g.addFlags(cmd)
	g.addJSON(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.source, "source", "s", "", "move the nodes whose servicenode list starts with this member")
	fl.StringVarP(&f.dest, "dest", "d", "", "destination member (default: per node, the next usable member of its list)")
	fl.StringVarP(&f.destIP, "destn", "D", "", "address the nodes should use for the destination (one of its addresses)")
	fl.BoolVarP(&f.ignoreNodes, "ignorenodes", "i", false, "change only the pool database; do not reconfigure the nodes")
	fl.BoolVarP(&f.force, "force", "f", false, "move to a destination that is dead, suspect or disabled")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan; change nothing")
	fl.IntVar(&f.parallel, "parallel", nodecfg.DefaultParallel, "nodes reconfigured at once")
	fl.DurationVar(&f.timeout, "timeout", nodecfg.DefaultTimeout, "time allowed per node for reconfiguration")
	fl.StringVar(&f.sshUser, "ssh-user", nodecfg.DefaultSSHUser, "user to log in as on the nodes")
	fl.IntVar(&f.sshPort, "ssh-port", 22, "SSH port of the nodes")
	fl.StringVar(&f.keyDir, "key-dir", sshkeys.DefaultDir, "directory of the pool SSH key")
	fl.StringSliceVar(&f.knownHosts, "known-hosts", nodecfg.DefaultKnownHosts(), "known_hosts files with the nodes' host keys (those that exist are used)")
	fl.BoolVar(&f.noHostKeyCheck, "no-host-key-check", false, "accept any host key from the nodes (insecure)")
	fl.StringVar(&f.nodeRoot, "node-root", "", "write the files under this directory on the nodes (an image root)")
	return cmd
}

// Snmove is the main function of cmd/snmove.
func Snmove(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewSnmove(io), args, io.Err)
}

// expandNoderange turns the command line's noderange (xCAT syntax:
// cn[001-100], groups, exclusions, /regex) into node names.
func expandNoderange(ctx context.Context, s *pool.Store, args []string) ([]string, error) {
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	return expandNodes(st, args)
}

// sshPusher builds the SSH pusher from the pool key and known_hosts.
func sshPusher(ctx context.Context, g *globals, f *snmoveFlags) (*nodecfg.SSH, error) {
	p, err := nodecfg.NewSSH(ctx, nodecfg.SSHConfig{KeyDir: f.keyDir, KnownHosts: f.knownHosts, InsecureIgnoreHostKey: f.noHostKeyCheck,
		User: f.sshUser, Port: f.sshPort, Root: f.nodeRoot, Apply: true, Log: g.logger()})
	if err != nil {
		return nil, fmt.Errorf("%w (give --known-hosts FILE, --no-host-key-check, or -i to skip reconfiguring the nodes)", err)
	}
	return p, nil
}

// progress returns a bar on stderr when it is a terminal and n is large
// enough to wait for, else nil.
func progress(g *globals, n int, what string) *progressbar.ProgressBar {
	f, ok := g.io.Err.(*os.File)
	if !ok || n < progressMin || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true), progressbar.OptionSetRenderBlankState(true))
}

// moveRequest turns the command line into a move request (nodes not yet
// expanded).
func moveRequest(f *snmoveFlags, args []string) (pool.MoveRequest, error) {
	req := pool.MoveRequest{Source: f.source, Target: f.dest, Force: f.force, DryRun: f.dryRun}
	switch {
	case len(args) == 0 && f.source == "":
		return req, usagef("give a NODERANGE or -s SOURCE")
	case f.parallel < 1:
		return req, usagef("--parallel %d: want 1 or more", f.parallel)
	case f.timeout <= 0:
		return req, usagef("--timeout %s: want a positive duration", f.timeout)
	case f.destIP == "":
		return req, nil
	}
	a, err := netip.ParseAddr(f.destIP)
	if err != nil {
		return req, usagef("-D %q is not an IP address", f.destIP)
	}
	if f.dest == "" {
		return req, usagef("-D needs -d DEST: the address is one of DEST's")
	}
	req.TargetAddr = a
	return req, nil
}

func runSnmove(ctx context.Context, g *globals, f *snmoveFlags, args []string) error {
	if len(args) > 1 {
		args = []string{strings.Join(args, ",")}
	}
	req, err := moveRequest(f, args)
	if err != nil {
		return err
	}
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	// Everything the node reconfiguration needs is checked before the
	// move, so that a missing key does not leave nodes moved but not
	// reconfigured.
	var pusher *nodecfg.SSH
	if !f.ignoreNodes && !f.dryRun {
		if pusher, err = sshPusher(ctx, g, f); err != nil {
			return err
		}
	}
	if len(args) > 0 {
		if req.Nodes, err = expandNoderange(ctx, s, args); err != nil {
			return err
		}
		if len(req.Nodes) == 0 {
			return fmt.Errorf("%w: noderange %s selects no node", pool.ErrNotFound, args[0])
		}
	}
	if req.Liveness, err = livenessView(ctx, s); err != nil {
		return err
	}
	res, moveErr := moveWithBar(ctx, g, s, req)
	if res == nil {
		return moveErr
	}
	out := snmoveOutput{Move: res, NodeCfg: []nodecfg.Result{}}
	out.Summary.ReconfigSkipped = f.ignoreNodes || f.dryRun
	if pusher != nil && len(nodecfg.MovedNodes(res)) > 0 {
		rep, err := reconfigure(ctx, g, f, s, pusher, res)
		if rep != nil {
			out.NodeCfg = rep.Results
		}
		moveErr = errors.Join(moveErr, err)
	}
	out.summarize()
	return finishSnmove(g, out, moveErr)
}

// moveWithBar runs the move with a progress bar on a terminal.
func moveWithBar(ctx context.Context, g *globals, s *pool.Store, req pool.MoveRequest) (*pool.MoveResult, error) {
	var bar *progressbar.ProgressBar
	noBar := false
	req.Progress = func(done, total int) {
		if bar == nil && !noBar {
			bar = progress(g, total, "moving")
			noBar = bar == nil
		}
		if bar != nil {
			bar.Set(done)
		}
	}
	res, err := s.Move(ctx, req)
	if bar != nil {
		bar.Finish()
	}
	return res, err
}

func (out *snmoveOutput) summarize() {
	res := out.Move
	out.Summary.MoveCounts = res.Counts
	for _, r := range out.NodeCfg {
		if r.Err != nil {
			out.Summary.ReconfigFailed++
		} else {
			out.Summary.Reconfigured++
		}
	}
	out.Summary.Problems = res.Counts.Failed + res.Counts.NoTarget + out.Summary.ReconfigFailed
}

// finishSnmove prints the outcome and returns the exit error.
func finishSnmove(g *globals, out snmoveOutput, moveErr error) error {
	if g.json {
		if err := printJSON(g.io.Out, out); err != nil {
			return err
		}
	} else if err := printSnmove(g.io.Out, out); err != nil {
		return err
	}
	if moveErr != nil {
		return moveErr
	}
	res := out.Move
	if n := out.Summary.Problems; n > 0 {
		return fmt.Errorf("%d of %d nodes not done (failed %d, no usable target %d, not reconfigured %d)",
			n, len(res.Nodes), res.Counts.Failed, res.Counts.NoTarget, out.Summary.ReconfigFailed)
	}
	return nil
}

// reconfigure pushes the new configuration to every moved node
// (nodecfg.Reconfigure), with a progress bar on a terminal.
func reconfigure(ctx context.Context, g *globals, f *snmoveFlags, s *pool.Store, p nodecfg.Pusher, res *pool.MoveResult) (*nodecfg.Report, error) {
	bar := progress(g, len(nodecfg.MovedNodes(res)), "reconfiguring")
	// The dns and ntp packages replace the built-in renderer when they
	// land.
	opts := nodecfg.Options{Pusher: p, Parallel: f.parallel, Timeout: f.timeout, Deadline: -1}
	if bar != nil {
		opts.Done = func(nodecfg.Result) { bar.Add(1) }
	}
	rep, err := nodecfg.Reconfigure(ctx, s, res, opts)
	if bar != nil {
		bar.Finish()
	}
	return rep, err
}

func printSnmove(w io.Writer, out snmoveOutput) error {
	cfg := map[string]nodecfg.Result{}
	for _, r := range out.NodeCfg {
		cfg[r.Node] = r
	}
	t := newTable(w, "node", "status", "servicenodes", "node config", "detail")
	for _, n := range out.Move.Nodes {
		sns := strings.Join(n.Old, ",")
		if len(n.New) > 0 {
			sns += " -> " + strings.Join(n.New, ",")
		}
		var detail []string
		for _, c := range n.Changes {
			if c.Setting != pool.SettingServiceNode {
				detail = append(detail, c.Setting+" "+c.Old+"->"+c.New)
			}
		}
		if n.Reason != "" {
			detail = append(detail, n.Reason)
		}
		state := ""
		if r, ok := cfg[n.Node]; ok {
			switch {
			case r.Err != nil:
				state = "failed"
				detail = append(detail, r.Err.Error())
			case r.Changed:
				state = "changed"
			default:
				state = "up to date"
			}
		} else if n.Status == pool.MoveMoved && out.Summary.ReconfigSkipped {
			state = "skipped"
		}
		t.row(n.Node, string(n.Status), sns, state, strings.Join(detail, "; "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	c := out.Summary
	verb := "moved"
	count := c.Moved
	if out.Move.DryRun {
		verb, count = "would move", c.Planned
	}
	fmt.Fprintf(w, "%s %d nodes, %d unchanged, %d without a usable target, %d failed", verb, count, c.Unchanged, c.NoTarget, c.Failed)
	switch {
	case out.Move.DryRun:
		fmt.Fprintln(w, " (dry run: nothing changed)")
	case c.ReconfigSkipped:
		fmt.Fprintln(w, "; nodes not reconfigured (-i)")
	default:
		fmt.Fprintf(w, "; reconfigured %d nodes, %d failed\n", c.Reconfigured, c.ReconfigFailed)
	}
	return nil
}
