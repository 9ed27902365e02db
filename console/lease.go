package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// Leaser grants console leases: at most one member at a time holds the
// lease of a node, and only the holder opens the node's console. The
// broker uses it through this interface; LeaseTable is the implementation
// on the cluster-wide locks of package locking.
type Leaser interface {
	// TryAcquire takes node's lease without waiting: when it is free,
	// when this leaser holds it already, or when the holder's renewal
	// counter has been seen unchanged for the TTL on this member's own
	// clock. Otherwise it returns a *HeldError (errors.Is ErrLeaseHeld).
	// A contender must call it repeatedly to observe the counter.
	TryAcquire(ctx context.Context, node string) (Lease, error)
	// Holders returns the current holder of each of nodes that has one
	// (all held leases when nodes is nil), as the database says now.
	Holders(ctx context.Context, nodes []string) (map[string]Holder, error)
	// Close releases every lease held and stops renewing.
	Close(ctx context.Context) error
}

// Lease is a held console lease.
//
// Safety: the lease is held while Done is open. The holder renews it in
// the background; when a renewal is refused (the lease was taken over) or
// has not succeeded for TTL - margin (4/5 of the TTL) on the holder's
// clock, Done closes and Err says why. A contender takes the lease over
// only after it saw the renewal counter unchanged for the whole TTL on its
// own clock, so a holder that stops using the console when Done closes
// never overlaps with the next holder, provided the two clocks run at
// about the same rate (no wall-clock comparison is involved). Token only
// grows; it is the fencing token of the lease. These are the rules of a
// locking.Lock, which a console lease is.
type Lease interface {
	Node() string
	Token() int64
	Done() <-chan struct{}
	// Err is nil while held or after Release, else why it was lost
	// (wrapping ErrLeaseLost or ErrClosed).
	Err() error
	// Release gives the lease up at once (the next member need not wait
	// for the TTL). Releasing a lost lease does nothing.
	Release(ctx context.Context) error
}

// Holder is who holds a node's console lease.
type Holder struct {
	Node   string `json:"node"`
	Member string `json:"member"`
	Token  int64  `json:"token"`
}

// DefaultLeaseTTL is how long a console lease lives without renewal. It
// must be much longer than Galera's failure detection (a minority node
// still says Primary for several seconds after a partition).
const DefaultLeaseTTL = 30 * time.Second

// LeasePrefix starts the lock name of a console lease: the lease of node
// cn001 is the lock "console:cn001" (mnpool lock list shows it).
const LeasePrefix = "console:"

// LeaseName is the lock name of node's console lease.
func LeaseName(node string) string { return LeasePrefix + node }

// LeaseTable is the Leaser of one member: each console lease is a lock of
// package locking (table locks), taken with Locker.Contend, so console
// leases and every other lock share one implementation of claiming,
// renewing, taking over a stale lease and giving up.
type LeaseTable struct {
	s      *pool.Store
	lk     *locking.Locker
	member string
	ttl    time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	held   map[string]*tableLease
	closed bool
}

