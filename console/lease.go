package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
)

// Leaser grants console leases: at most one member at a time holds the
// lease of a node, and only the holder opens the node's console. The
// broker uses it through this interface so the cluster-wide `locking`
// package can provide it later; LeaseTable is the implementation on the
// pool store.
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
// has not succeeded for 4/5 of the TTL on the holder's clock, Done closes
// and Err says why. A contender takes the lease over only after it saw the
// renewal counter unchanged for the whole TTL on its own clock, so a
// holder that stops using the console when Done closes never overlaps
// with the next holder, provided the two clocks run at about the same
// rate (no wall-clock comparison is involved). Token only grows; it is
// the fencing token of the lease.
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
	Node   string `json:"node" db:"node"`
	Member string `json:"member" db:"holder"`
	Token  int64  `json:"token" db:"token"`
}

// DefaultLeaseTTL is how long a console lease lives without renewal. It
// must be much longer than Galera's failure detection (a minority node still says Primary for several seconds after a partition).
const DefaultLeaseTTL = 30 * time.Second

// LeaseTable is a Leaser on the pool store: table console_leases, one row
// per node (never deleted, so tokens only grow), renewed in one statement
// for all the leases of this table (UPDATE ... WHERE session = ?).
type LeaseTable struct {
	s       *pool.Store
	member  string
	session string
	ttl     time.Duration
	log     *slog.Logger
	now     func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	held    map[string]*tableLease
	pending map[string]int // nodes being acquired: not orphans yet
	seen    map[string]observation
	closed  bool
}

type observation struct {
	session string
	counter int64
	since   time.Time
}

type leaseRow struct {
	Holder  string `db:"holder"`
	Session string `db:"session"`
	Token   int64  `db:"token"`
	Counter int64  `db:"counter"`
}

// NewLeaseTable returns the lease table of member on s with the given
// TTL (DefaultLeaseTTL when zero). log may be nil. Close it to release
// its leases.
func NewLeaseTable(s *pool.Store, member string, ttl time.Duration, log *slog.Logger) (*LeaseTable, error) {
	if err := pool.ValidateName("member", member); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	if ttl < 10*time.Millisecond {
		return nil, fmt.Errorf("%w: lease TTL %s: want at least 10ms", ErrInvalid, ttl)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &LeaseTable{
		s: s, member: member, session: hex.EncodeToString(id[:]), ttl: ttl, log: log, now: time.Now,
		ctx: ctx, cancel: cancel, held: map[string]*tableLease{}, pending: map[string]int{}, seen: map[string]observation{},
	}
	// Renew three times per TTL; check expiry twenty times per TTL.
	t.wg.Add(2)
	go t.every(ttl/3, t.renew)
	go t.every(max(ttl/20, time.Millisecond), t.expire)
	return t, nil
}

// clock reads the table's monotonic clock.
func (t *LeaseTable) clock() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.now()
}

// TTL is the lease time to live.
func (t *LeaseTable) TTL() time.Duration { return t.ttl }

// validFor is how long after the start of its last successful renewal
// the holder still trusts its lease: a margin below the TTL after which a
// contender may take over.
func (t *LeaseTable) validFor() time.Duration { return t.ttl - t.ttl/5 }

