package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Agent is the long-running process of one pool member (mnpoold, or a
// product that embeds it). Run starts, as goroutines of one errgroup:
//
//   - the heartbeat: bumps this member's counter every interval and, in
//     the same transaction, samples every member's counter and publishes
//     this agent's judgement (pool.Heartbeater with a liveness.Observer);
//   - the MN guard (mnguard.Guard): whether this member may serve the DHCP
//     dynamic range, confirmed through a healthy database node;
//   - the follower: reads the change counter (pool.Store.Watch) and runs
//     the sync steps (poolsync.Sync) whenever the pool changes, the guard's
//     answer flips, or the resync interval passes;
//   - failover, when site.autofailover is 1: campaigns for the failover
//     lease (locking) and, as the leader, moves the nodes of members it
//     judges dead (pool.Store.Move, as snmove does);
//   - database health checks, the HTTP server (/metrics, /healthz) and
//     the services given with WithService (DNS server, console broker).
//
// An Agent runs once; create another to run again.
type Agent struct {
	s       *pool.Store
	self    string
	o       options
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *metrics
	running atomic.Bool

	// Set by prepare before the loops start, read-only afterwards.
	timing Timing
	obs    *liveness.Observer
	hb     *pool.Heartbeater
	guard  *mnguard.Guard
	locker *locking.Locker

	// beat is signalled after every committed heartbeat (a fresh sample
	// of the counters): the failover leader evaluates then.
	beat chan struct{}

	mu          sync.Mutex
	phase       string
	startErr    error
	state       *pool.State
	version     int64
	changed     chan struct{} // closed and replaced when state changes
	lastBeat    time.Time
	beatErr     error
	health      pool.Health
	healthErr   error
	healthAt    time.Time
	lastSync    syncStatus
	leader      bool
	token       int64
	autofail    bool
	autofailErr string
	view        liveness.View // last judgement, for liveness events
	served      bool          // ServeDynamic of the last applied sync
	tracks      map[string]*track
	aliveGen    int64 // counts transitions of any member to alive
}

// Phases of an agent, as /healthz reports them.
const (
	PhaseNew      = "new"
	PhaseStarting = "starting"
	PhaseRunning  = "running"
	PhaseStopping = "stopping"
	PhaseStopped  = "stopped"
)

// New returns the agent of the member the store was opened for
// (pool.WithSelf). The store should prefer the member's own database
// node. Nothing runs until Run, which brings the schema up to date
// (pool.Store.Migrate with Schema and locking.Schema) before it starts.
func New(s *pool.Store, opts ...Option) (*Agent, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no store", ErrInvalid)
	}
	self := s.Self()
	if self == "" {
		return nil, fmt.Errorf("%w: the store names no member; open it with pool.WithSelf(member)", ErrInvalid)
	}
	if err := pool.ValidateName("member", self); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if _, err := o.timing.Resolve(0); err != nil && errors.Is(err, ErrInvalid) {
		return nil, err
	}
	o.failover = o.failover.withDefaults()
	if o.detect == nil {
		o.detect = func(ctx context.Context) (time.Duration, error) { return galeraDetection(ctx, s) }
	}
	a := &Agent{s: s, self: self, o: o, log: o.log.With("member", self), phase: PhaseNew,
		beat: make(chan struct{}, 1), changed: make(chan struct{})}
	a.reg = o.reg
	if a.reg == nil {
		a.reg = defaultRegistry()
	}
	m, err := newMetrics(a.reg, self, a.memberSnapshot)
	if err != nil {
		return nil, fmt.Errorf("agent: registering metrics: %w", err)
	}
	a.m = m
	return a, nil
}

// Self is the member the agent runs for.
func (a *Agent) Self() string { return a.self }

// Registry is the Prometheus registry holding the agent's metrics.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// Timing is the resolved timing; zero until Run has read the database.
func (a *Agent) Timing() Timing {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.timing
}

// Liveness is this agent's current judgement of every member (nil before
// Run started the heartbeat).
func (a *Agent) Liveness() liveness.View {
	a.mu.Lock()
	obs := a.obs
	a.mu.Unlock()
	if obs == nil {
		return nil
	}
	return obs.View()
}

