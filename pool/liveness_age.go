package pool

import (
	"context"
	"time"

	"github.com/mnpool/mnpool/pool/liveness"
)

// How old is a published judgement? Only counters are compared (never one
// host's clock with another's): the reader watches the publishing agents'
// heartbeat counters on its own monotonic clock. An agent publishes its
// judgements in the transaction that bumps its counter, so a counter seen
// moving at time t means judgements published at t; a counter that has not
// moved for StaleAfter intervals means the agent stopped publishing, and
// its judgements are stale however current they look.

// defaultStaleIntervals is how many heartbeat intervals without a
// publication make a judgement stale.
const defaultStaleIntervals = 3

// AgeOptions tune AgedView.
type AgeOptions struct {
	// Interval is the agents' heartbeat interval (DefaultHeartbeatInterval
	// when zero).
	Interval time.Duration
	// StaleIntervals: judgements whose observers have not published for
	// this many intervals are stale (3 when zero).
	StaleIntervals int
}

func (o AgeOptions) withDefaults() AgeOptions {
	if o.Interval <= 0 {
		o.Interval = liveness.DefaultHeartbeatInterval
	}
	if o.StaleIntervals <= 0 {
		o.StaleIntervals = defaultStaleIntervals
	}
	return o
}

// AgedView is PublishedView with the age of each judgement: it watches the
// publishing agents' counters until each has moved, for at most
// StaleIntervals intervals (so it returns after about one interval when
// the agents run, and after StaleIntervals when they do not). A judgement's
// Age is the time since its freshest observer was seen publishing; when no
// observer published during the watch it is Stale and its Age is the
// watch's length (a lower bound). Members nobody judged have no age.
func (s *Store) AgedView(ctx context.Context, o AgeOptions) (liveness.View, error) {
	o = o.withDefaults()
	start := time.Now()
	obs, beats, err := s.readObservations(ctx)
	if err != nil {
		return nil, err
	}
	publishers := map[string]int64{}
	for _, ob := range obs {
		if ob.Credible {
			publishers[ob.Observer] = beats[ob.Observer]
		}
	}
	moved, err := s.watchPublishers(ctx, publishers, start.Add(time.Duration(o.StaleIntervals)*o.Interval), o.Interval/4)
	if err != nil {
		return nil, err
	}
	if len(publishers) > 0 {
		if obs, beats, err = s.readObservations(ctx); err != nil {
			return nil, err
		}
	}
	v := combineObservations(obs, beats)
	now := time.Now()
	for m, l := range v {
		if len(l.Observers) == 0 {
			continue
		}
		l.Age, l.Stale = now.Sub(start), true
		for _, ob := range l.Observers {
			if t, ok := moved[ob]; ok && now.Sub(t) <= l.Age {
				l.Age, l.Stale = now.Sub(t), false
			}
		}
		v[m] = l
	}
	return v, nil
}

// watchPublishers polls the heartbeat counters until every publisher's
// counter has moved from the value given or until deadline. It returns
// when each was last seen moving (reader's monotonic clock).
func (s *Store) watchPublishers(ctx context.Context, last map[string]int64, deadline time.Time, poll time.Duration) (map[string]time.Time, error) {
	moved := map[string]time.Time{}
	if poll < 10*time.Millisecond {
		poll = 10 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for len(moved) < len(last) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		hb, err := s.Heartbeats(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for p, c := range last {
			if hb[p] != c {
				moved[p], last[p] = now, hb[p]
			}
		}
	}
	return moved, nil
}
