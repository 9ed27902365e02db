package nodecfg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
)

// AuditAction is the audit log action of a reconfiguration (Reconfigure).
const AuditAction = "nodecfg.reconfigure"

// DefaultDeadline bounds a whole reconfiguration (Options.Deadline).
const DefaultDeadline = 5 * time.Minute

// maxAuditFailures bounds the failed nodes named in one audit record.
const maxAuditFailures = 100

// Options tune Reconfigure.
type Options struct {
	// Pusher writes the files on the nodes (required): an *SSH from
	// NewSSH, or a product's own.
	Pusher Pusher
	// Renderer gives each node's files (default Builtin{}).
	Renderer Renderer
	// Parallel is how many nodes are worked on at once
	// (DefaultParallel).
	Parallel int
	// Timeout bounds each node (DefaultTimeout).
	Timeout time.Duration
	// Deadline bounds the whole reconfiguration (DefaultDeadline;
	// negative: only ctx bounds it). Nodes not finished by then fail with
	// ErrTimeout; nothing is retried.
	Deadline time.Duration
	// Done, when set, is called once per node as it finishes (never
	// concurrently): progress bars.
	Done func(Result)
	// NoAudit skips the audit record.
	NoAudit bool
	// Token, when set, is written into the audit record (the fencing
	// token of the agent's failover lease).
	Token int64
}

// Report is what one reconfiguration did; its summary (without the
// per-node results of the nodes that succeeded) is the detail of the
// AuditAction record.
type Report struct {
	// Source and Target are those of the move (Target empty when each
	// node went to the next member of its own list).
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	// Nodes is how many nodes were to be reconfigured.
	Nodes int `json:"nodes"`
	// Reconfigured counts the nodes whose files are all in place, Changed
	// those of them where a file changed.
	Reconfigured int `json:"reconfigured"`
	Changed      int `json:"changed"`
	// Failed counts every node not reconfigured; Unreachable those of
	// them that could not be reached in time (ErrConnect, ErrTimeout).
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	// Results holds one Result per node, in the order of the move.
	Results []Result      `json:"results"`
	Took    time.Duration `json:"took_ns"`
	Token   int64         `json:"token,omitempty"`
}

// OK reports whether every node was reconfigured.
func (r *Report) OK() bool { return r.Failed == 0 }

// Unreachable reports whether a node's failure is that it could not be
// reached (connection refused, no route, timed out) rather than a refused
// host key or a failing remote command.
func Unreachable(err error) bool {
	return errors.Is(err, ErrConnect) || errors.Is(err, ErrTimeout)
}

// MovedNodes are the nodes of a move whose files must be pushed: those
// moved, and with an explicit destination those already on it (so that
// running the same move again retries the nodes whose reconfiguration
// failed).
func MovedNodes(res *pool.MoveResult) []string {
	if res == nil || res.DryRun {
		return nil
	}
	var out []string
	for _, n := range res.Nodes {
		if n.Status == pool.MoveMoved || (n.Status == pool.MoveUnchanged && res.Target != "" && n.Target == res.Target) {
			out = append(out, n.Node)
		}
	}
	return out
}

func (o Options) validate() error {
	switch {
	case o.Pusher == nil:
		return fmt.Errorf("%w: no pusher", ErrInvalid)
	case o.Parallel < 0:
		return fmt.Errorf("%w: parallel %d (want 0 for the default, or more)", ErrInvalid, o.Parallel)
	case o.Timeout < 0:
		return fmt.Errorf("%w: timeout %s (want 0 for the default, or more)", ErrInvalid, o.Timeout)
	}
	return nil
}

