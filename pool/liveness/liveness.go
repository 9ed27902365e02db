// Package liveness judges whether pool members are alive
// (docs/DESIGN.md, *no-clock-compare*): a member proves it is alive by
// incrementing its heartbeat counter (pool.Store.Heartbeat,
// pool.Heartbeater). An Observer samples every member's counter and
// judges a member by how long the counter has not moved, measured on the
// observer's own monotonic clock. No timestamp written by one host is
// ever compared with the clock of another, so clocks that disagree, jump
// or are stepped by NTP change nothing.
//
// A judgement is a State (Alive, Suspect, Dead, Unknown); a Source answers
// it per member (a View, Static, Published). It is a leaf: pool imports
// it (the store publishes and reads judgements; Move and Route ask a
// Source).
package liveness

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mnpool/mnpool/pool/internal/valid"
)

// Liveness timing defaults. They exceed Galera's own failure detection
// (production evs.suspect_timeout PT5S + evs.inactive_timeout PT15S = 20 s):
// while Galera is still deciding whether a database node is gone, commits
// block on every node and no member can heartbeat, so a shorter dead timeout
// would declare the whole pool dead during an ordinary node loss. See
// docs/MEMBERSHIP.md.
const (
	DefaultHeartbeatInterval = 1 * time.Second
	DefaultSuspectAfter      = 10 * time.Second
	DefaultDeadAfter         = 30 * time.Second
)

// Config holds the timeouts of an Observer. Zero fields take the
// defaults.
type Config struct {
	// SuspectAfter: a counter silent this long makes the member suspect.
	SuspectAfter time.Duration
	// DeadAfter: a counter silent this long makes the member dead. It
	// must be longer than SuspectAfter.
	DeadAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.SuspectAfter == 0 {
		c.SuspectAfter = DefaultSuspectAfter
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	return c
}

// Validate checks the timeouts (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.SuspectAfter < 0 || c.DeadAfter < 0 {
		return fmt.Errorf("%w: liveness timeouts must be positive (suspect %s, dead %s)", valid.ErrInvalid, c.SuspectAfter, c.DeadAfter)
	}
	if c.DeadAfter <= c.SuspectAfter {
		return fmt.Errorf("%w: dead timeout %s must be longer than suspect timeout %s", valid.ErrInvalid, c.DeadAfter, c.SuspectAfter)
	}
	return nil
}

// Judge returns the state of a counter silent for silent, given whether the
// observer has seen it move at all.
func (c Config) Judge(silent time.Duration, moved bool) State {
	c = c.withDefaults()
	switch {
	case silent >= c.DeadAfter:
		return Dead
	case silent >= c.SuspectAfter:
		return Suspect
	case moved:
		return Alive
	default:
		return Unknown
	}
}

// Judgement is a judgement of one member.
type Judgement struct {
	Member string `json:"member"`
	State  State  `json:"state"`
	// Counter is the heartbeat value the judgement is based on.
	Counter int64 `json:"counter"`
	// Silent is how long the counter had not moved at the last sample, on
	// the observer's clock.
	Silent time.Duration `json:"silent_ns"`
	// Observers names the members whose judgement this is, when it was
	// read from the published observations (see Store.PublishedView);
	// empty for a local Observer.
	Observers []string `json:"observers,omitempty"`
	// Age is how long ago the judgement was published, on the reader's
	// clock (Store.AgedView); zero when not measured.
	Age time.Duration `json:"age_ns,omitempty"`
	// Stale: no observer published within the stale limit; Age is then a
	// lower bound and the state may be long out of date.
	Stale bool `json:"stale,omitempty"`
}

// View is a set of judgements by member name.
type View map[string]Judgement

// LiveState returns the state of member; Unknown when the view has
// none. View implements Source.
func (v View) LiveState(member string) State {
	if l, ok := v[member]; ok {
		return l.State
	}
	return Unknown
}

// Members returns the member names of the view, sorted.
func (v View) Members() []string {
	out := make([]string, 0, len(v))
	for m := range v {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Option configures an Observer.
type Option func(*Observer)

// WithClock replaces time.Now as the observer's clock (for tests). The
// readings must be monotonic: time.Now's are (Go keeps a monotonic reading
// in every time.Time from time.Now and Sub uses it).
func WithClock(now func() time.Time) Option {
	return func(o *Observer) { o.now = now }
}

// Observer judges members by watching their heartbeat counters move on the
// local monotonic clock. It keeps, per member, the last counter value seen
// and the local time it last moved.
//
// A member first seen counts as "moved now" for timing but not as proof of
// life: it is Unknown until its counter moves (then Alive), and a
// fresh observer calls nobody suspect or dead before it has itself watched
// for the suspect or dead timeout. Silence is measured up to the last
// successful sample, so an observer that cannot read the database stops
// aging its judgements instead of declaring everyone dead.
//
// An Observer is safe for concurrent use.
type Observer struct {
	cfg Config
	now func() time.Time

	mu   sync.Mutex
	last time.Time
	seen map[string]*track
}

type track struct {
	counter int64
	movedAt time.Time
	moved   bool
}

// NewObserver returns an observer with the given timeouts.
func NewObserver(cfg Config, opts ...Option) (*Observer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &Observer{cfg: cfg.withDefaults(), now: time.Now, seen: map[string]*track{}}
	for _, f := range opts {
		f(o)
	}
	return o, nil
}

// Config returns the observer's timeouts.
func (o *Observer) Config() Config { return o.cfg }

// Observe records one sample of every member's counter, taken now. Members
// missing from counters are forgotten.
func (o *Observer) Observe(counters map[string]int64) {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for m, c := range counters {
		t, ok := o.seen[m]
		if !ok {
			o.seen[m] = &track{counter: c, movedAt: now}
			continue
		}
		if c != t.counter {
			t.counter, t.movedAt, t.moved = c, now, true
		}
	}
	for m := range o.seen {
		if _, ok := counters[m]; !ok {
			delete(o.seen, m)
		}
	}
	o.last = now
}

// Sample reads every member's counter from the store and observes it.
func (o *Observer) Sample(ctx context.Context, s CounterReader) error {
	c, err := s.Heartbeats(ctx)
	if err != nil {
		return err
	}
	o.Observe(c)
	return nil
}

// View returns the current judgement of every member observed.
func (o *Observer) View() View {
	o.mu.Lock()
	defer o.mu.Unlock()
	v := make(View, len(o.seen))
	for m, t := range o.seen {
		silent := o.last.Sub(t.movedAt)
		v[m] = Judgement{Member: m, State: o.cfg.Judge(silent, t.moved), Counter: t.counter, Silent: silent}
	}
	return v
}

// Watch samples the store every interval for d (or until ctx ends) and
// returns the resulting view. It is what a one-shot command such as
// `mnpool status --sample 5s` uses; sampling errors are retried at the next
// interval and the last one is returned if no sample succeeded.
func (o *Observer) Watch(ctx context.Context, s CounterReader, d, interval time.Duration) (View, error) {
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastErr error
	ok := false
	for {
		if err := o.Sample(ctx, s); err != nil {
			lastErr = err
		} else {
			ok = true
		}
		select {
		case <-ctx.Done():
			return o.View(), ctx.Err()
		case <-deadline.C:
			if err := o.Sample(ctx, s); err == nil {
				ok = true
			}
			if !ok {
				return nil, lastErr
			}
			return o.View(), nil
		case <-tick.C:
		}
	}
}

// CounterReader reads every member's heartbeat counter; *pool.Store
// implements it (Store.Heartbeats).
type CounterReader interface {
	Heartbeats(ctx context.Context) (map[string]int64, error)
}
