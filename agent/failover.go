package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// FailoverLockName is the lease the failover leader holds (locking).
const FailoverLockName = "mnpoold/failover"

// FailoverReport is what one failover did; it is also the detail of its
// "agent.failover" audit record.
type FailoverReport struct {
	// Member is the member failed over; Leader the agent that did it,
	// under the lease with fencing token Token.
	Member string `json:"member"`
	Leader string `json:"leader"`
	Token  int64  `json:"token"`
	// Counter is the member's heartbeat counter, frozen since Silent on
	// the leader's clock.
	Counter int64         `json:"counter"`
	Silent  time.Duration `json:"silent_ns"`
	// Nodes planned to move, and by outcome.
	Nodes    int `json:"nodes"`
	Moved    int `json:"moved"`
	NoTarget int `json:"no_target"`
	Failed   int `json:"failed"`
	// Targets counts the nodes moved onto each member.
	Targets map[string]int `json:"targets,omitempty"`
	// Retry is set for a second pass over nodes left without a target.
	Retry bool          `json:"retry,omitempty"`
	Took  time.Duration `json:"took_ns"`
	Error string        `json:"error,omitempty"`
	// The moved nodes' reconfiguration (NodeConfig), done after the
	// move and its audit record: nodes reconfigured, not reconfigured,
	// and of those the ones that could not be reached; the
	// "nodecfg.reconfigure" audit record names them. Zero in the
	// "agent.failover" record, which is written before.
	Reconfigured    int           `json:"reconfigured,omitempty"`
	ReconfigFailed  int           `json:"reconfig_failed,omitempty"`
	Unreachable     int           `json:"unreachable,omitempty"`
	NodeConfigTook  time.Duration `json:"nodecfg_took_ns,omitempty"`
	NodeConfigError string        `json:"nodecfg_error,omitempty"`
}

// track is what this agent remembers about one member's liveness from one
// sample to the next (updated after every heartbeat, leader or not).
type track struct {
	state     liveness.State
	silent    time.Duration
	counter   int64
	seenAlive bool
	// For the current death: the silence at the first dead sample, and
	// whether that sample came after a gap in this agent's sampling.
	deadFrom time.Duration
	gap      bool
}

// trackLiveness updates the per-member tracks from a fresh view. It runs
// on the heartbeat goroutine.
func (a *Agent) trackLiveness(v liveness.View) {
	gapLimit := 3 * a.timing.HeartbeatInterval
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tracks == nil {
		a.tracks = map[string]*track{}
	}
	for m, l := range v {
		t, ok := a.tracks[m]
		if !ok {
			t = &track{}
			a.tracks[m] = t
		}
		if l.State == liveness.Alive && t.state != liveness.Alive {
			a.aliveGen++
		}
		if l.State == liveness.Dead && (t.state != liveness.Dead || t.counter != l.Counter) {
			// A new death: was it judged on a sample right after a gap
			// (this agent could not read for a while, so the silence may
			// be its own)? Then it must be confirmed by more samples.
			t.deadFrom = l.Silent
			t.gap = !ok || l.Silent-t.silent > gapLimit
		}
		t.seenAlive = t.seenAlive || l.State == liveness.Alive
		t.state, t.silent, t.counter = l.State, l.Silent, l.Counter
	}
	for m := range a.tracks {
		if _, ok := v[m]; !ok {
			delete(a.tracks, m)
		}
	}
}

// lease is the part of *locking.Lock the failover leader uses.
type lease interface {
	Token() int64
	Done() <-chan struct{}
	Held() bool
	Err() error
	Guard(ctx context.Context, tx *sqlx.Tx) error
	Unlock(ctx context.Context) error
}

// failoverWanted says whether this agent should campaign: site
// autofailover=1 and not disabled locally.
func (a *Agent) failoverWanted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.autofail && !a.o.failover.Disabled
}

