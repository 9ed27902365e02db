package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/rolefiles"
)

// Membership commands: assign, route, heartbeat, rolefiles. Every one of
// them works the same from any member (--self only names who runs it).

// newMembershipCmds returns the membership commands for the root.
func newMembershipCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newAssignCmd(g), newRouteCmd(g), newHeartbeatCmd(g), newRoleFilesCmd(g)}
}

// livenessFlags are the observation options of status and route.
type livenessFlags struct {
	sample    time.Duration
	interval  time.Duration
	suspect   time.Duration
	dead      time.Duration
	heartbeat time.Duration
}

func (l *livenessFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&l.sample, "sample", 0, "watch the heartbeat counters for this long (e.g. 5s) and judge liveness here, instead of reading what the members' agents published")
	f.DurationVar(&l.interval, "sample-interval", 0, "how often to read the counters while sampling (default: a tenth of --sample, at most 1s)")
	f.DurationVar(&l.suspect, "suspect", liveness.DefaultSuspectAfter, "silence after which a member is suspect (with --sample)")
	f.DurationVar(&l.dead, "dead", liveness.DefaultDeadAfter, "silence after which a member is dead (with --sample)")
	f.DurationVar(&l.heartbeat, "heartbeat-interval", liveness.DefaultHeartbeatInterval, "the agents' heartbeat interval: a published judgement is stale when its agents have not published for 3 intervals (the command watches for up to that long)")
}

// ageOptions are the options of the published view's ages.
func (l *livenessFlags) ageOptions() pool.AgeOptions {
	return pool.AgeOptions{Interval: l.heartbeat}
}

// view returns the liveness view: sampled here with --sample, else the
// published one. local says which.
func (l *livenessFlags) view(ctx context.Context, s *pool.Store) (v liveness.View, local bool, err error) {
	if l.sample <= 0 {
		v, err = s.AgedView(ctx, l.ageOptions())
		return v, false, err
	}
	o, err := liveness.NewObserver(liveness.Config{SuspectAfter: l.suspect, DeadAfter: l.dead})
	if err != nil {
		return nil, false, usagef("%v", err)
	}
	iv := l.interval
	if iv <= 0 {
		iv = min(l.sample/10, time.Second)
	}
	v, err = o.Watch(ctx, s, l.sample, iv)
	return v, true, err
}

// livenessText renders one member's liveness for a table.
func livenessText(l *liveness.Judgement) string {
	if l == nil {
		return ""
	}
	s := string(l.State)
	if l.State != liveness.Unknown && l.State != liveness.Alive {
		s += " " + l.Silent.Round(100*time.Millisecond).String()
	}
	switch {
	case l.Stale:
		s += fmt.Sprintf(" (stale: no agent published for %s or more)", l.Age.Round(100*time.Millisecond))
	case l.Age > 0:
		s += fmt.Sprintf(" (%s ago)", l.Age.Round(100*time.Millisecond))
	}
	return s
}

// applyLiveness puts a view into a status (used by status --sample).
func applyLiveness(st *pool.Status, v liveness.View) {
	for i := range st.Members {
		l, ok := v[st.Members[i].Name]
		if !ok {
			l = liveness.Judgement{Member: st.Members[i].Name, State: liveness.Unknown}
		}
		st.Members[i].Liveness = &l
	}
}

// expandNodes turns the command line's noderange into node names; none
// means every node (nil).
func expandNodes(st *pool.State, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	nodes, err := selectNodes(st, args)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return names, nil
}

// openSelected opens the store, loads the pool and expands the command
// line's noderange. The caller closes the store.
func openSelected(ctx context.Context, g *globals, args []string) (*pool.Store, *pool.State, []string, error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := s.LoadState(ctx)
	if err == nil {
		var names []string
		if names, err = expandNodes(st, args); err == nil {
			return s, st, names, nil
		}
	}
	s.Close()
	return nil, nil, nil, err
}

const assignLong = `assign gives every selected node (all without a NODERANGE) an ordered list of
--width members (default 2) that are enabled, run dhcp and tftp, and have an
address on the node's network. The first entries are spread evenly over those
members (largest minus smallest share at most 1 per network), and so are the
second entries of the nodes sharing a first member, so a dead member's nodes
fail over evenly. The MN is listed like any SN.

Running it again changes nothing. After adding a member, only the nodes it must
take move to it; after disabling one, only its nodes move. Lists set by hand
(node add --servicenodes, an xCAT import) are kept and count as load, unless
--rebalance. Lists are written with conditional updates: a node changed
meanwhile by another member is planned again.`

