package console

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Defaults of the broker's options.
const (
	// DefaultRecent is how much recent output is kept per console and
	// replayed to a new watcher.
	DefaultRecent = 64 << 10
	// DefaultQueue is how many chunks of output (up to 4 KiB each) may
	// wait for one client; a client further behind is disconnected (and
	// its client reconnects and sees the recent output again), so a slow
	// watcher never holds up the console or the other watchers.
	DefaultQueue = 256
	// DefaultIdleClose is how long a console stays open with nobody
	// attached before the broker closes it and releases its lease.
	DefaultIdleClose = 5 * time.Minute
	// DefaultWriteTimeout bounds one write to a client or to a console.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultHelloTimeout bounds the wait for a client's hello line.
	DefaultHelloTimeout = 10 * time.Second
	// DefaultPeerDialTimeout bounds dialling another member's broker.
	DefaultPeerDialTimeout = 3 * time.Second
	// DefaultWatchInterval is how often the broker checks the pool's
	// change counter to reload nodes, members and consoles.
	DefaultWatchInterval = 2 * time.Second
)

type options struct {
	log          *slog.Logger
	live         liveness.Source
	leaser       Leaser
	ttl          time.Duration
	opener       Opener
	addrs        map[string]string
	dial         DialFunc
	recent       int
	queue        int
	idle         time.Duration
	watchEvery   time.Duration
	waitLimit    time.Duration
	writeTimeout time.Duration
	helloTimeout time.Duration
	creds        func() *pki.Credentials
	serverTLS    func() *tls.Config
	socketGID    int
	socketGIDSet bool
	noAudit      bool
}

// Option configures a Broker.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithLiveness sets the view of members' liveness used to pick the first
// alive member (default: every member unknown, that is usable). The
// membership heartbeat observer supplies the real one.
func WithLiveness(v liveness.Source) Option { return func(o *options) { o.live = v } }

// WithLeaser sets the console lease implementation (default: a
// LeaseTable on the broker's store with the TTL of WithLeaseTTL). The
// broker closes a leaser it did not create only when told (it does not).
func WithLeaser(l Leaser) Option { return func(o *options) { o.leaser = l } }

// WithLeaseTTL sets the TTL of the default LeaseTable (DefaultLeaseTTL).
func WithLeaseTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithOpener sets how console endpoints are opened (default Endpoints{}).
func WithOpener(op Opener) Option { return func(o *options) { o.opener = op } }

// WithBrokerAddrs overrides members' broker addresses (member name to
// HOST:PORT); members not in the map are reached at BrokerAddr.
func WithBrokerAddrs(m map[string]string) Option {
	return func(o *options) {
		o.addrs = make(map[string]string, len(m))
		for k, v := range m {
			o.addrs[k] = v
		}
	}
}

// WithDialer sets how other members' brokers are dialled.
func WithDialer(d DialFunc) Option { return func(o *options) { o.dial = d } }

// WithRecent sets the bytes of recent output kept per console.
func WithRecent(n int) Option { return func(o *options) { o.recent = n } }

// WithQueue sets the output chunks that may wait for one client.
func WithQueue(n int) Option { return func(o *options) { o.queue = n } }

// WithIdleClose sets how long an unwatched console stays open; negative
// keeps consoles open until the broker stops or loses the lease.
func WithIdleClose(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithWatchInterval sets how often the pool's change counter is checked.
func WithWatchInterval(d time.Duration) Option { return func(o *options) { o.watchEvery = d } }

// WithWaitLimit bounds how long a request may wait for a console (for a
// dead holder's lease to expire); default twice the lease TTL plus 10 s.
func WithWaitLimit(d time.Duration) Option { return func(o *options) { o.waitLimit = d } }

// WithWriteTimeout bounds one write to a client or a console.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = d } }

// WithCredentials sets this member's certificate, key and trust bundle
// (pki.LoadMember). They are required to serve on TCP (TLS 1.3 with a
// client certificate required) and to proxy to other members.
func WithCredentials(c *pki.Credentials) Option {
	return func(o *options) {
		o.creds = func() *pki.Credentials { return c }
		o.serverTLS = c.ServerConfig
	}
}

// WithCredentialSource is WithCredentials with credentials that are
// loaded again when their files change (pki.WatchMember): a renewed
// member certificate or a rotated CA bundle is used for the next
// connections without a restart.
func WithCredentialSource(s *pki.Source) Option {
	return func(o *options) {
		o.creds = s.Credentials
		o.serverTLS = s.ServerConfig
	}
}

// WithSocketGroup lets members of the group gid (besides root) use the
// broker's Unix socket (see ListenUnix and LookupGroup).
func WithSocketGroup(gid int) Option {
	return func(o *options) { o.socketGID, o.socketGIDSet = gid, true }
}

// WithoutAudit turns off the audit records of attaches (the log lines
// stay). For embedders that audit elsewhere.
func WithoutAudit() Option { return func(o *options) { o.noAudit = true } }

func (o *options) setDefaults() error {
	if !o.socketGIDSet {
		o.socketGID = -1
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.live == nil {
		o.live = liveness.Static(nil)
	}
	if o.ttl == 0 {
		o.ttl = DefaultLeaseTTL
	}
	if o.opener == nil {
		o.opener = Endpoints{}
	}
	if o.dial == nil {
		o.dial = defaultDial(DefaultPeerDialTimeout)
	}
	if o.recent == 0 {
		o.recent = DefaultRecent
	}
	if o.queue == 0 {
		o.queue = DefaultQueue
	}
	if o.idle == 0 {
		o.idle = DefaultIdleClose
	}
	if o.watchEvery <= 0 {
		o.watchEvery = DefaultWatchInterval
	}
	if o.waitLimit <= 0 {
		o.waitLimit = 2*o.ttl + 10*time.Second
	}
	if o.writeTimeout <= 0 {
		o.writeTimeout = DefaultWriteTimeout
	}
	if o.helloTimeout <= 0 {
		o.helloTimeout = DefaultHelloTimeout
	}
	switch {
	case o.recent < 0 || o.recent > 16<<20:
		return fmt.Errorf("%w: recent output %d bytes: want 0-16 MiB", ErrInvalid, o.recent)
	case o.queue < 4:
		return fmt.Errorf("%w: client queue %d chunks: want at least 4", ErrInvalid, o.queue)
	case o.ttl < locking.MinTTL || o.ttl > locking.MaxTTL:
		return fmt.Errorf("%w: lease TTL %s: want %s to %s", ErrInvalid, o.ttl, locking.MinTTL, locking.MaxTTL)
	}
	for addrMember, a := range o.addrs {
		if err := ValidateTCPAddress(a); err != nil {
			return fmt.Errorf("broker address of %s: %w", addrMember, err)
		}
	}
	return nil
}