// failoverLoop campaigns for the failover lease while failover is wanted
// and leads while it holds it.
func (a *Agent) failoverLoop(ctx context.Context) error {
	for {
		changed := a.stateChanged()
		if !a.failoverWanted() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
				continue
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() { // stop campaigning or leading when failover is turned off
			ch := changed
			for {
				select {
				case <-cctx.Done():
					return
				case <-ch:
					if !a.failoverWanted() {
						cancel()
						return
					}
					ch = a.stateChanged()
				}
			}
		}()
		l, err := a.locker.Lock(cctx, FailoverLockName, locking.WithTTL(a.timing.LeaseTTL),
			locking.WithInfo(fmt.Sprintf("mnpoold failover leader %s", a.self)))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if a.failoverWanted() {
				a.log.Warn("agent: campaigning for the failover lease failed", "err", err)
				if err := ctxutil.Sleep(ctx, a.timing.HeartbeatInterval); err != nil {
					return err
				}
			}
			continue
		}
		a.lead(cctx, l)
		cancel()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), a.o.shutdown)
		if err := l.Unlock(rctx); err != nil && !errors.Is(err, locking.ErrNotHeld) {
			a.log.Warn("agent: releasing the failover lease", "token", l.Token(), "err", err)
		}
		rcancel()
		a.setLeader(false, l.Token())
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (a *Agent) setLeader(on bool, token int64) {
	a.mu.Lock()
	was := a.leader
	a.leader, a.token = on, token
	a.mu.Unlock()
	a.m.leader.Set(boolGauge(on))
	if was != on {
		if on {
			a.log.Info("agent: failover leader", "token", token)
		} else {
			a.log.Info("agent: no longer failover leader", "token", token)
		}
		a.emit(Event{Kind: EventLeader, Member: a.self, Leader: on, Token: token})
	}
}

// leader is the state of one holding of the failover lease.
type leader struct {
	l        lease
	damp     *damper
	handled  map[string]int64 // member -> heartbeat counter of the death handled
	leftover map[string]int64 // member -> aliveGen when nodes were left without a target
	retryAt  map[string]time.Time
	noted    map[string]string // member -> last suppression reason logged
	restored map[string]int64  // member -> failovers count of its row (deleted at expiry)
}

// lead evaluates after every heartbeat until the lease is lost or ctx ends.
func (a *Agent) lead(ctx context.Context, l lease) {
	a.setLeader(true, l.Token())
	ld := &leader{l: l, damp: newDamper(a.o.failover), handled: map[string]int64{}, leftover: map[string]int64{},
		retryAt: map[string]time.Time{}, noted: map[string]string{}, restored: map[string]int64{}}
	if err := a.restoreCoolDowns(ctx, ld); err != nil && ctx.Err() == nil {
		a.log.Warn("agent: reading earlier failovers", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.Done():
			a.log.Warn("agent: failover lease lost", "token", l.Token(), "err", l.Err())
			return
		case <-a.beat:
			a.evaluate(ctx, ld)
		}
	}
}

// restoreCoolDowns starts a cool-down for every member an earlier leader
// failed over (its row in agent_failovers).
func (a *Agent) restoreCoolDowns(ctx context.Context, ld *leader) error {
	var rows []struct {
		Member    string `db:"member"`
		Failovers int64  `db:"failovers"`
	}
	err := a.s.Read(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		return tx.SelectContext(ctx, &rows, "SELECT member, failovers FROM agent_failovers")
	})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, r := range rows {
		ld.damp.restore(r.Member, now)
		ld.restored[r.Member] = r.Failovers
	}
	if len(rows) > 0 {
		a.log.Info("agent: cool-down restarted for members failed over by an earlier leader", "members", len(rows), "cool_down", ld.damp.p.CoolDown)
	}
	return nil
}

// candidate is a member the leader may fail over now.
type candidate struct {
	member string
	live   liveness.Judgement
	retry  bool
}

