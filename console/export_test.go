package console

import (
	"time"
)

// Crash stops the broker as if its process died: no lease is released or
// renewed any more, connections and consoles drop.
func (b *Broker) Crash() { b.crash() }

// SetClock replaces the lease table's clock (tests drive takeovers with a
// fake monotonic clock).
func SetClock(t *LeaseTable, now func() time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = now
}

// Renew runs one renewal round now.
func Renew(t *LeaseTable) { t.renew() }

// Feed exposes the escape parser.
func Feed(state *int, in []byte) ([]byte, byte, []byte) {
	e := escaper{state: *state}
	out, cmd, rest := e.feed(in)
	*state = e.state
	return out, cmd, rest
}

// NewRing exposes the recent-output buffer.
func NewRing(n int) interface {
	Write([]byte)
	Bytes() []byte
} {
	return newRing(n)
}

// Abandon stops the table's renewals without releasing (a crash).
func Abandon(t *LeaseTable) { t.abandon() }