// Reconfigure points the nodes a move changed (MovedNodes) at their new
// servicenodes: it reads the pool as the move left it, renders each
// node's files and pushes them, at most o.Parallel nodes at once, each
// within o.Timeout and all within o.Deadline, and writes one AuditAction
// record naming the nodes that failed. It is what snmove runs after
// pool.Store.Move, and what the agent runs after a failover.
//
// The error is for what stops the whole reconfiguration (invalid options,
// the pool unreadable); a node that fails is in the Report and never
// retried here: run the same move again to retry it.
func Reconfigure(ctx context.Context, s *pool.Store, res *pool.MoveResult, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("%w: no move result", ErrInvalid)
	}
	start := time.Now()
	rep := &Report{Source: res.Source, Target: res.Target, Results: []Result{}, Token: o.Token}
	names := MovedNodes(res)
	rep.Nodes = len(names)
	if len(names) == 0 {
		return rep, nil
	}
	if o.Renderer == nil {
		o.Renderer = Builtin{}
	}
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	pctx := ctx
	if o.Deadline > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, o.Deadline)
		defer cancel()
	}
	st, err := s.LoadState(pctx)
	if err != nil {
		return nil, fmt.Errorf("nodecfg: reading the pool after the move (nodes not reconfigured): %w", err)
	}
	if res.TargetAddr.IsValid() {
		st = UseAddress(st, res.Target, res.TargetAddr)
	}
	jobs, failed := Jobs(st, o.Renderer, names)
	for _, r := range failed {
		if o.Done != nil {
			o.Done(r)
		}
	}
	pushed := PushAll(pctx, o.Pusher, jobs, PushOptions{Parallel: o.Parallel, Timeout: o.Timeout, Done: o.Done})
	rep.Results = order(names, append(failed, pushed...))
	rep.count()
	rep.Took = time.Since(start)
	if o.NoAudit {
		return rep, nil
	}
	// The record is written even when ctx has ended: it is the only trace
	// of the nodes left behind.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.Tx(actx, func(tx *sqlx.Tx) error {
		return s.Audit(actx, tx, AuditAction, auditTarget(res), rep.auditDetail())
	}); err != nil {
		return rep, fmt.Errorf("nodecfg: recording the reconfiguration: %w", err)
	}
	return rep, nil
}

// order sorts results into the order of names.
func order(names []string, rs []Result) []Result {
	at := make(map[string]int, len(names))
	for i, n := range names {
		at[n] = i
	}
	out := make([]Result, len(names))
	for _, r := range rs {
		if i, ok := at[r.Node]; ok {
			out[i] = r
		}
	}
	return out
}

func (r *Report) count() {
	r.Reconfigured, r.Changed, r.Failed, r.Unreachable = 0, 0, 0, 0
	for _, x := range r.Results {
		switch {
		case x.Err == nil:
			r.Reconfigured++
			if x.Changed {
				r.Changed++
			}
		default:
			r.Failed++
			if Unreachable(x.Err) {
				r.Unreachable++
			}
		}
	}
}

func auditTarget(res *pool.MoveResult) string {
	switch {
	case res.Source != "":
		return res.Source
	case res.Target != "":
		return res.Target
	}
	return "nodes"
}

// AuditFailure names one node not reconfigured, in the audit record.
type AuditFailure struct {
	Node        string `json:"node"`
	Addr        string `json:"addr,omitempty"`
	Unreachable bool   `json:"unreachable,omitempty"`
	Error       string `json:"error"`
}

// AuditDetail is the detail of an AuditAction record: the counts and the
// failed nodes (at most 100 named; MoreFailures counts the rest).
type AuditDetail struct {
	Source       string         `json:"source,omitempty"`
	Target       string         `json:"target,omitempty"`
	Token        int64          `json:"token,omitempty"`
	Nodes        int            `json:"nodes"`
	Reconfigured int            `json:"reconfigured"`
	Changed      int            `json:"changed"`
	Failed       int            `json:"failed"`
	Unreachable  int            `json:"unreachable"`
	Failures     []AuditFailure `json:"failures,omitempty"`
	MoreFailures int            `json:"more_failures,omitempty"`
	TookMS       int64          `json:"took_ms"`
}

func (r *Report) auditDetail() AuditDetail {
	d := AuditDetail{Source: r.Source, Target: r.Target, Token: r.Token, Nodes: r.Nodes, Reconfigured: r.Reconfigured,
		Changed: r.Changed, Failed: r.Failed, Unreachable: r.Unreachable, TookMS: r.Took.Milliseconds()}
	for _, x := range r.Results {
		if x.Err == nil {
			continue
		}
		if len(d.Failures) == maxAuditFailures {
			d.MoreFailures++
			continue
		}
		d.Failures = append(d.Failures, AuditFailure{Node: x.Node, Addr: x.Addr, Unreachable: Unreachable(x.Err), Error: x.Err.Error()})
	}
	return d
}