const assignExample = `  mnpool assign                      # every node, lists of 2
  mnpool assign compute --width 3
  mnpool member set sn3 --disable && mnpool assign   # drain sn3
  mnpool assign rack1 --rebalance --dry-run`

func newAssignCmd(g *globals) *cobra.Command {
	var width int
	var rebalance, dryRun bool
	cmd := &cobra.Command{
		Use:     "assign [NODERANGE] [--width N] [--rebalance] [--dry-run]",
		Short:   "Give nodes balanced servicenode lists (noderes.servicenode)",
		Long:    assignLong,
		Example: assignExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if width != 0 && width < pool.MinWidth {
				return usagef("--width %d: want %d or more", width, pool.MinWidth)
			}
			ctx := cmd.Context()
			s, st, names, err := openSelected(ctx, g, args)
			if err != nil {
				return err
			}
			defer s.Close()
			o := pool.AssignOptions{Nodes: names, Width: width, Rebalance: rebalance}
			res, err := assignOrPlan(ctx, s, st, o, dryRun)
			if err != nil && len(res.Conflicts) == 0 {
				return err
			}
			if g.json {
				if res.Changes == nil {
					res.Changes = []pool.NodeAssignment{}
				}
				if perr := printJSON(g.io.Out, res); perr != nil {
					return perr
				}
				return err
			}
			printAssign(g, st, res, dryRun)
			return err
		},
	}
	cmd.Flags().IntVar(&width, "width", 0, fmt.Sprintf("members per list (default %d)", pool.DefaultWidth))
	cmd.Flags().BoolVar(&rebalance, "rebalance", false, "replace lists set by hand too")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change, write nothing")
	g.addJSON(cmd)
	return cmd
}

// assignOrPlan assigns, or with dryRun only plans, the servicenode lists o
// asks for.
func assignOrPlan(ctx context.Context, s *pool.Store, st *pool.State, o pool.AssignOptions, dryRun bool) (pool.AssignResult, error) {
	if !dryRun {
		return s.Assign(ctx, o)
	}
	var res pool.AssignResult
	p, err := pool.PlanAssignment(st, o)
	if err != nil {
		return res, err
	}
	res.AssignPlan = *p
	return res, nil
}

func printAssign(g *globals, st *pool.State, res pool.AssignResult, dryRun bool) {
	w := g.io.Out
	verb := "written"
	n := res.Written
	if dryRun {
		verb, n = "to write (dry run)", len(res.Changes)
	}
	fmt.Fprintf(w, "%d nodes selected, width %d: %d lists %s, %d first entries moved, %d manual lists kept\n",
		res.Selected, res.Width, n, verb, res.FirstMoved, res.KeptManual)
	if dryRun && len(res.Changes) > 0 {
		t := newTable(w, "node", "old", "new")
		for i, c := range res.Changes {
			if i == 50 {
				t.row(fmt.Sprintf("(%d more)", len(res.Changes)-50), "", "")
				break
			}
			t.row(c.Node, strings.Join(c.Old, ","), strings.Join(c.New, ","))
		}
		t.flush()
	}
	t := newTable(w, "member", "first for")
	for _, m := range st.Members {
		t.row(m.Name, strconv.Itoa(res.Load[m.Name]))
	}
	t.flush()
	for _, warn := range res.Warnings {
		fmt.Fprintf(g.io.Err, "warning: %s\n", warn)
	}
	if len(res.Conflicts) > 0 {
		fmt.Fprintf(g.io.Err, "conflict: %d nodes were changed by another member meanwhile and kept as they are: %s\n", len(res.Conflicts), noderange.Compress(res.Conflicts))
	}
}

