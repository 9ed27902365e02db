package pool

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/liveness"
)

// publishSlack is how many beats an observer's published judgements may lag
// behind its heartbeat counter and still count as current. Publication
// happens in the same transaction as the beat, so the lag is normally 0.
const publishSlack = 2

// Heartbeat increments member's heartbeat counter and returns its new
// value. It is not a pool change: it is not audited and does not move the
// change counter (Watch). ErrNotFound if member does not exist.
func (s *Store) Heartbeat(ctx context.Context, member string) (int64, error) {
	var v int64
	err := s.Tx(ctx, func(tx *sqlx.Tx) error {
		var err error
		v, err = beat(ctx, tx, member)
		return err
	})
	return v, err
}

func beat(ctx context.Context, tx *sqlx.Tx, member string) (int64, error) {
	res, err := tx.ExecContext(ctx, "UPDATE members SET heartbeat = heartbeat + 1 WHERE name = ?", member)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("%w: member %s (heartbeat)", ErrNotFound, member)
	}
	var v int64
	err = tx.GetContext(ctx, &v, "SELECT heartbeat FROM members WHERE name = ?", member)
	return v, err
}

// Heartbeats returns every member's heartbeat counter.
func (s *Store) Heartbeats(ctx context.Context) (map[string]int64, error) {
	var out map[string]int64
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = readHeartbeats(ctx, tx)
		return err
	})
	return out, err
}

func readHeartbeats(ctx context.Context, tx *sqlx.Tx) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name, heartbeat FROM members")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var v int64
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, rows.Err()
}

// Heartbeater keeps a member's heartbeat counter moving. Optionally it also
// observes the other members and publishes its judgements, so that one-shot
// commands (mnpool status, mnpool route) can show liveness without watching
// counters themselves. The agent of each member runs one.
type Heartbeater struct {
	// Store is the pool database. Required.
	Store *Store
	// Member is the member whose counter is bumped. Required.
	Member string
	// Interval between beats; DefaultHeartbeatInterval when zero.
	Interval time.Duration
	// Observer, when set, samples all counters at every beat and its
	// view of the other members is published in the same transaction as
	// the beat (table member_liveness).
	Observer *liveness.Observer
	// Log receives beat failures; discarded when nil.
	Log *slog.Logger
}

func (h *Heartbeater) interval() time.Duration {
	if h.Interval <= 0 {
		return liveness.DefaultHeartbeatInterval
	}
	return h.Interval
}

// Beat bumps the counter once (and publishes the observer's view) and
// returns the new counter value.
func (h *Heartbeater) Beat(ctx context.Context) (int64, error) {
	if h.Store == nil || h.Member == "" {
		return 0, fmt.Errorf("%w: Heartbeater needs a Store and a Member", ErrInvalid)
	}
	if h.Observer == nil {
		return h.Store.Heartbeat(ctx, h.Member)
	}
	var v int64
	err := h.Store.Tx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if v, err = beat(ctx, tx, h.Member); err != nil {
			return err
		}
		counters, err := readHeartbeats(ctx, tx)
		if err != nil {
			return err
		}
		h.Observer.Observe(counters)
		return h.Store.publish(ctx, tx, h.Member, v, h.Observer.View())
	})
	return v, err
}