// candidates returns the dead members ready for failover, sorted, and the
// dead members never seen alive (held back).
func (a *Agent) candidates(ld *leader, v liveness.View, now time.Time) (out []candidate, neverAlive []string) {
	confirm := 2 * a.timing.HeartbeatInterval
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range v.Members() {
		l := v[m]
		t := a.tracks[m]
		if m == a.self || l.State != liveness.Dead || t == nil {
			continue
		}
		if until, ok := ld.retryAt[m]; ok && now.Before(until) {
			continue
		}
		if c, ok := ld.handled[m]; ok && c == l.Counter {
			if g, left := ld.leftover[m]; left && a.aliveGen > g {
				out = append(out, candidate{member: m, live: l, retry: true})
			}
			continue
		}
		switch {
		case !t.seenAlive:
			neverAlive = append(neverAlive, m)
			continue
		case t.gap && l.Silent-t.deadFrom < confirm:
			continue // judged dead right after a gap in sampling: confirm first
		}
		out = append(out, candidate{member: m, live: l})
	}
	return out, neverAlive
}

func (a *Agent) noteSuppressed(ld *leader, member, kind, reason string) {
	if ld.noted[member] == kind {
		return
	}
	ld.noted[member] = kind
	a.m.suppressed.WithLabelValues(kind).Inc()
	a.log.Warn("agent: dead member not failed over", "of", member, "reason", reason)
	a.emit(Event{Kind: EventSuppressed, Member: member, Reason: reason})
}

// evaluate fails over the members that are dead, confirmed and allowed by
// the damper.
func (a *Agent) evaluate(ctx context.Context, ld *leader) {
	if !ld.l.Held() {
		return
	}
	now := time.Now()
	for _, m := range ld.damp.expire(now) {
		if n, ok := ld.restored[m]; ok {
			a.forget(ctx, ld, m, n)
		}
	}
	v := a.obs.View()
	cands, never := a.candidates(ld, v, now)
	for _, m := range never {
		a.noteSuppressed(ld, m, SuppressNeverAlive, fmt.Sprintf("%s: %s has not heartbeaten since this agent started; a member without an agent is never failed over", SuppressNeverAlive, m))
	}
	for _, c := range cands {
		if ctx.Err() != nil || !ld.l.Held() {
			return
		}
		if !c.retry {
			if ok, why := ld.damp.allow(c.member, now); !ok {
				kind := SuppressCoolDown
				if !ld.damp.coolingDown(c.member, now) {
					kind = SuppressLimit
				}
				a.noteSuppressed(ld, c.member, kind, why)
				continue
			}
		}
		rep, err := a.failOver(ctx, ld, c, v)
		if err != nil {
			ld.retryAt[c.member] = time.Now().Add(a.timing.DeadAfter / 2)
			a.log.Error("agent: failover failed; trying again", "of", c.member, "in", a.timing.DeadAfter/2, "err", err)
			continue
		}
		delete(ld.retryAt, c.member)
		delete(ld.noted, c.member)
		ld.handled[c.member] = c.live.Counter
		if rep.NoTarget > 0 {
			a.mu.Lock()
			ld.leftover[c.member] = a.aliveGen
			a.mu.Unlock()
		} else {
			delete(ld.leftover, c.member)
		}
		if rep.Moved > 0 && !c.retry {
			ld.damp.record(c.member, time.Now())
			n, _ := a.failovers(ctx, c.member)
			ld.restored[c.member] = n
		}
	}
}

// failovers reads a member's failover count (for the conditional delete at
// the end of its cool-down).
func (a *Agent) failovers(ctx context.Context, member string) (int64, error) {
	var n int64
	err := a.s.Read(ctx, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, "SELECT failovers FROM agent_failovers WHERE member = ?", member)
	})
	return n, err
}