// NewLeaseTable returns the lease table of member on s with the given
// TTL (DefaultLeaseTTL when zero, at least locking.MinTTL). log may be
// nil. Close it to release its leases.
func NewLeaseTable(s *pool.Store, member string, ttl time.Duration, log *slog.Logger) (*LeaseTable, error) {
	if err := pool.ValidateName("member", member); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	if ttl < locking.MinTTL || ttl > locking.MaxTTL {
		return nil, fmt.Errorf("%w: lease TTL %s: want %s to %s", ErrInvalid, ttl, locking.MinTTL, locking.MaxTTL)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lk, err := locking.New(s, locking.WithTTL(ttl), locking.WithMember(member), locking.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &LeaseTable{s: s, lk: lk, member: member, ttl: ttl, log: log, held: map[string]*tableLease{}}, nil
}

// TTL is the lease time to live.
func (t *LeaseTable) TTL() time.Duration { return t.ttl }

// Locker is the Locker the table's leases are taken with (for its Stats).
func (t *LeaseTable) Locker() *locking.Locker { return t.lk }

// TryAcquire implements Leaser.
func (t *LeaseTable) TryAcquire(ctx context.Context, node string) (Lease, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if l := t.held[node]; l != nil && l.lock.Held() {
		t.mu.Unlock()
		return l, nil
	}
	t.mu.Unlock()

	lock, err := t.lk.Contend(ctx, LeaseName(node), locking.WithInfo("console "+node))
	if err != nil {
		var he *locking.HeldError
		if errors.As(err, &he) {
			return nil, &HeldError{Node: node, Holder: he.Member, Token: he.Token}
		}
		if errors.Is(err, locking.ErrLocked) {
			return nil, &HeldError{Node: node}
		}
		return nil, fmt.Errorf("console: acquiring the lease of %s: %w", node, err)
	}
	l := &tableLease{t: t, node: node, lock: lock}
	t.mu.Lock()
	if t.closed {
		// Closed while acquiring: give it back now.
		t.mu.Unlock()
		lock.Unlock(context.WithoutCancel(ctx))
		return nil, ErrClosed
	}
	t.held[node] = l
	t.mu.Unlock()
	go t.watch(l)
	return l, nil
}

// watch forgets a lease when it ends and logs a loss.
func (t *LeaseTable) watch(l *tableLease) {
	<-l.lock.Done()
	t.mu.Lock()
	if t.held[l.node] == l {
		delete(t.held, l.node)
	}
	t.mu.Unlock()
	if err := l.Err(); errors.Is(err, ErrLeaseLost) {
		t.log.Warn("console: lease lost", "node", l.node, "token", l.lock.Token(), "err", err)
		// Given up on this member's clock (renewals failed): free the
		// row if it is still this lease's, so the next member need not
		// wait for the TTL once the database answers again. The release
		// is conditional on the token; a taken-over row is left alone.
		ctx, cancel := context.WithTimeout(context.Background(), t.ttl)
		defer cancel()
		l.lock.Unlock(ctx)
	}
}

// Holders implements Leaser.
func (t *LeaseTable) Holders(ctx context.Context, nodes []string) (map[string]Holder, error) {
	return LeaseHolders(ctx, t.s, nodes)
}

// Close implements Leaser: it releases every lease of this table and
// stops renewing. Leases' Done channels close.
func (t *LeaseTable) Close(ctx context.Context) error {
	ls := t.shut()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, l := range ls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := l.Release(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shut marks the table closed and returns the leases it held.
func (t *LeaseTable) shut() []*tableLease {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	ls := make([]*tableLease, 0, len(t.held))
	for _, l := range t.held {
		ls = append(ls, l)
	}
	t.held = map[string]*tableLease{}
	return ls
}

// abandon stops renewing without releasing anything, as a crash would:
// the leases stay in the database until contenders see them stale.
func (t *LeaseTable) abandon() {
	for _, l := range t.shut() {
		l.lock.Abandon()
	}
}

// Leases returns the nodes whose lease this table holds, sorted.
func (t *LeaseTable) Leases() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.held))
	for n, l := range t.held {
		if l.lock.Held() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// tableLease is a console lease: a held locking.Lock.
type tableLease struct {
	t    *LeaseTable
	node string
	lock *locking.Lock

	mu       sync.Mutex
	released bool // Release was called while the lease was held
}

func (l *tableLease) Node() string          { return l.node }
func (l *tableLease) Token() int64          { return l.lock.Token() }
func (l *tableLease) Done() <-chan struct{} { return l.lock.Done() }

func (l *tableLease) Err() error {
	l.mu.Lock()
	released := l.released
	l.mu.Unlock()
	err := l.lock.Err()
	switch {
	case err == nil || released:
		return nil
	case errors.Is(err, locking.ErrLeaseLost):
		return fmt.Errorf("%w: %s: %w", ErrLeaseLost, l.node, err)
	default: // abandoned (a crash of the broker)
		return fmt.Errorf("%w: %s: %w", ErrClosed, l.node, err)
	}
}

func (l *tableLease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released || l.lock.Err() != nil {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	err := l.lock.Unlock(ctx)
	if errors.Is(err, locking.ErrLeaseLost) {
		l.mu.Lock()
		l.released = false // lost before the release: Err says so
		l.mu.Unlock()
	}
	if err == nil || errors.Is(err, locking.ErrLeaseLost) || errors.Is(err, locking.ErrNotHeld) {
		return nil
	}
	return fmt.Errorf("console: releasing the lease of %s: %w", l.node, err)
}

var _ Leaser = (*LeaseTable)(nil)

// isHeld reports whether err says another member holds the lease.
func isHeld(err error) (*HeldError, bool) {
	var h *HeldError
	ok := errors.As(err, &h)
	return h, ok
}

// LeaseHolders reads who holds the console leases of nodes (all held
// leases when nodes is nil) from the store, without holding any.
func LeaseHolders(ctx context.Context, s *pool.Store, nodes []string) (map[string]Holder, error) {
	var names []string
	if nodes != nil {
		names = make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = LeaseName(n)
		}
	}
	held, err := locking.Held(ctx, s, LeasePrefix, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Holder, len(held))
	for name, in := range held {
		node := strings.TrimPrefix(name, LeasePrefix)
		out[node] = Holder{Node: node, Member: in.Member, Token: in.Token}
	}
	return out, nil
}
