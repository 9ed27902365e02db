// Package mnguard is the MN guard, the fail-safe of the MN role: a Guard
// confirms through a healthy database node, again and again, that its
// member is still the MN of the current epoch, and says whether the member
// may serve the DHCP dynamic range now (ServeDynamic) and under which
// epoch. The agent runs one on every member; makemn waits out its hold;
// the dhcp renderer asks it (it is a poolsync.DynamicGate).
//
// It imports pool; pool does not import it.
package mnguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
)

// Defaults of the MN guard. The timing chain they belong to is described
// in docs/MAKEMN-RUNBOOK.md ("Timing of the fail-safe").
const (
	// DefaultConfirmEvery is how often the guard asks the database
	// whether its member is still the MN.
	DefaultConfirmEvery = 2 * time.Second
	// DefaultValidFor is how long one successful confirmation lets
	// the MN serve the dynamic range, counted from the moment the
	// confirming read started.
	DefaultValidFor = 6 * time.Second
)

// Option configures a Guard.
type Option func(*guardOptions)

type guardOptions struct {
	every    time.Duration
	validFor time.Duration
	hold     time.Duration
	holdSet  bool
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// WithTiming sets how often the guard confirms (every) and how long a
// confirmation stays valid (validFor). validFor must be longer than every,
// and it must be shorter than the time another member needs to be promoted
// after this one stopped confirming (see the runbook).
func WithTiming(every, validFor time.Duration) Option {
	return func(o *guardOptions) { o.every, o.validFor = every, validFor }
}

// WithHold sets how long the guard must have confirmed its member as
// the MN of an epoch before it lets it serve the dynamic range (default:
// validFor + every). It covers the previous MN, which may go on serving
// for up to validFor after its last confirmation and then needs a moment
// to re-render.
func WithHold(d time.Duration) Option {
	return func(o *guardOptions) { o.hold, o.holdSet = d, true }
}

// WithConfirmTimeout bounds one confirmation (default: every).
func WithConfirmTimeout(d time.Duration) Option {
	return func(o *guardOptions) { o.timeout = d }
}

// WithLogger sets the guard's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *guardOptions) { o.log = l } }

// WithNow replaces the clock (time.Now; only differences between its
// values are used, so a monotonic clock is right). For tests.
func WithNow(now func() time.Time) Option { return func(o *guardOptions) { o.now = now } }

// Guard is the fail-safe of the MN role (docs/DESIGN.md,
// *fencing-tokens*). It confirms, periodically and through a healthy Primary Galera node (the store uses no
// other), that its member is named by the master record, and remembers on
// the local monotonic clock when that was last true. ServeDynamic says
// whether the member may hand out the DHCP dynamic range now.
//
// Safety: ServeDynamic is true only while the last successful confirmation
// started less than validFor ago, and only after the member has been
// confirmed as the MN of the current epoch for at least the hold time. An
// MN that is cut off from the Primary component stops serving within
// validFor of its last confirmation; a new MN starts serving at the
// earliest hold after its own first confirmation, which came after the
// promotion. With hold >= validFor the two intervals do not overlap (see
// docs/MAKEMN-RUNBOOK.md for the whole chain). The guard only reads: a
// member never becomes the MN again by itself; after a partition heals it
// reads the master record and stays an SN.
//
// Things that act for the MN check the epoch ServeDynamic returns (the
// fencing token) against the one they were configured with.
type Guard struct {
	s    *pool.Store
	self string
	o    guardOptions

	mu       sync.Mutex
	master   pool.Master // the master record last read
	isMN     bool        // master names self
	first    time.Time   // start of the first confirmation as MN of master.Epoch
	last     time.Time   // start of the last confirmation as MN of master.Epoch
	lastTry  time.Time
	lastErr  error
	served   bool // the answer of ServeDynamic at the last notification
	changed  chan struct{}
	running  bool
	confirms int64
	failures int64
}

// New returns a guard for member self. Run it with Run, or call
// Confirm yourself.
func New(s *pool.Store, self string, opts ...Option) (*Guard, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: MN guard without a store", pool.ErrInvalid)
	}
	if err := pool.ValidateName("member", self); err != nil {
		return nil, err
	}
	o := guardOptions{
		every:    DefaultConfirmEvery,
		validFor: DefaultValidFor,
		now:      time.Now,
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range opts {
		f(&o)
	}
	if o.every <= 0 || o.validFor <= o.every {
		return nil, fmt.Errorf("%w: MN guard timing every=%v validFor=%v (want every > 0 and validFor > every)", pool.ErrInvalid, o.every, o.validFor)
	}
	if !o.holdSet {
		o.hold = o.validFor + o.every
	}
	if o.hold < 0 {
		return nil, fmt.Errorf("%w: MN guard hold %v (want >= 0)", pool.ErrInvalid, o.hold)
	}
	if o.timeout <= 0 {
		o.timeout = o.every
	}
	if s.Kind() == dsn.MySQL && s.SyncWait()&1 == 0 {
		// A confirmation must see the latest commit, not a stale local
		// copy (docs/DESIGN.md, *sync-wait*).
		return nil, fmt.Errorf("%w: MN guard needs a store with wsrep_sync_wait >= 1 (store has %d)", pool.ErrInvalid, s.SyncWait())
	}
	if o.timeout >= o.validFor {
		return nil, fmt.Errorf("%w: MN guard confirm timeout %v (want less than validFor %v)", pool.ErrInvalid, o.timeout, o.validFor)
	}
	return &Guard{s: s, self: self, o: o, changed: make(chan struct{}, 1)}, nil
}

// Timing returns the guard's confirm interval, validity and hold.
func (g *Guard) Timing() (every, validFor, hold time.Duration) {
	return g.o.every, g.o.validFor, g.o.hold
}

// Confirm reads the master record once (bounded by the confirm timeout)
// and updates the guard. It returns the record read. An error leaves the
// last good confirmation in place, to expire on its own.
func (g *Guard) Confirm(ctx context.Context) (pool.Master, error) {
	start := g.o.now()
	cctx, cancel := context.WithTimeout(ctx, g.o.timeout)
	m, err := g.s.Master(cctx)
	cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastTry = start
	if err != nil {
		g.lastErr = err
		g.failures++
		g.log().Warn("pool: MN guard could not confirm the master record", "self", g.self, "err", err)
		return pool.Master{}, err
	}
	g.lastErr = nil
	g.confirms++
	isMN := m.Member == g.self
	switch {
	case !isMN:
		if g.isMN {
			g.log().Warn("pool: MN guard: no longer the MN", "self", g.self, "mn", m.Member, "epoch", m.Epoch)
		}
		g.first, g.last = time.Time{}, time.Time{}
	case !g.isMN || m.Epoch != g.master.Epoch:
		// The hold counts from when the read returned, not when it
		// started: with wsrep_sync_wait the read may see a promotion that
		// committed after it started, and the old MN's last confirmation
		// can be that late too. Validity (last) counts from the start,
		// the conservative end for the old MN.
		g.first, g.last = g.o.now(), start
	default:
		g.last = start
	}
	g.master, g.isMN = m, isMN
	return m, nil
}

func (g *Guard) log() *slog.Logger { return g.o.log }

// ServeDynamic returns the MN epoch and true when the member may serve the
// dynamic range now: it is the MN, its last confirmation started less than
// validFor ago, and it has been the confirmed MN of this epoch for at
// least the hold time.
func (g *Guard) ServeDynamic() (epoch int64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.serveLocked(g.o.now())
}

func (g *Guard) serveLocked(now time.Time) (int64, bool) {
	if !g.isMN || g.last.IsZero() {
		return 0, false
	}
	if now.Sub(g.last) >= g.o.validFor || now.Sub(g.first) < g.o.hold {
		return 0, false
	}
	return g.master.Epoch, true
}

// Status is a snapshot of the guard for status output.
type Status struct {
	Self   string      `json:"self"`
	Master pool.Master `json:"master"`
	IsMN   bool        `json:"is_mn"`
	// ServeDynamic and Epoch are what ServeDynamic returns now.
	ServeDynamic bool  `json:"serve_dynamic"`
	Epoch        int64 `json:"epoch,omitempty"`
	// SinceConfirm is the age of the last successful confirmation as MN
	// (zero when there is none); ValidFor and Hold are the guard's bounds.
	SinceConfirm time.Duration `json:"since_confirm"`
	ValidFor     time.Duration `json:"valid_for"`
	Hold         time.Duration `json:"hold"`
	Confirms     int64         `json:"confirms"`
	Failures     int64         `json:"failures"`
	LastError    string        `json:"last_error,omitempty"`
}

// Status returns a snapshot of the guard.
func (g *Guard) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.now()
	st := Status{Self: g.self, Master: g.master, IsMN: g.isMN, ValidFor: g.o.validFor, Hold: g.o.hold, Confirms: g.confirms, Failures: g.failures}
	st.Epoch, st.ServeDynamic = g.serveLocked(now)
	if !g.last.IsZero() {
		st.SinceConfirm = now.Sub(g.last)
	}
	if g.lastErr != nil {
		st.LastError = g.lastErr.Error()
	}
	return st
}