func newRouteCmd(g *globals) *cobra.Command {
	var lf livenessFlags
	cmd := &cobra.Command{
		Use:   "route [NODERANGE] [--sample D]",
		Short: "Show which member serves each node now (first reachable member of its list)",
		Long: `route groups nodes by the first member of their servicenode list that is not
suspect or dead: the member a command for the node (a parallel shell, a power
command) should be sent to. It works the same on every member. Liveness is what
the members' agents published, or what this command sees itself with --sample.
Nodes none of whose members is reachable are listed as down, not dropped.`,
		Example: `  mnpool route compute
  mnpool route cn[001-100] --sample 5s --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, _, names, err := openSelected(ctx, g, args)
			if err != nil {
				return err
			}
			defer s.Close()
			v, _, err := lf.view(ctx, s)
			if err != nil {
				return err
			}
			r, err := s.Route(ctx, names, v)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, struct {
					pool.Routing
					Liveness liveness.View `json:"liveness"`
				}{r, v})
			}
			t := newTable(g.io.Out, "member", "liveness", "nodes", "noderange")
			for _, m := range r.Members() {
				l := v[m]
				t.row(m, livenessText(&l), strconv.Itoa(len(r.ByMember[m])), noderange.Compress(r.ByMember[m]))
			}
			if len(r.Down) > 0 {
				t.row("(no reachable member)", "", strconv.Itoa(len(r.Down)), noderange.Compress(r.Down))
			}
			if len(r.Unassigned) > 0 {
				t.row("(no servicenodes)", "", strconv.Itoa(len(r.Unassigned)), noderange.Compress(r.Unassigned))
			}
			return t.flush()
		},
	}
	lf.add(cmd)
	g.addJSON(cmd)
	return cmd
}

const heartbeatLong = `heartbeat increments the heartbeat counter of --self every --interval until
interrupted (or --count times). With --publish it also watches the other
members' counters on this host's monotonic clock and publishes its judgement,
which mnpool status and mnpool route show. The mnpool agent does this; the
command is for members without one and for tests.`

// heartbeatFlags are the flags of heartbeat.
type heartbeatFlags struct {
	interval, suspect, dead time.Duration
	count                   int
	publish                 bool
}

func newHeartbeatCmd(g *globals) *cobra.Command {
	var f heartbeatFlags
	cmd := &cobra.Command{
		Use:     "heartbeat [--interval D] [--count N] [--publish]",
		Short:   "Keep this member's heartbeat counter moving (what the agent does)",
		Long:    heartbeatLong,
		Example: `  mnpool --self sn1 heartbeat --publish`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.interval <= 0 {
				return usagef("--interval %s: want a positive duration", f.interval)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := g.requireMember(ctx, s); err != nil {
				return err
			}
			h := &pool.Heartbeater{Store: s, Member: g.selfName(), Interval: f.interval, Log: g.logger()}
			if f.publish {
				if h.Observer, err = liveness.NewObserver(liveness.Config{SuspectAfter: f.suspect, DeadAfter: f.dead}); err != nil {
					return usagef("%v", err)
				}
			}
			if f.count <= 0 {
				err := h.Run(ctx)
				if ctx.Err() != nil && cmd.Context().Err() == nil {
					return nil // interrupted: a normal end
				}
				return err
			}
			v, err := beatCount(ctx, h, f.interval, f.count)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "%s: heartbeat %d\n", h.Member, v)
			return nil
		},
	}
	cmd.Flags().DurationVar(&f.interval, "interval", liveness.DefaultHeartbeatInterval, "time between beats")
	cmd.Flags().IntVar(&f.count, "count", 0, "beat this many times and exit (default: until interrupted)")
	cmd.Flags().BoolVar(&f.publish, "publish", false, "also observe the other members and publish the judgements")
	cmd.Flags().DurationVar(&f.suspect, "suspect", liveness.DefaultSuspectAfter, "silence after which a member is suspect (with --publish)")
	cmd.Flags().DurationVar(&f.dead, "dead", liveness.DefaultDeadAfter, "silence after which a member is dead (with --publish)")
	return cmd
}

// beatCount beats count times, interval apart, and returns the last counter.
func beatCount(ctx context.Context, h *pool.Heartbeater, interval time.Duration, count int) (int64, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var v int64
	var err error
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-t.C:
			}
		}
		if v, err = h.Beat(ctx); err != nil {
			return 0, err
		}
	}
	return v, nil
}

func newRoleFilesCmd(g *globals) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "rolefiles [--root DIR]",
		Short: "Make /etc/xCATMN and /etc/xCATSN on this host match the master record",
		Long: `rolefiles creates ROOT/etc/xCATMN when --self is the MN of the master record,
ROOT/etc/xCATSN when it is another member, and removes the other file (both
when --self is not a member), for xCAT tools that still test them.`,
		Example: `  mnpool --self sn1 rolefiles`,
		Args:    cobra.NoArgs,
		RunE: g.withStore(func(cmd *cobra.Command, _ []string, s *pool.Store) error {
			rf, err := rolefiles.Sync(cmd.Context(), s, g.selfName(), root)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.io.Out, rf)
			}
			state := "unchanged"
			if rf.Changed {
				state = "updated"
			}
			fmt.Fprintf(g.io.Out, "%s: role %s (epoch %d), role files %s\n", g.selfName(), rf.Role, rf.Epoch, state)
			return nil
		}),
	}
	cmd.Flags().StringVar(&root, "root", "/", "root directory the role files are under")
	g.addJSON(cmd)
	return cmd
}