// TryAcquire implements Leaser.
func (t *LeaseTable) TryAcquire(ctx context.Context, node string) (Lease, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if l := t.held[node]; l != nil {
		t.mu.Unlock()
		return l, nil
	}
	t.pending[node]++
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.pending[node]--; t.pending[node] <= 0 {
			delete(t.pending, node)
		}
		t.mu.Unlock()
	}()

	start := t.clock()
	var got *leaseRow
	var held *HeldError
	d := t.s.Dialect()
	ins := d.InsertIgnore("console_leases", []string{"node", "holder", "session", "token", "counter"})
	err := t.s.Tx(ctx, func(tx *sqlx.Tx) error {
		got, held = nil, nil
		if _, err := tx.ExecContext(ctx, ins, node, "", "", 0, 0); err != nil {
			return err
		}
		var r leaseRow
		if err := tx.GetContext(ctx, &r, "SELECT holder, session, token, counter FROM console_leases WHERE node = ?", node); err != nil {
			return err
		}
		if r.Session == t.session {
			// Still ours (a second run after a commit whose outcome was
			// unknown, or a lease whose renewals failed here for a while).
			// Renew it before trusting it: a contender that watched the
			// counter since our last renewal may be about to take over,
			// and only a successful conditional bump proves it has not.
			res, err := tx.ExecContext(ctx, "UPDATE console_leases SET counter = counter + 1 WHERE node = ? AND session = ? AND token = ? AND counter = ?",
				node, t.session, r.Token, r.Counter)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				if err != nil {
					return err
				}
				held = &HeldError{Node: node, Holder: r.Holder, Token: r.Token}
				return nil
			}
			r.Counter++
			got = &r
			return nil
		}
		if r.Session != "" && !t.stale(node, r) {
			held = &HeldError{Node: node, Holder: r.Holder, Token: r.Token}
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE console_leases SET holder = ?, session = ?, token = token + 1, counter = counter + 1
WHERE node = ? AND session = ? AND counter = ?`, t.member, t.session, node, r.Session, r.Counter)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return err
			}
			held = &HeldError{Node: node, Holder: r.Holder, Token: r.Token}
			return nil
		}
		var nr leaseRow
		if err := tx.GetContext(ctx, &nr, "SELECT holder, session, token, counter FROM console_leases WHERE node = ?", node); err != nil {
			return err
		}
		if r.Session != "" {
			t.log.Info("console: took over a stale lease", "node", node, "from", r.Holder, "token", nr.Token)
		}
		got = &nr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: acquiring the lease of %s: %w", node, err)
	}
	if held != nil {
		return nil, held
	}
	l := &tableLease{t: t, node: node, token: got.Token, done: make(chan struct{}), renewedAt: start}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, node)
	if t.closed {
		// Closed while acquiring: give it back now.
		go t.releaseRow(context.Background(), node, got.Token)
		return nil, ErrClosed
	}
	t.held[node] = l
	return l, nil
}

// stale records what this member saw of node's lease row and reports
// whether the same (session, counter) has been seen for the whole TTL on
// this member's monotonic clock.
func (t *LeaseTable) stale(node string, r leaseRow) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	o, ok := t.seen[node]
	if ok && o.session == r.Session && o.counter == r.Counter {
		return now.Sub(o.since) >= t.ttl
	}
	t.seen[node] = observation{session: r.Session, counter: r.Counter, since: now}
	return false
}

// Holders implements Leaser.
func (t *LeaseTable) Holders(ctx context.Context, nodes []string) (map[string]Holder, error) {
	return LeaseHolders(ctx, t.s, nodes)
}

// Close implements Leaser: it releases every lease of this table in one
// statement and stops renewing. Leases' Done channels close.
func (t *LeaseTable) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, l := range t.held {
		l.end(nil)
	}
	t.held = map[string]*tableLease{}
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	return t.s.Tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE console_leases SET holder = '', session = '', counter = counter + 1 WHERE session = ?", t.session)
		return err
	})
}

// abandon stops renewing without releasing anything, as a crash would:
// the leases stay in the database until contenders see them stale.
func (t *LeaseTable) abandon() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	for _, l := range t.held {
		l.end(fmt.Errorf("%w: lease table abandoned", ErrClosed))
	}
	t.held = map[string]*tableLease{}
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// every runs fn every d until the table closes.
func (t *LeaseTable) every(d time.Duration, fn func()) {
	defer t.wg.Done()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}

// renew bumps the counter of every lease of this session in one
// statement, then checks which are still this session's: a lease missing
// (taken over) is lost; a row of this session that is no longer held here
// (a release that failed) is released now.
func (t *LeaseTable) renew() {
	// Only leases held before the renewal started are judged by it: a
	// lease acquired meanwhile may have committed after its SELECT.
	t.mu.Lock()
	before := make(map[*tableLease]bool, len(t.held))
	for _, l := range t.held {
		before[l] = true
	}
	t.mu.Unlock()
	n := len(before)
	if n == 0 {
		return
	}
	start := t.clock()
	ctx, cancel := context.WithTimeout(t.ctx, t.ttl/2)
	defer cancel()
	type mine struct {
		Node  string `db:"node"`
		Token int64  `db:"token"`
	}
	var rows []mine
	err := t.s.Tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE console_leases SET counter = counter + 1 WHERE session = ?", t.session); err != nil {
			return err
		}
		rows = rows[:0]
		return tx.SelectContext(ctx, &rows, "SELECT node, token FROM console_leases WHERE session = ?", t.session)
	})
	if err != nil {
		if t.ctx.Err() == nil {
			t.log.Warn("console: renewing leases failed", "leases", n, "err", err)
		}
		return // the watchdog ends leases not renewed in time
	}
	have := make(map[string]int64, len(rows))
	for _, r := range rows {
		have[r.Node] = r.Token
	}
	var orphans []mine
	t.mu.Lock()
	for node, l := range t.held {
		if !before[l] {
			continue
		}
		if tok, ok := have[node]; ok && tok == l.token {
			if start.After(l.renewedAt) {
				l.renewedAt = start
			}
			continue
		}
		delete(t.held, node)
		l.end(fmt.Errorf("%w: the lease of %s (token %d) was taken over or released elsewhere", ErrLeaseLost, node, l.token))
		t.log.Warn("console: lease lost", "node", node, "token", l.token)
	}
	for _, r := range rows {
		if l, ok := t.held[r.Node]; (!ok || l.token != r.Token) && t.pending[r.Node] == 0 {
			orphans = append(orphans, r)
		}
	}
	t.mu.Unlock()
	for _, o := range orphans {
		t.releaseRow(ctx, o.Node, o.Token)
	}
}

// expire ends leases whose last successful renewal started more than
// validFor ago on this member's clock.
func (t *LeaseTable) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for node, l := range t.held {
		if age := now.Sub(l.renewedAt); age > t.validFor() {
			delete(t.held, node)
			l.end(fmt.Errorf("%w: the lease of %s was not renewed for %s (TTL %s)", ErrLeaseLost, node, age.Round(time.Millisecond), t.ttl))
			t.log.Warn("console: lease expired locally", "node", node, "token", l.token, "age", age)
		}
	}
}

func (t *LeaseTable) releaseRow(ctx context.Context, node string, token int64) error {
	err := t.s.Tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE console_leases SET holder = '', session = '', counter = counter + 1 WHERE node = ? AND session = ? AND token = ?", node, t.session, token)
		return err
	})
	if err != nil {
		t.log.Warn("console: releasing lease failed; the next renewal tries again", "node", node, "err", err)
	}
	return err
}

// Leases returns the nodes whose lease this table holds, sorted.
func (t *LeaseTable) Leases() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.held))
	for n := range t.held {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type tableLease struct {
	t         *LeaseTable
	node      string
	token     int64
	done      chan struct{}
	err       error     // guarded by t.mu
	renewedAt time.Time // guarded by t.mu
	ended     bool      // guarded by t.mu
}

func (l *tableLease) Node() string          { return l.node }
func (l *tableLease) Token() int64          { return l.token }
func (l *tableLease) Done() <-chan struct{} { return l.done }

func (l *tableLease) Err() error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	return l.err
}

// end closes Done with err; t.mu must be held.
func (l *tableLease) end(err error) {
	if l.ended {
		return
	}
	l.ended, l.err = true, err
	close(l.done)
}

func (l *tableLease) Release(ctx context.Context) error {
	l.t.mu.Lock()
	if l.ended {
		l.t.mu.Unlock()
		return nil
	}
	if l.t.held[l.node] == l {
		delete(l.t.held, l.node)
	}
	l.end(nil)
	l.t.mu.Unlock()
	if err := l.t.releaseRow(ctx, l.node, l.token); err != nil {
		return fmt.Errorf("console: releasing the lease of %s: %w", l.node, err)
	}
	return nil
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
	var rows []Holder
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		if nodes == nil {
			return tx.SelectContext(ctx, &rows, "SELECT node, holder, token FROM console_leases WHERE holder <> ''")
		}
		for start := 0; start < len(nodes); start += s.BatchSize() {
			q, args, err := sqlx.In("SELECT node, holder, token FROM console_leases WHERE holder <> '' AND node IN (?)", nodes[start:min(start+s.BatchSize(), len(nodes))])
			if err != nil {
				return err
			}
			var part []Holder
			if err := tx.SelectContext(ctx, &part, q, args...); err != nil {
				return err
			}
			rows = append(rows, part...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]Holder, len(rows))
	for _, r := range rows {
		out[r.Node] = r
	}
	return out, nil
}
