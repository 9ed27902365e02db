package console

// Crash stops the broker as if its process died: no lease is released or
// renewed any more, connections and consoles drop.
func (b *Broker) Crash() { b.crash() }

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
