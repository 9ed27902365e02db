package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
	"github.com/mnpool/mnpool/poolsync"
)

// SiteAutoFailover is the site key that turns automatic failover on ("1")
// or off ("0", the default). pool.SetSite accepts only 0 and 1; any other
// value found in the database is reported and leaves failover off.
const SiteAutoFailover = siteschema.AutoFailover

// syncStatus is the outcome of the last sync, for /healthz.
type syncStatus struct {
	At       time.Time        `json:"-"`
	Reason   string           `json:"reason"`
	Version  int64            `json:"version"`
	OK       bool             `json:"ok"`
	Err      string           `json:"error,omitempty"`
	Took     time.Duration    `json:"took_ns"`
	Report   *poolsync.Report `json:"report,omitempty"`
	FromDisk bool             `json:"cached_state,omitempty"`
}

// follow applies the pool to this member: on every change of the change
// counter, every flip of the MN guard's answer, every resync interval,
// and again after a failure (with backoff).
func (a *Agent) follow(ctx context.Context) error {
	feed := a.s.Watch(ctx, a.o.watchEvery)
	var resync <-chan time.Time
	if a.o.resyncEvery > 0 {
		t := time.NewTicker(a.o.resyncEvery)
		defer t.Stop()
		resync = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := DefaultRetryMin
	var version int64
	for {
		var reason string
		select {
		case <-ctx.Done():
			return ctx.Err()
		case v, ok := <-feed:
			if !ok {
				return ctx.Err()
			}
			version, reason = v, "change"
		case <-a.guard.Changed():
			reason = "mn-guard"
		case <-resync:
			reason = "resync"
		case <-retry.C:
			reason = "retry"
		}
		if err := a.syncOnce(ctx, version, reason); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			retry.Reset(backoff)
			backoff = min(2*backoff, DefaultRetryMax)
			continue
		}
		retry.Stop()
		backoff = DefaultRetryMin
	}
}

// timedStep measures a step and remembers the snapshot it was given.
type timedStep struct {
	step poolsync.Step
	a    *Agent
	seen **pool.State
}

func (t timedStep) Name() string { return t.step.Name() }

func (t timedStep) Sync(ctx context.Context, in *poolsync.Input) (poolsync.Change, error) {
	if *t.seen == nil {
		*t.seen = in.State
	}
	start := time.Now()
	ch, err := t.step.Sync(ctx, in)
	t.a.m.render.WithLabelValues(t.step.Name()).Observe(time.Since(start).Seconds())
	if err != nil {
		t.a.m.stepErrors.WithLabelValues(t.step.Name()).Inc()
	}
	return ch, err
}