// Changed is signalled (without blocking; one pending signal at most)
// whenever the answer of ServeDynamic changes while Run runs, including
// when a confirmation expires. A DHCP renderer waits on it and renders
// again.
func (g *Guard) Changed() <-chan struct{} { return g.changed }

// WaitServe runs the guard until it lets this member serve the dynamic
// range (it returns the epoch and true), it finds the member is not the
// MN, or the hold plus two validity periods and one interval have passed,
// or ctx ends (false; Status says why). Only one Run or WaitServe may run
// at a time.
func (g *Guard) WaitServe(ctx context.Context) (int64, bool) {
	every, validFor, hold := g.Timing()
	hctx, cancel := context.WithTimeout(ctx, hold+2*validFor+every)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Run(hctx)
	}()
	defer func() { cancel(); <-done }()
	for {
		if e, ok := g.ServeDynamic(); ok {
			return e, true
		}
		if st := g.Status(); st.Confirms > 0 && !st.IsMN {
			return 0, false
		}
		if ctxutil.SleepOr(hctx, 50*time.Millisecond, g.Changed()) != nil {
			return 0, false
		}
	}
}

// Run confirms every interval until ctx ends and signals Changed when the
// answer of ServeDynamic flips, waking up exactly when a confirmation
// expires or the hold ends. It returns ctx's error. Only one Run may run at
// a time.
func (g *Guard) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return fmt.Errorf("%w: MN guard for %s is running already", pool.ErrConflict, g.self)
	}
	g.running = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nextConfirm time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if now := g.o.now(); !now.Before(nextConfirm) {
			nextConfirm = now.Add(g.o.every)
			if _, err := g.Confirm(ctx); err != nil && errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
		}
		timer.Reset(g.notifyAndNextWake(nextConfirm))
	}
}

// notifyAndNextWake signals Changed when the answer moved and returns how
// long to sleep: until the next confirmation, or earlier when the answer
// changes by itself (hold over, validity expired).
func (g *Guard) notifyAndNextWake(nextConfirm time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.now()
	_, ok := g.serveLocked(now)
	if ok != g.served {
		g.served = ok
		select {
		case g.changed <- struct{}{}:
		default:
		}
		if ok {
			g.log().Info("pool: MN guard: serving the dynamic range", "self", g.self, "epoch", g.master.Epoch)
		} else {
			g.log().Warn("pool: MN guard: not serving the dynamic range", "self", g.self, "is_mn", g.isMN, "err", g.lastErr)
		}
	}
	wake := nextConfirm
	if g.isMN && !g.last.IsZero() {
		for _, t := range []time.Time{g.first.Add(g.o.hold), g.last.Add(g.o.validFor)} {
			if t.After(now) && t.Before(wake) {
				wake = t
			}
		}
	}
	d := wake.Sub(now)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}
