package dns

import (
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"
)

// Response rate limiting defaults (see RateLimit).
const (
	// DefaultResponsesPerSecond is the sustained rate of identical
	// answers one client prefix gets.
	DefaultResponsesPerSecond = 1000
	// DefaultRateWindow is how many seconds of that rate a prefix may
	// spend at once: 15 s at 1000/s lets 15,000 identical answers go to
	// one prefix in a burst, more than a boot storm of 10,000 nodes that
	// all ask for the same name (their servicenode, say) sends.
	DefaultRateWindow = 15 * time.Second
	// DefaultSlip: of the answers over the limit, every DefaultSlip-th is
	// sent as an empty truncated answer (TC set) so that a real client
	// retries over TCP, where no limit applies; the others are dropped.
	DefaultSlip = 2
	// DefaultIPv4PrefixLen and DefaultIPv6PrefixLen group clients.
	DefaultIPv4PrefixLen = 24
	DefaultIPv6PrefixLen = 56
	// rrlSlots is the size of the account table (a power of two).
	rrlSlots = 1 << 16
)

// RateLimit configures response rate limiting (RRL) of UDP answers. An
// account is kept per client prefix (/24, /56) and per answer: the query
// name and type for answers and NXDOMAIN, the response code for errors
// (REFUSED, FORMERR, ...). Answers over TCP are never limited. Zero
// values take the defaults.
type RateLimit struct {
	// Off turns rate limiting off.
	Off bool
	// ResponsesPerSecond is the sustained rate per account
	// (DefaultResponsesPerSecond).
	ResponsesPerSecond int
	// Window is the burst an account may spend at once, in seconds of
	// that rate (DefaultRateWindow).
	Window time.Duration
	// Slip: every Slip-th limited answer is sent truncated instead of
	// dropped (DefaultSlip); negative drops them all.
	Slip int
	// IPv4PrefixLen and IPv6PrefixLen group client addresses
	// (DefaultIPv4PrefixLen, DefaultIPv6PrefixLen).
	IPv4PrefixLen, IPv6PrefixLen int
}

func (r RateLimit) withDefaults() RateLimit {
	if r.ResponsesPerSecond <= 0 {
		r.ResponsesPerSecond = DefaultResponsesPerSecond
	}
	if r.Window <= 0 {
		r.Window = DefaultRateWindow
	}
	if r.Slip == 0 {
		r.Slip = DefaultSlip
	}
	if r.IPv4PrefixLen <= 0 || r.IPv4PrefixLen > 32 {
		r.IPv4PrefixLen = DefaultIPv4PrefixLen
	}
	if r.IPv6PrefixLen <= 0 || r.IPv6PrefixLen > 128 {
		r.IPv6PrefixLen = DefaultIPv6PrefixLen
	}
	return r
}

// rrlVerdict is what to do with one answer.
type rrlVerdict uint8

const (
	rrlSend rrlVerdict = iota
	rrlDrop
	rrlSlip
)

// rrlSlot is one account, by GCRA: tat is the theoretical arrival time
// of the next answer in nanoseconds since the limiter's start.
type rrlSlot struct {
	key atomic.Uint64
	tat atomic.Int64
}

// limiter is the RRL account table: fixed size, no allocation, no lock
// (accounts whose keys collide share a slot: the newer one resets it, so
// a collision errs towards answering).
type limiter struct {
	cfg      RateLimit
	interval int64 // ns per answer
	tau      int64 // burst tolerance, ns
	start    time.Time
	seed     maphash.Seed
	slots    []rrlSlot
	slipped  atomic.Uint64
	limited  atomic.Uint64
	disabled bool
}

func newLimiter(cfg RateLimit) *limiter {
	cfg = cfg.withDefaults()
	l := &limiter{cfg: cfg, start: time.Now(), seed: maphash.MakeSeed(), disabled: cfg.Off}
	if l.disabled {
		return l
	}
	l.interval = int64(time.Second) / int64(cfg.ResponsesPerSecond)
	l.tau = int64(cfg.Window/time.Second) * int64(cfg.ResponsesPerSecond) * l.interval
	l.slots = make([]rrlSlot, rrlSlots)
	return l
}

// rrlKind separates accounts of the same name.
const (
	rrlAnswer byte = 1 // positive answer or NODATA: name and type
	rrlNX     byte = 2 // NXDOMAIN: name
	rrlError  byte = 3 // error: the response code only
)

// key hashes the account of an answer to client: buf is scratch space
// of at least 16+4+len(name) bytes.
func (l *limiter) key(buf []byte, client netip.Addr, kind byte, qtype uint16, rcode int, name []byte) uint64 {
	client = client.Unmap()
	bits := l.cfg.IPv6PrefixLen
	if client.Is4() {
		bits = l.cfg.IPv4PrefixLen
	}
	p, _ := client.Prefix(bits)
	a := p.Addr().As16()
	n := copy(buf, a[:])
	buf[n] = kind
	buf[n+1] = byte(rcode)
	n += 2
	if kind != rrlError {
		buf[n], buf[n+1] = byte(qtype>>8), byte(qtype)
		n += 2
		n += copy(buf[n:], name)
	}
	return maphash.Bytes(l.seed, buf[:n])
}

// check charges one answer to account h.
func (l *limiter) check(h uint64) rrlVerdict {
	if l.disabled {
		return rrlSend
	}
	now := int64(time.Since(l.start))
	s := &l.slots[h&(rrlSlots-1)]
	if s.key.Load() != h {
		s.key.Store(h)
		s.tat.Store(now)
	}
	for {
		old := s.tat.Load()
		tat := max(old, now)
		if tat-now > l.tau {
			l.limited.Add(1)
			if l.cfg.Slip > 0 && l.slipped.Add(1)%uint64(l.cfg.Slip) == 0 {
				return rrlSlip
			}
			return rrlDrop
		}
		if s.tat.CompareAndSwap(old, tat+l.interval) {
			return rrlSend
		}
	}
}