// LivenessView is a liveness.Source over this agent's current
// judgement, for the services beside it that pick alive members (the
// console broker): every member is liveness.Unknown (usable) until Run has
// started the heartbeat.
func (a *Agent) LivenessView() liveness.Source { return liveView{a} }

type liveView struct{ a *Agent }

func (v liveView) LiveState(member string) liveness.State { return v.a.Liveness().LiveState(member) }

// State is the pool snapshot last applied (nil before the first sync).
// It is shared: do not modify it.
func (a *Agent) State() *pool.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Run runs the agent until ctx ends or a part of it fails, then shuts down
// gracefully: it releases the failover lease, so that another member takes
// over at once, stops the HTTP server and, on the MN, re-applies the last
// snapshot without the DHCP dynamic range (a stopped agent cannot confirm
// the role), each bounded by the shutdown timeout. It returns ctx's error after a shutdown asked for by ctx, and
// the failure otherwise: a bad timing (ErrUnsafeTiming), the member not in
// the pool (ErrNotMember), an HTTP address in use, a service's error.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: member %s", ErrRunning, a.self)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(rctx)
	a.setPhase(PhaseStarting)
	if a.o.httpAddr != "" || a.o.httpLn != nil {
		ln, err := a.listen()
		if err != nil {
			a.setPhase(PhaseStopped)
			return err
		}
		g.Go(func() error { return a.serveHTTP(gctx, ln) })
	}
	if err := a.prepare(gctx); err != nil {
		cancel()
		_ = g.Wait()
		a.setPhase(PhaseStopped)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	a.log.Info("agent: running", "timing", a.timing.String(), "steps", len(a.o.steps), "services", len(a.o.services))
	a.setPhase(PhaseRunning)
	g.Go(func() error { return a.heartbeat(gctx) })
	g.Go(func() error { return a.guard.Run(gctx) })
	g.Go(func() error { return a.follow(gctx) })
	g.Go(func() error { return a.checkHealth(gctx) })
	g.Go(func() error { return a.failoverLoop(gctx) })
	for _, svc := range a.o.services {
		g.Go(func() error {
			err := svc.run(gctx)
			if err != nil && gctx.Err() == nil {
				a.log.Error("agent: service failed", "service", svc.name, "err", err)
				return fmt.Errorf("agent: service %s: %w", svc.name, err)
			}
			return gctx.Err()
		})
	}
	err := g.Wait()
	a.setPhase(PhaseStopping)
	if a.servedDynamic() {
		// A stopped agent cannot confirm the MN role: step back
		// (docs/DESIGN.md, *fencing-tokens*); the next start serves the range again
		// after the guard's hold.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), a.o.shutdown)
		a.applyCached(sctx, "the agent stops")
		scancel()
	}
	a.setPhase(PhaseStopped)
	if ctx.Err() != nil {
		a.log.Info("agent: stopped")
		return ctx.Err()
	}
	a.log.Error("agent: stopped after a failure", "err", err)
	return err
}

