package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/pool"
)

// Defaults of NodeConfig: the failover leader reconfigures at most
// DefaultNodeParallel nodes at once, gives each DefaultNodeTimeout and
// the whole failover DefaultNodeDeadline.
const (
	DefaultNodeParallel = nodecfg.DefaultParallel
	DefaultNodeTimeout  = 10 * time.Second
	DefaultNodeDeadline = 2 * time.Minute
)

// NodeConfig says how the failover leader reconfigures the nodes it moved
// (resolv.conf, chrony, the rsyslog target, the default route), as snmove
// does after a move (nodecfg.Reconfigure). It is on by default, with the
// SSH pusher built at each failover from the pool key in
// sshkeys.DefaultDir and the default known_hosts files.
//
// Every node is tried once per failover: nodes that fail (unreachable,
// timed out, refused) are named in the "nodecfg.reconfigure" audit record
// and counted in mnpool_nodecfg_nodes_total, never retried by the agent;
// `snmove NODERANGE -d MEMBER` retries them.
type NodeConfig struct {
	// Disabled leaves the nodes alone: only the database moves.
	Disabled bool
	// Pusher replaces the SSH pusher (a product's own transport; tests).
	Pusher nodecfg.Pusher
	// SSH builds the SSH pusher when Pusher is nil. Its Apply is ignored:
	// the agent always applies (restarts chronyd, rsyslog; replaces the
	// default route) unless NoApply is set.
	SSH     nodecfg.SSHConfig
	NoApply bool
	// Renderer gives each node's files (nodecfg.Builtin{}).
	Renderer nodecfg.Renderer
	// Parallel, Timeout and Deadline bound the work (DefaultNodeParallel,
	// DefaultNodeTimeout per node, DefaultNodeDeadline in all).
	Parallel int
	Timeout  time.Duration
	Deadline time.Duration
}

// WithNodeConfig sets how nodes are reconfigured after a failover
// (default: on, NodeConfig's defaults).
func WithNodeConfig(c NodeConfig) Option { return func(o *options) { o.nodecfg = c } }

func (c NodeConfig) withDefaults() NodeConfig {
	if c.Parallel <= 0 {
		c.Parallel = DefaultNodeParallel
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultNodeTimeout
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultNodeDeadline
	}
	return c
}

// failPusher fails every node with the reason the SSH pusher could not be
// built (no pool key, no known_hosts): the nodes are reported, none is
// contacted.
type failPusher struct{ err error }

func (p failPusher) Push(_ context.Context, t nodecfg.Target, _ []nodecfg.File) nodecfg.Result {
	return nodecfg.Result{Node: t.Node, Addr: t.Addr, Err: p.err}
}

// pusher returns the configured pusher, or builds the SSH one now (the
// pool key may have been created after the agent started).
func (a *Agent) pusher(ctx context.Context) nodecfg.Pusher {
	c := a.o.nodecfg.withDefaults()
	if c.Pusher != nil {
		return c.Pusher
	}
	sc := c.SSH
	sc.Apply = !c.NoApply
	if sc.Log == nil {
		sc.Log = a.log
	}
	p, err := nodecfg.NewSSH(ctx, sc)
	if err != nil {
		a.log.Error("agent: cannot reconfigure the moved nodes", "err", err)
		return failPusher{err: err}
	}
	return p
}

// reconfigureNodes pushes the new configuration to the nodes a failover
// moved, within the configured bounds, while the lease is held; the
// outcome goes into rep, the audit log and the metrics.
func (a *Agent) reconfigureNodes(ctx context.Context, l lease, rep *FailoverReport, res *pool.MoveResult) {
	c := a.o.nodecfg.withDefaults()
	if c.Disabled || res == nil || len(nodecfg.MovedNodes(res)) == 0 {
		return
	}
	if !l.Held() {
		a.log.Warn("agent: failover lease lost before the nodes were reconfigured; run snmove to reconfigure them", "of", rep.Member)
		return
	}
	// Losing the lease stops the pushes: a newer leader may move the
	// same nodes again.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.Done():
			cancel()
		case <-pctx.Done():
		}
	}()
	nr, err := nodecfg.Reconfigure(pctx, a.s, res, nodecfg.Options{Pusher: a.pusher(pctx), Renderer: c.Renderer,
		Parallel: c.Parallel, Timeout: c.Timeout, Deadline: c.Deadline, Token: rep.Token})
	if err != nil {
		a.log.Error("agent: reconfiguring the moved nodes", "of", rep.Member, "err", err)
	}
	select {
	case <-l.Done():
		a.log.Warn("agent: failover lease lost while reconfiguring the moved nodes; those not done are reported, run snmove to reconfigure them", "of", rep.Member)
	default:
	}
	if nr == nil {
		rep.NodeConfigError = errString(err)
		return
	}
	rep.Reconfigured, rep.ReconfigFailed, rep.Unreachable = nr.Reconfigured, nr.Failed, nr.Unreachable
	rep.NodeConfigTook = nr.Took
	rep.NodeConfigError = errString(err)
	a.m.nodecfgNodes.WithLabelValues("reconfigured").Add(float64(nr.Reconfigured))
	a.m.nodecfgNodes.WithLabelValues("unreachable").Add(float64(nr.Unreachable))
	a.m.nodecfgNodes.WithLabelValues("failed").Add(float64(nr.Failed - nr.Unreachable))
	a.m.nodecfgSeconds.Observe(nr.Took.Seconds())
	if nr.Failed > 0 {
		var names []string
		for _, r := range nr.Results {
			if r.Err != nil && len(names) < 20 {
				names = append(names, r.Node)
			}
		}
		a.log.Error("agent: moved nodes not reconfigured (see the nodecfg.reconfigure audit record; snmove retries them)", "of", rep.Member,
			"failed", nr.Failed, "unreachable", nr.Unreachable, "reconfigured", nr.Reconfigured, "first", names, "took", nr.Took)
		return
	}
	a.log.Info("agent: moved nodes reconfigured", "of", rep.Member, "nodes", nr.Reconfigured, "changed", nr.Changed, "took", nr.Took)
}

func (c NodeConfig) validate() error {
	if c.Parallel < 0 || c.Timeout < 0 || c.Deadline < 0 {
		return fmt.Errorf("%w: node config parallel %d, timeout %v, deadline %v (want 0 for the default, or more)", ErrInvalid, c.Parallel, c.Timeout, c.Deadline)
	}
	return nil
}
