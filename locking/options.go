package locking

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults and limits of the lock options.
const (
	// DefaultTTL is the lease time: a holder that stops renewing loses the
	// lock to a waiter that has seen its lease stand still this long. It
	// must be well above Galera's failure detection time (docs/LOCKING.md).
	DefaultTTL = 60 * time.Second
	// MinTTL and MaxTTL bound WithTTL.
	MinTTL = 200 * time.Millisecond
	MaxTTL = 24 * time.Hour
	// DefaultMarginDivisor: the default safety margin is TTL/5. The holder
	// gives the lock up (Done closes) when it has not renewed for
	// TTL - margin, so it stops margin before a contender may take over.
	DefaultMarginDivisor = 5
	// DefaultRenewDivisor: the lease is renewed every TTL/3 by default,
	// which leaves two attempts before TTL - margin.
	DefaultRenewDivisor = 3
	// DefaultPollInterval is how often a waiter reads the lock row and its
	// place in the queue (jittered by ±25%); the first two in the queue
	// read four times as often. Waiters in the same process as the holder are
	// woken at once by Unlock.
	DefaultPollInterval = 250 * time.Millisecond
	// MaxNameLen is the longest lock name in bytes.
	MaxNameLen = 255
	// MaxInfoLen is the longest holder description kept in the row.
	MaxInfoLen = 255
)

type options struct {
	log        *slog.Logger
	ttl        time.Duration
	margin     time.Duration // 0: ttl / DefaultMarginDivisor
	renewEvery time.Duration // 0: ttl / DefaultRenewDivisor
	poll       time.Duration
	info       string
	member     string // "": the store's Self
}

func defaultOptions() options {
	return options{
		log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		ttl:  DefaultTTL,
		poll: DefaultPollInterval,
	}
}

// Option configures a Locker (the defaults of its locks) or one Lock,
// TryLock or Install call.
type Option func(*options)

// WithLogger sets the logger of a Locker (default: discard). Ignored per
// lock.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithMember sets the member recorded as the holder of a Locker's locks
// (default: the store's pool.WithSelf). Ignored per lock.
func WithMember(name string) Option { return func(o *options) { o.member = name } }

// WithTTL sets the lease time (default DefaultTTL, between MinTTL and
// MaxTTL). The holder renews every TTL/3 and gives the lock up after
// TTL - margin without a successful renewal.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithMargin sets the safety margin (default TTL/5): Done closes when the
// lease has not been renewed for TTL - margin on the holder's clock, so the
// holder has margin to stop before a contender can take over. It must
// cover clock rate differences between hosts and the time the holder
// needs to stop its work after Done closes. At most TTL/2.
func WithMargin(d time.Duration) Option { return func(o *options) { o.margin = d } }

// WithRenewInterval sets how often the lease is renewed (default TTL/3).
// It must be shorter than TTL - margin.
func WithRenewInterval(d time.Duration) Option { return func(o *options) { o.renewEvery = d } }

// WithPollInterval sets how often a waiter looks at the lock (default
// DefaultPollInterval, at least 5ms); the first two in the queue look
// four times as often.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithInfo sets a description of the holder shown by List (mnpool lock
// list), such as "pid 4711: copycds rhels9.iso". Control characters are
// replaced and it is cut to MaxInfoLen bytes.
func WithInfo(s string) Option { return func(o *options) { o.info = cleanInfo(s) } }

// resolve fills the derived defaults and validates the result.
func (o options) resolve() (options, error) {
	if o.ttl < MinTTL || o.ttl > MaxTTL {
		return o, fmt.Errorf("%w: TTL %v (allowed %v to %v)", ErrInvalid, o.ttl, MinTTL, MaxTTL)
	}
	if o.margin == 0 {
		o.margin = o.ttl / DefaultMarginDivisor
	}
	if o.renewEvery == 0 {
		o.renewEvery = o.ttl / DefaultRenewDivisor
	}
	if o.margin < 0 || o.margin > o.ttl/2 {
		return o, fmt.Errorf("%w: margin %v for TTL %v (allowed 0 to TTL/2 = %v)", ErrInvalid, o.margin, o.ttl, o.ttl/2)
	}
	if o.renewEvery <= 0 || o.renewEvery >= o.ttl-o.margin {
		return o, fmt.Errorf("%w: renew interval %v (allowed above 0 and below TTL - margin = %v)", ErrInvalid, o.renewEvery, o.ttl-o.margin)
	}
	if o.poll < minPoll {
		return o, fmt.Errorf("%w: poll interval %v (allowed %v or more)", ErrInvalid, o.poll, minPoll)
	}
	return o, nil
}

// ValidateName checks a lock name: 1 to MaxNameLen bytes of UTF-8 without
// control characters and without leading or trailing space.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty lock name", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: lock name %.40q... is %d bytes (allowed up to %d)", ErrInvalid, name, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: lock name %q is not UTF-8", ErrInvalid, name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: lock name %q has leading or trailing space", ErrInvalid, name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: lock name %q has control characters", ErrInvalid, name)
	}
	return nil
}

func cleanInfo(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if len(s) > MaxInfoLen {
		s = s[:MaxInfoLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