// syncOnce runs the sync steps once through poolsync.Sync (with the MN guard
// as the gate of the dynamic range) and records the snapshot they saw.
func (a *Agent) syncOnce(ctx context.Context, version int64, reason string) error {
	start := time.Now()
	// The MN fail-safe first, without touching the database: if the guard
	// has withdrawn the dynamic range that the files still hold, take it
	// out from the last snapshot now. Reading the pool may hang (a paused
	// local Galera node) for longer than another member needs to become
	// the MN and start serving the range.
	if _, ok := a.guard.ServeDynamic(); !ok && a.servedDynamic() {
		a.applyCached(ctx, "the MN guard withdrew the dynamic range")
	}
	var seen *pool.State
	steps := make([]poolsync.Step, len(a.o.steps))
	for i, st := range a.o.steps {
		steps[i] = timedStep{step: st, a: a, seen: &seen}
	}
	var rep poolsync.Report
	var err error
	if len(steps) > 0 {
		rep, err = poolsync.Sync(ctx, a.s, a.self, poolsync.Options{Steps: steps, Gate: a.guard})
	} else {
		seen, err = a.s.LoadState(ctx)
		if err == nil {
			rep = poolsync.Report{Self: a.self, Role: pool.RoleOf(seen, a.self), Master: seen.Master}
			if e, ok := a.guard.ServeDynamic(); ok && e == seen.Master.Epoch && seen.IsMN(a.self) {
				rep.ServeDynamic, rep.DynamicEpoch = true, e
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if seen == nil {
		// The pool could not be read. If the guard has withdrawn the
		// dynamic range that the files still hold, take it out of them
		// from the last snapshot: the MN fail-safe must not depend on the
		// database it lost.
		if _, ok := a.guard.ServeDynamic(); !ok && a.servedDynamic() {
			a.applyCached(ctx, "the MN guard withdrew the dynamic range and the pool is not readable")
		}
		a.recordSync(syncStatus{At: time.Now(), Reason: reason, Version: version, Err: errString(err), Took: time.Since(start)})
		a.log.Warn("agent: sync failed: pool not readable", "reason", reason, "err", err)
		return err
	}
	a.applied(seen, version, &rep)
	st := syncStatus{At: time.Now(), Reason: reason, Version: version, OK: err == nil, Err: errString(err), Took: time.Since(start), Report: &rep}
	a.recordSync(st)
	if err != nil {
		a.log.Warn("agent: sync failed", "reason", reason, "version", version, "failed", rep.Failed(), "err", err)
		return err
	}
	a.log.Debug("agent: synced", "reason", reason, "version", version, "role", rep.Role, "serve_dynamic", rep.ServeDynamic, "took", st.Took)
	return nil
}

// applyCached runs the steps on the last snapshot without the dynamic
// range, for the reason given.
func (a *Agent) applyCached(ctx context.Context, why string) {
	a.mu.Lock()
	st := a.state
	a.mu.Unlock()
	if st == nil {
		return
	}
	in := &poolsync.Input{Self: a.self, State: st, Role: pool.RoleOf(st, a.self)}
	rep := poolsync.Report{Self: a.self, Role: in.Role, Master: st.Master}
	var errs []error
	var seen *pool.State
	for _, step := range a.o.steps {
		ch, err := timedStep{step: step, a: a, seen: &seen}.Sync(ctx, in)
		r := poolsync.StepResult{Step: step.Name(), Changed: ch.Changed, Detail: ch.Detail}
		if err != nil {
			r.Err, r.Error = err, err.Error()
			errs = append(errs, fmt.Errorf("step %s: %w", step.Name(), err))
		}
		rep.Steps = append(rep.Steps, r)
	}
	err := errors.Join(errs...)
	a.log.Warn("agent: re-applied the last snapshot without the dynamic range", "why", why, "epoch", st.Master.Epoch, "err", err)
	a.setServed(false, 0)
	a.emit(Event{Kind: EventSynced, Member: a.self, Report: &rep, Err: err, Reason: "cached snapshot without the dynamic range: " + why})
}

// applied records a snapshot that the steps were run with.
func (a *Agent) applied(st *pool.State, version int64, rep *poolsync.Report) {
	on, ferr := parseAutoFailover(st.Site)
	a.mu.Lock()
	prev := a.state
	a.state = st
	if version > a.version {
		a.version = version
	}
	changedFailover := a.autofail != on || a.autofailErr != errString(ferr)
	a.autofail, a.autofailErr = on, errString(ferr)
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
	if changedFailover {
		if ferr != nil {
			a.log.Error("agent: bad site setting; automatic failover stays off", "err", ferr)
		} else {
			a.log.Info("agent: automatic failover setting", "autofailover", on, "participating", !a.o.failover.Disabled)
		}
	}
	a.m.autofailover.Set(boolGauge(on && !a.o.failover.Disabled))
	for _, m := range st.Members {
		a.m.failovers.WithLabelValues(m.Name) // a series per member, 0 until one fails over
	}
	a.m.epoch.Set(float64(st.Master.Epoch))
	a.m.isMN.Set(boolGauge(st.IsMN(a.self)))
	a.m.version.Set(float64(version))
	a.setServed(rep.ServeDynamic, rep.DynamicEpoch)
	gained, lost := servedDiff(prev, st, a.self)
	if len(gained) > 0 || len(lost) > 0 {
		a.log.Info("agent: nodes served by this member changed", "gained", len(gained), "lost", len(lost))
	}
	a.emit(Event{Kind: EventSynced, Member: a.self, Version: version, Report: rep, Gained: gained, Lost: lost})
}

func (a *Agent) setServed(on bool, epoch int64) {
	a.mu.Lock()
	was := a.served
	a.served = on
	a.mu.Unlock()
	a.m.dynamic.Set(boolGauge(on))
	if was != on {
		a.log.Info("agent: DHCP dynamic range", "serve", on, "epoch", epoch)
		a.emit(Event{Kind: EventDynamic, Member: a.self, ServeDynamic: on, Epoch: epoch})
	}
}

func (a *Agent) servedDynamic() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.served
}

func (a *Agent) recordSync(st syncStatus) {
	a.mu.Lock()
	a.lastSync = st
	a.mu.Unlock()
	if st.OK {
		a.m.syncs.WithLabelValues("ok").Inc()
	} else {
		a.m.syncs.WithLabelValues("error").Inc()
	}
}

// stateChanged returns a channel closed at the next recorded snapshot.
func (a *Agent) stateChanged() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// ParseAutoFailover reads the autofailover site value: "" or missing is
// off; "0" off; "1" on; anything else is an error wrapping ErrInvalid (and
// off).
func ParseAutoFailover(v string) (bool, error) {
	switch strings.TrimSpace(v) {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("%w: site %s=%q: want 0 or 1", ErrInvalid, SiteAutoFailover, v)
}

func parseAutoFailover(site map[string]string) (bool, error) {
	return ParseAutoFailover(site[SiteAutoFailover])
}

// servedDiff lists the nodes whose servicenode list starts with self in
// cur but not in prev (gained) and the other way round (lost), sorted.
func servedDiff(prev, cur *pool.State, self string) (gained, lost []string) {
	if prev == nil {
		return nil, nil
	}
	first := func(st *pool.State) map[string]bool {
		out := map[string]bool{}
		for _, n := range st.Nodes {
			if len(n.ServiceNodes) > 0 && n.ServiceNodes[0] == self {
				out[n.Name] = true
			}
		}
		return out
	}
	p, c := first(prev), first(cur)
	for n := range c {
		if !p[n] {
			gained = append(gained, n)
		}
	}
	for n := range p {
		if !c[n] {
			lost = append(lost, n)
		}
	}
	slices.Sort(gained)
	slices.Sort(lost)
	return gained, lost
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