// Run beats every interval until ctx ends and then returns ctx's error.
// A failed beat is logged and the next one is tried at the next tick; a
// beat never waits longer than a few intervals for the database.
func (h *Heartbeater) Run(ctx context.Context) error {
	log := h.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	iv := h.interval()
	timeout := max(5*iv, 2*time.Second)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		bctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := h.Beat(bctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("pool: heartbeat failed", "member", h.Member, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// publish writes observer's view of the other members, stamped with the
// observer's own counter value beat.
func (s *Store) publish(ctx context.Context, tx *sqlx.Tx, observer string, beat int64, v liveness.View) error {
	q := s.Dialect().Upsert("member_liveness", []string{"observer", "member"},
		[]string{"observer", "member", "state", "counter", "silent_ms", "observer_beat"})
	keep := []any{observer}
	for _, m := range v.Members() {
		if m == observer {
			continue
		}
		l := v[m]
		if _, err := tx.ExecContext(ctx, q, observer, m, string(l.State), l.Counter, l.Silent.Milliseconds(), beat); err != nil {
			return err
		}
		keep = append(keep, m)
	}
	del := "DELETE FROM member_liveness WHERE observer = ?"
	if len(keep) > 1 {
		del += " AND member NOT IN (" + placeholders(len(keep)-1) + ")"
	}
	_, err := tx.ExecContext(ctx, del, keep...)
	return err
}

// Observations returns every published observation, with Current and
// Credible filled in, sorted by member then observer.
func (s *Store) Observations(ctx context.Context) ([]liveness.Observation, error) {
	obs, _, err := s.readObservations(ctx)
	return obs, err
}

func (s *Store) readObservations(ctx context.Context) ([]liveness.Observation, map[string]int64, error) {
	var obs []liveness.Observation
	var beats map[string]int64
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if beats, err = readHeartbeats(ctx, tx); err != nil {
			return err
		}
		obs = obs[:0]
		return tx.SelectContext(ctx, &obs, "SELECT observer, member, state, counter, silent_ms, observer_beat FROM member_liveness ORDER BY member, observer")
	})
	if err != nil {
		return nil, nil, err
	}
	judgeObservations(obs, beats)
	return obs, beats, nil
}

// judgeObservations fills in Current and Credible. Only counters are
// compared, all read in one snapshot of the database.
func judgeObservations(obs []liveness.Observation, beats map[string]int64) {
	for i := range obs {
		o := &obs[i]
		o.Silent = time.Duration(o.SilentMS) * time.Millisecond
		b, isMember := beats[o.Observer]
		_, memberExists := beats[o.Member]
		lag := b - o.Beat
		o.Current = isMember && memberExists && o.Observer != o.Member && lag >= 0 && lag <= publishSlack
	}
	discredited := map[string]bool{}
	for _, o := range obs {
		if o.Current && (o.State == liveness.Suspect || o.State == liveness.Dead) {
			discredited[o.Member] = true
		}
	}
	for i := range obs {
		obs[i].Credible = obs[i].Current && !discredited[obs[i].Observer]
	}
}

// PublishedView combines the credible published observations into one
// judgement per member: the observation with the newest counter value wins
// (it saw the latest movement); among equal counters the one with the most
// evidence (dead, suspect, alive, unknown in that order, then the longest
// silence). Members no credible observer has judged are
// liveness.Unknown. Every member of the pool is in the view.
func (s *Store) PublishedView(ctx context.Context) (liveness.View, error) {
	obs, beats, err := s.readObservations(ctx)
	if err != nil {
		return nil, err
	}
	return combineObservations(obs, beats), nil
}

func combineObservations(obs []liveness.Observation, beats map[string]int64) liveness.View {
	v := liveness.View{}
	for m, c := range beats {
		v[m] = liveness.Judgement{Member: m, State: liveness.Unknown, Counter: c}
	}
	best := map[string]liveness.Observation{}
	by := map[string][]string{}
	for _, o := range obs {
		if !o.Credible {
			continue
		}
		by[o.Member] = append(by[o.Member], o.Observer)
		b, ok := best[o.Member]
		if !ok || newerEvidence(o, b) {
			best[o.Member] = o
		}
	}
	for m, o := range best {
		sort.Strings(by[m])
		v[m] = liveness.Judgement{Member: m, State: o.State, Counter: o.Counter, Silent: o.Silent, Observers: by[m]}
	}
	return v
}

// evidence ranks states by how much observation they rest on.
func evidence(s liveness.State) int {
	switch s {
	case liveness.Alive:
		return 1
	case liveness.Suspect:
		return 2
	case liveness.Dead:
		return 3
	}
	return 0
}

func newerEvidence(a, b liveness.Observation) bool {
	if a.Counter != b.Counter {
		return a.Counter > b.Counter
	}
	if ra, rb := evidence(a.State), evidence(b.State); ra != rb {
		return ra > rb
	}
	return a.Silent > b.Silent
}
