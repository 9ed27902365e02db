// Package poolsync brings a member's local state in line with the pool
// database: Sync loads one snapshot of the pool, derives the member's role
// and whether it may serve the DHCP dynamic range (asking a DynamicGate,
// the MN guard), and runs Steps in order: the role files
// (rolefiles.Step), DHCP (dhcp.SyncStep), a product's own. The agent runs
// it on every change, makemn at its end, `mnpool sync` by hand.
//
// It imports pool; pool does not import it.
package poolsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/mnpool/mnpool/pool"
)

// Input is what a sync step is given: a fresh snapshot of the pool,
// read through a healthy database node, and what it means for this member.
type Input struct {
	Self  string
	State *pool.State
	// Role is RoleMN, RoleSN or RoleNone (self is not a member).
	Role pool.Role
	// ServeDynamic is true only when Self is the MN of the snapshot and the
	// sync's DynamicGate (the MN guard) allows it; DynamicEpoch is then the
	// epoch (the fencing token) under which the range is served. A step
	// that renders DHCP renders the dynamic range only when ServeDynamic
	// is true.
	ServeDynamic bool
	DynamicEpoch int64
	// StillServe, when set, asks the gate again whether the dynamic range
	// may still be served under DynamicEpoch. A step that publishes the
	// range (writes and reloads a DHCP file) calls it just before doing
	// so: a slow sync must not publish a range whose confirmation expired
	// while it ran.
	StillServe func() bool `json:"-"`
	// Store is the store the snapshot was read from, for steps that keep
	// tables of their own (the dhcp step reads the nodes removed with
	// makedhcp -d). Nil when a step is run on a cached snapshot because
	// the database cannot be read.
	Store *pool.Store `json:"-"`
}

// Change is what a step did.
type Change struct {
	Changed bool
	// Detail is one line for a person ("created /etc/xCATMN").
	Detail string
}

// Step is one part of bringing a member's local state in line with
// the database: role files, DHCP configuration, ... Steps must be
// idempotent; Sync runs them in order, every time.
type Step interface {
	Name() string
	Sync(ctx context.Context, in *Input) (Change, error)
}

// StepFunc adapts a function to a Step. The dhcp package fills one
// in to re-render its configuration.
func StepFunc(name string, fn func(ctx context.Context, in *Input) (Change, error)) Step {
	return syncFunc{name: name, fn: fn}
}

type syncFunc struct {
	name string
	fn   func(ctx context.Context, in *Input) (Change, error)
}

func (f syncFunc) Name() string { return f.name }
func (f syncFunc) Sync(ctx context.Context, in *Input) (Change, error) {
	return f.fn(ctx, in)
}

// DynamicGate says whether this member may serve the DHCP dynamic range
// now, and under which epoch. *mnguard.Guard implements it.
type DynamicGate interface {
	ServeDynamic() (epoch int64, ok bool)
}

// Options are the arguments of Sync.
type Options struct {
	// Steps run in order.
	Steps []Step
	// Gate, when set, must agree before the dynamic range is served (the
	// MN guard of a long-running agent, or makemn's). Without a gate the
	// fresh read of the master record sets ServeDynamic and StillServe is
	// nil; the dhcp package's step then confirms with an MN guard of its
	// own (keeping a range already served under this epoch, else waiting
	// the guard's hold), as makedhcp does.
	Gate DynamicGate
}

// StepResult is the outcome of one step.
type StepResult struct {
	Step    string `json:"step"`
	Changed bool   `json:"changed"`
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
	Err     error  `json:"-"`
}

// Report is what Sync found and did.
type Report struct {
	Self         string       `json:"self"`
	Role         pool.Role    `json:"role"`
	Master       pool.Master  `json:"master"`
	ServeDynamic bool         `json:"serve_dynamic"`
	DynamicEpoch int64        `json:"dynamic_epoch,omitempty"`
	Steps        []StepResult `json:"steps"`
}

// Failed returns the names of the steps that failed.
func (r Report) Failed() []string {
	var out []string
	for _, st := range r.Steps {
		if st.Err != nil {
			out = append(out, st.Step)
		}
	}
	return out
}

// Sync brings the local state of member self in line with the database:
// it loads one snapshot of the pool, derives self's role and whether it
// may serve the dynamic range, and runs every step in order. A failing
// step does not stop the others (they are independent); the returned
// error joins the failures, each naming its step. When the snapshot
// cannot be read no step runs.
//
// The new MN runs Sync at the end of makemn; every member runs it when
// the pool changes (the agent) or by hand (`mnpool sync`).
func Sync(ctx context.Context, s *pool.Store, self string, o Options) (Report, error) {
	if err := pool.ValidateName("member", self); err != nil {
		return Report{}, err
	}
	seen := map[string]bool{}
	for i, st := range o.Steps {
		if st == nil || st.Name() == "" {
			return Report{}, fmt.Errorf("%w: sync step %d has no name", pool.ErrInvalid, i+1)
		}
		if seen[st.Name()] {
			return Report{}, fmt.Errorf("%w: sync step %q given twice", pool.ErrInvalid, st.Name())
		}
		seen[st.Name()] = true
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("pool: sync of %s: reading the pool: %w", self, err)
	}
	in := &Input{Self: self, State: st, Role: pool.RoleOf(st, self), Store: s}
	if in.Role == pool.RoleMN {
		in.ServeDynamic, in.DynamicEpoch = true, st.Master.Epoch
		if o.Gate != nil {
			e, ok := o.Gate.ServeDynamic()
			in.ServeDynamic = ok && e == st.Master.Epoch
			if !in.ServeDynamic {
				in.DynamicEpoch = 0
			}
			epoch := st.Master.Epoch
			in.StillServe = func() bool {
				e, ok := o.Gate.ServeDynamic()
				return ok && e == epoch
			}
		}
	}
	rep := Report{Self: self, Role: in.Role, Master: st.Master, ServeDynamic: in.ServeDynamic, DynamicEpoch: in.DynamicEpoch}
	var errs []error
	for _, step := range o.Steps {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		ch, err := step.Sync(ctx, in)
		r := StepResult{Step: step.Name(), Changed: ch.Changed, Detail: ch.Detail}
		if err != nil {
			r.Err, r.Error = err, err.Error()
			errs = append(errs, fmt.Errorf("pool: sync step %s: %w", step.Name(), err))
		}
		rep.Steps = append(rep.Steps, r)
	}
	return rep, errors.Join(errs...)
}
