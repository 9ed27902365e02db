// Package makemn is the makemn operation: it makes a service node the MN
// of the pool (RunUnlocked: checks, promotion, hold, sync) while holding
// a cluster-wide lock, so that two administrators who run makemn at the
// same moment on two members do not flip the MN twice: the second run
// fails at once, naming the member and the fencing token that hold the
// lock, and writes nothing.
//
// The lock is a lease of the locking package (rows and conditional
// updates, safe on Galera; never GET_LOCK, which locks one Galera node
// only). Its token fences the promotion: the promotion's transaction
// checks that the token is still the lock's current one, so a run whose
// lease was lost (a paused host) cannot promote after another took over.
//
// It lives in its own package because locking is built on pool; the CLI
// (makemn) and embedders call Run. RunUnlocked is the same operation
// without the lock (for a single administrator or tests).
package makemn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// LockName is the name of the cluster-wide makemn lock (mnpool lock list
// shows it).
const LockName = "makemn"

// StepLock is the name of the report's first step.
const StepLock = "lock"

// ErrBusy: another makemn holds the lock. The error is a *BusyError naming
// the holder; it also matches locking.ErrLocked.
var ErrBusy = errors.New("makemn: another makemn is running")

// BusyError says who holds the makemn lock.
type BusyError struct {
	Member  string `json:"member"`
	Token   int64  `json:"token"`
	Info    string `json:"info,omitempty"`
	Session string `json:"session,omitempty"`
	// Waited is how long Run waited (Options.Wait) before giving up.
	Waited time.Duration `json:"waited_ns,omitempty"`
}

func (e *BusyError) Error() string {
	who := fmt.Sprintf("member %s holds the makemn lock with token %d", e.Member, e.Token)
	if e.Member == "" {
		who = "another makemn took the lock at the same moment"
	}
	if e.Info != "" {
		who += " (" + e.Info + ")"
	}
	if e.Waited > 0 {
		who += fmt.Sprintf(", still after waiting %v", e.Waited.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v: %s; nothing was changed. Wait for it to finish (mnpool lock list), or, if that makemn died, "+
		"run makemn --wait 2m: a lock whose holder stopped renewing is taken over after its TTL", ErrBusy, who)
}

// Is makes errors.Is(err, ErrBusy) and errors.Is(err, locking.ErrLocked)
// true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy || target == locking.ErrLocked }

// Options are the arguments of Run.
type Options struct {
	// MakeMN are the arguments of the operation run under the lock. Its
	// Fence is set by Run.
	MakeMN Request
	// Wait, when above zero, waits up to this long for a held lock
	// (taking over a lock whose holder stopped renewing once its lease
	// stood still for its TTL). Zero fails at once with a *BusyError.
	Wait time.Duration
	// Lock are options of the lock (locking.WithTTL, ...). Default TTL:
	// locking.DefaultTTL.
	Lock []locking.Option
}

// LockReport says which lock the run held.
type LockReport struct {
	Name   string        `json:"name"`
	Token  int64         `json:"token,omitempty"`
	Holder *BusyError    `json:"holder,omitempty"`
	Took   time.Duration `json:"took_ns"`
}

// Report is Outcome with the lock.
type Report struct {
	Outcome
	Lock LockReport `json:"lock"`
}

// Run takes the makemn lock and runs RunUnlocked under it with the lock's
// Guard as the promotion's fence, then releases the lock. When the lock
// is held by another run it fails at once (or after Options.Wait) with a
// *BusyError and writes nothing. When the lease is lost during the run
// the run's context is cancelled and the error wraps locking.ErrLeaseLost.
// Sequential runs behave as RunUnlocked alone.
func Run(ctx context.Context, s *pool.Store, o Options) (Report, error) {
	mo := o.MakeMN
	rep := Report{Outcome: Outcome{Target: mo.Target, DryRun: mo.DryRun}, Lock: LockReport{Name: LockName}}
	if err := pool.ValidateName("member", mo.Target); err != nil {
		return rep, err
	}
	lk, err := locking.New(s)
	if err != nil {
		return rep, err
	}
	start := time.Now()
	l, err := take(ctx, lk, mo.Target, o)
	rep.Lock.Took = time.Since(start)
	if err != nil {
		var be *BusyError
		if errors.As(err, &be) {
			rep.Lock.Holder = be
		}
		rep.Steps = []Step{lockStep(mo, StepFailed, start, err.Error())}
		return rep, err
	}
	rep.Lock.Token = l.Token()
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = l.Unlock(uctx)
	}()
	first := lockStep(mo, StepOK, start, fmt.Sprintf("holding the cluster-wide makemn lock (token %d); another makemn now fails at once", l.Token()))
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.Done():
			cancel(l.Err())
		case <-lctx.Done():
		}
	}()
	mo.Fence = l.Guard
	r, err := RunUnlocked(lctx, s, mo)
	rep.Outcome = r
	rep.Steps = append([]Step{first}, r.Steps...)
	if cause := context.Cause(lctx); err != nil && cause != nil && errors.Is(cause, locking.ErrLeaseLost) {
		err = fmt.Errorf("makemn: %w (the run was stopped: %w)", err, cause)
	}
	rep.OK = err == nil
	return rep, err
}

func lockStep(mo Request, st StepStatus, start time.Time, msg string) Step {
	stp := Step{Name: StepLock, Status: st, Message: msg, Elapsed: time.Since(start)}
	if mo.OnStep != nil {
		mo.OnStep(stp)
	}
	return stp
}

// take takes the lock: TryLock, or Lock bounded by o.Wait.
func take(ctx context.Context, lk *locking.Locker, target string, o Options) (*locking.Lock, error) {
	opts := append([]locking.Option{locking.WithInfo(fmt.Sprintf("makemn %s (pid %d)", target, os.Getpid()))}, o.Lock...)
	var l *locking.Lock
	var err error
	if o.Wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, o.Wait)
		l, err = lk.Lock(wctx, LockName, opts...)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			be := holder(ctx, lk)
			be.Waited = o.Wait
			return nil, be
		}
	} else {
		l, err = lk.TryLock(ctx, LockName, opts...)
	}
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, locking.ErrLocked):
		return nil, holder(ctx, lk)
	}
	return nil, fmt.Errorf("makemn: cannot take the makemn lock in the pool database (a promotion needs a healthy database with a quorum: "+
		"check `mnpool status` and docs/GALERA.md); nothing was changed: %w", err)
}

// holder reads who holds the lock now (for the message).
func holder(ctx context.Context, lk *locking.Locker) *BusyError {
	be := &BusyError{}
	infos, err := lk.List(ctx)
	if err != nil {
		return be
	}
	for _, in := range infos {
		if in.Name == LockName && in.Held {
			be.Member, be.Token, be.Info, be.Session = in.Member, in.Token, in.Info, in.Session
		}
	}
	return be
}
