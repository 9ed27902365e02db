package liveness

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Published is a Source over the judgements the members'
// agents publish (Store.PublishedView), refreshed in the background by
// Follow. Until the first read, and for members nobody judged, it says
// unknown. A product that runs a console broker (or anything that routes
// by liveness) without the agent uses it. The zero value is ready.
type Published struct{ v atomic.Pointer[View] }

// LiveState implements Source.
func (p *Published) LiveState(member string) State {
	if v := p.v.Load(); v != nil {
		return v.LiveState(member)
	}
	return Unknown
}

// View returns the last view read (nil before the first).
func (p *Published) View() View {
	if v := p.v.Load(); v != nil {
		return *v
	}
	return nil
}

// Follow reads the published view now and then every interval until ctx
// ends; a failed read keeps the previous view and is logged (log may be
// nil).
func (p *Published) Follow(ctx context.Context, s PublishedReader, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultHeartbeatInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v, err := s.PublishedView(ctx)
		if err == nil {
			p.v.Store(&v)
		} else if ctx.Err() == nil {
			log.Warn("pool: reading members' liveness", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Observation is one published judgement: what Observer last thought of
// Member.
type Observation struct {
	Observer string        `json:"observer" db:"observer"`
	Member   string        `json:"member" db:"member"`
	State    State         `json:"state" db:"state"`
	Counter  int64         `json:"counter" db:"counter"`
	SilentMS int64         `json:"silent_ms" db:"silent_ms"`
	Beat     int64         `json:"observer_beat" db:"observer_beat"`
	Silent   time.Duration `json:"-" db:"-"`
	// Current: the observer is a member and is still publishing (its
	// heartbeat counter is within a beat or two of Beat).
	Current bool `json:"current" db:"-"`
	// Credible: current, and no other current observation calls the
	// observer itself suspect or dead (a paused observer's last words
	// stay current-looking because its counter froze with them).
	Credible bool `json:"credible" db:"-"`
}

// PublishedReader reads the judgements the members' agents publish;
// *pool.Store implements it (Store.PublishedView).
type PublishedReader interface {
	PublishedView(ctx context.Context) (View, error)
}