// forget deletes a member's failover row at the end of its cool-down,
// unless another failover of it was recorded meanwhile.
func (a *Agent) forget(ctx context.Context, ld *leader, member string, failovers int64) {
	err := a.s.Tx(ctx, func(tx *sqlx.Tx) error {
		if err := ld.l.Guard(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM agent_failovers WHERE member = ? AND failovers = ?", member, failovers)
		return err
	})
	if err != nil {
		a.log.Warn("agent: clearing the failover record", "of", member, "err", err)
		return
	}
	delete(ld.restored, member)
	a.log.Info("agent: failover cool-down over", "of", member)
}

// failOver moves the nodes of c.member to the next usable member of each
// node's list, through pool.Store.Move as snmove -s does, fenced by the
// lease, audits it as "agent.failover", and then reconfigures the moved
// nodes (NodeConfig) as snmove does.
func (a *Agent) failOver(ctx context.Context, ld *leader, c candidate, v liveness.View) (*FailoverReport, error) {
	start := time.Now()
	rep := &FailoverReport{Member: c.member, Leader: a.self, Token: ld.l.Token(), Counter: c.live.Counter, Silent: c.live.Silent, Retry: c.retry}
	a.log.Warn("agent: failing over a dead member", "of", c.member, "silent", c.live.Silent.Round(time.Millisecond), "counter", c.live.Counter, "token", rep.Token)
	res, err := a.move(ctx, ld.l, pool.MoveRequest{Source: c.member, Liveness: v}, c.member, c.live.Counter)
	if res != nil {
		rep.Nodes = len(res.Nodes) - res.Counts.Unchanged
		rep.Moved, rep.NoTarget, rep.Failed = res.Counts.Moved, res.Counts.NoTarget, res.Counts.Failed
		for _, n := range res.Nodes {
			if n.Status == pool.MoveMoved {
				if rep.Targets == nil {
					rep.Targets = map[string]int{}
				}
				rep.Targets[n.Target]++
			}
		}
	}
	rep.Took = time.Since(start)
	rep.Error = errString(err)
	a.m.failoverNodes.WithLabelValues(string(pool.MoveMoved)).Add(float64(rep.Moved))
	a.m.failoverNodes.WithLabelValues(string(pool.MoveNoTarget)).Add(float64(rep.NoTarget))
	a.m.failoverNodes.WithLabelValues(string(pool.MoveFailed)).Add(float64(rep.Failed))
	if rep.Nodes == 0 && err == nil {
		a.log.Info("agent: dead member serves no nodes; nothing to move", "of", c.member)
		return rep, nil
	}
	aerr := a.s.Tx(ctx, func(tx *sqlx.Tx) error {
		if err := ld.l.Guard(ctx, tx); err != nil {
			return err
		}
		if rep.Moved > 0 && !c.retry {
			if _, err := tx.ExecContext(ctx, a.s.Dialect().InsertIgnore("agent_failovers", []string{"member"}), c.member); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE agent_failovers SET failovers = failovers + 1, token = ?, leader = ? WHERE member = ?",
				rep.Token, a.self, c.member); err != nil {
				return err
			}
		}
		return a.s.Audit(ctx, tx, "agent.failover", c.member, rep)
	})
	if err == nil && aerr != nil {
		err = fmt.Errorf("agent: recording the failover of %s: %w", c.member, aerr)
	}
	if rep.Moved > 0 {
		a.m.failovers.WithLabelValues(c.member).Inc()
		a.m.failoverSeconds.Observe(rep.Took.Seconds())
	}
	// Also after a move stopped half-way: the nodes of its committed
	// batches point at their new member in the database and must on the
	// nodes too. reconfigureNodes checks the lease first.
	a.reconfigureNodes(ctx, ld.l, rep, res)
	level := "agent: failed over"
	if rep.NoTarget > 0 || rep.Failed > 0 {
		a.log.Error(level+" with nodes left on the dead member", "of", c.member, "moved", rep.Moved, "no_target", rep.NoTarget, "failed", rep.Failed, "took", rep.Took, "err", err)
	} else {
		a.log.Warn(level, "of", c.member, "moved", rep.Moved, "targets", rep.Targets, "took", rep.Took)
	}
	a.emit(Event{Kind: EventFailover, Member: c.member, Leader: true, Token: rep.Token, Failover: rep, Err: err})
	return rep, err
}

// move runs the move fenced by the lease (see guardMove).
func (a *Agent) move(ctx context.Context, l lease, req pool.MoveRequest, member string, counter int64) (*pool.MoveResult, error) {
	return a.s.Move(ctx, guardMove(req, l, member, counter))
}