// prepare waits for the database, resolves the timing and builds the
// heartbeat, the observer, the MN guard and the locker.
func (a *Agent) prepare(ctx context.Context) error {
	var detect time.Duration
	for wait := time.Second; ; wait = min(2*wait, 10*time.Second) {
		err := a.checkMember(ctx)
		if err == nil {
			err = ensureSchema(ctx, a.s)
		}
		if err == nil {
			detect, err = a.o.detect(ctx)
		}
		if err == nil {
			break
		}
		if errors.Is(err, ErrNotMember) || errors.Is(err, ErrInvalid) || errors.Is(err, pool.ErrSchemaTooNew) {
			return err
		}
		a.mu.Lock()
		a.startErr = err
		a.mu.Unlock()
		a.log.Warn("agent: waiting for the pool database", "err", err, "retry_in", wait)
		if err := ctxutil.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	t, err := a.o.timing.Resolve(detect)
	if err != nil {
		return err
	}
	obs, err := liveness.NewObserver(liveness.Config{SuspectAfter: t.SuspectAfter, DeadAfter: t.DeadAfter})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	guard, err := mnguard.New(a.s, a.self, append([]mnguard.Option{mnguard.WithLogger(a.log)}, a.o.guardOpts...)...)
	if err != nil {
		return fmt.Errorf("agent: MN guard: %w", err)
	}
	lk, err := locking.New(a.s, locking.WithLogger(a.log), locking.WithTTL(t.LeaseTTL))
	if err != nil {
		return fmt.Errorf("agent: locker: %w", err)
	}
	a.mu.Lock()
	a.timing, a.obs, a.guard, a.locker, a.startErr = t, obs, guard, lk, nil
	a.hb = &pool.Heartbeater{Store: a.s, Member: a.self, Interval: t.HeartbeatInterval, Observer: obs, Log: a.log}
	a.mu.Unlock()
	return nil
}

func (a *Agent) checkMember(ctx context.Context) error {
	ms, err := a.s.Members(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		if m.Name == a.self {
			return nil
		}
		names[i] = m.Name
	}
	return fmt.Errorf("%w: %s is not a member of the pool (members: %v); add it with `mnpool member add %s`", ErrNotMember, a.self, names, a.self)
}

// heartbeat bumps the counter every interval (sampling and publishing
// the observer's view in the same transaction) and signals the failover
// leader after each committed beat.
func (a *Agent) heartbeat(ctx context.Context) error {
	iv := a.timing.HeartbeatInterval
	timeout := max(5*iv, 2*time.Second)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		bctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := a.hb.Beat(bctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			a.m.heartbeatFailures.Inc()
			a.mu.Lock()
			a.beatErr = err
			a.mu.Unlock()
			a.log.Warn("agent: heartbeat failed", "err", err)
		default:
			a.m.heartbeats.Inc()
			a.mu.Lock()
			a.lastBeat, a.beatErr = time.Now(), nil
			a.mu.Unlock()
			a.noteLiveness()
			select {
			case a.beat <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// noteLiveness emits an event for every member whose state changed since
// the last beat.
func (a *Agent) noteLiveness() {
	v := a.obs.View()
	a.trackLiveness(v)
	a.mu.Lock()
	prev := a.view
	a.view = v
	a.mu.Unlock()
	for _, m := range v.Members() {
		old := prev.LiveState(m)
		if prev == nil {
			old = ""
		}
		if cur := v[m].State; cur != old {
			if m != a.self && old != "" {
				a.log.Info("agent: liveness changed", "of", m, "state", cur, "was", old, "silent", v[m].Silent.Round(time.Millisecond))
			}
			a.emit(Event{Kind: EventLiveness, Member: m, State: cur, Prev: old})
		}
	}
}

// checkHealth reads the database health every health interval.
func (a *Agent) checkHealth(ctx context.Context) error {
	t := time.NewTicker(a.o.healthEvery)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, max(a.o.healthEvery, 5*time.Second))
		h, err := a.s.Health(hctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.mu.Lock()
		a.health, a.healthErr, a.healthAt = h, err, time.Now()
		a.mu.Unlock()
		a.m.dbHealthy.Set(boolGauge(err == nil && h.Healthy))
		a.m.dbClusterSize.Set(float64(h.ClusterSize))
		if err == nil && !h.Healthy {
			a.log.Warn("agent: database not healthy", "node", h.Node, "problem", h.Problem)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (a *Agent) setPhase(p string) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
}

// memberSnapshot feeds the per-member metrics.
func (a *Agent) memberSnapshot() memberSnapshot {
	a.mu.Lock()
	obs, st := a.obs, a.state
	a.mu.Unlock()
	var s memberSnapshot
	if obs != nil {
		s.view = obs.View()
	}
	if st != nil {
		s.nodes = map[string][2]int{}
		for _, m := range pool.Summarize(st).Members {
			s.nodes[m.Name] = [2]int{m.Primary, m.Listed}
		}
	}
	return s
}
