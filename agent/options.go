package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/poolsync"
)

// Defaults of the agent's other options.
const (
	// DefaultWatchInterval is how often the change counter is read. A
	// change is applied on average half of it after its commit.
	DefaultWatchInterval = 250 * time.Millisecond
	// DefaultResyncInterval: everything is re-applied this often even when
	// the pool did not change (a file edited by hand, a daemon restarted).
	DefaultResyncInterval = 5 * time.Minute
	// DefaultHealthInterval is how often the database health is checked
	// for /healthz and the metrics.
	DefaultHealthInterval = 5 * time.Second
	// DefaultShutdownTimeout bounds the graceful shutdown (releasing the
	// failover lease, stopping the HTTP server).
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the backoff of a failed
	// sync.
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
)

type extraService struct {
	name string
	run  func(ctx context.Context) error
}

type options struct {
	log         *slog.Logger
	timing      Timing
	watchEvery  time.Duration
	resyncEvery time.Duration
	healthEvery time.Duration
	shutdown    time.Duration
	steps       []poolsync.Step
	services    []extraService
	httpAddr    string
	httpToken   string       // bearer token for /healthz detail (http.go)
	httpTimeout HTTPTimeouts // server timeouts (http.go)
	httpLn      net.Listener
	reg         *prometheus.Registry
	failover    FailoverPolicy
	events      func(Event)
	guardOpts   []mnguard.Option
	detect      func(ctx context.Context) (time.Duration, error)

	// Node reconfiguration after a failover (nodeconfig.go).
	nodecfg NodeConfig
}

func defaultOptions() options {
	return options{
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		watchEvery:  DefaultWatchInterval,
		resyncEvery: DefaultResyncInterval,
		healthEvery: DefaultHealthInterval,
		shutdown:    DefaultShutdownTimeout,
	}
}

// Option configures an Agent.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithTiming sets the heartbeat, liveness and lease timing. Zero fields
// are derived from the Galera failure detection time when Run starts
// (Timing.Resolve); values too short for it make Run fail with
// ErrUnsafeTiming.
func WithTiming(t Timing) Option { return func(o *options) { o.timing = t } }

// WithWatchInterval sets how often the change counter is read (default
// DefaultWatchInterval).
func WithWatchInterval(d time.Duration) Option { return func(o *options) { o.watchEvery = d } }

// WithResyncInterval sets how often everything is re-applied without a
// change (default DefaultResyncInterval; negative: never).
func WithResyncInterval(d time.Duration) Option { return func(o *options) { o.resyncEvery = d } }

// WithHealthInterval sets how often the database health is checked
// (default DefaultHealthInterval).
func WithHealthInterval(d time.Duration) Option { return func(o *options) { o.healthEvery = d } }

// WithShutdownTimeout bounds the graceful shutdown (default
// DefaultShutdownTimeout).
func WithShutdownTimeout(d time.Duration) Option { return func(o *options) { o.shutdown = d } }

// WithSteps adds sync steps, run in order on every change of the pool
// (poolsync.Sync): role files, DHCP, a product's own configuration. Steps must
// be idempotent; they run from one goroutine.
func WithSteps(steps ...poolsync.Step) Option {
	return func(o *options) { o.steps = append(o.steps, steps...) }
}

// WithService runs fn beside the agent until the agent stops (the DNS
// server, the console broker). An error other than the context's ends the
// agent: Run returns it.
func WithService(name string, fn func(ctx context.Context) error) Option {
	return func(o *options) { o.services = append(o.services, extraService{name: name, run: fn}) }
}

// WithHTTPAddr serves /metrics and /healthz on addr (host:port). Without
// it (or WithHTTPListener) no HTTP server runs; Handler still returns the
// handler for a product's own server.
func WithHTTPAddr(addr string) Option { return func(o *options) { o.httpAddr = addr } }

// WithHTTPListener serves /metrics and /healthz on ln (closed when the
// agent stops).
func WithHTTPListener(ln net.Listener) Option { return func(o *options) { o.httpLn = ln } }

// WithRegistry registers the agent's metrics in reg (default: a new
// registry with the Go and process collectors).
func WithRegistry(reg *prometheus.Registry) Option { return func(o *options) { o.reg = reg } }

// WithFailover sets the failover policy of this agent (whether failover
// runs at all is the site setting autofailover).
func WithFailover(p FailoverPolicy) Option { return func(o *options) { o.failover = p } }

// WithEvents calls fn for every Event, from the agent's goroutines: it
// must return quickly.
func WithEvents(fn func(Event)) Option { return func(o *options) { o.events = fn } }

// WithGuardOptions configures the MN guard (mnguard.New) that decides
// whether this member serves the DHCP dynamic range.
func WithGuardOptions(opts ...mnguard.Option) Option {
	return func(o *options) { o.guardOpts = append(o.guardOpts, opts...) }
}

// withDetection replaces the Galera detection query (tests).
func withDetection(fn func(ctx context.Context) (time.Duration, error)) Option {
	return func(o *options) { o.detect = fn }
}

func (o *options) validate() error {
	switch {
	case o.watchEvery <= 0:
		return fmt.Errorf("%w: watch interval %v (want > 0)", ErrInvalid, o.watchEvery)
	case o.healthEvery <= 0:
		return fmt.Errorf("%w: health interval %v (want > 0)", ErrInvalid, o.healthEvery)
	case o.shutdown <= 0:
		return fmt.Errorf("%w: shutdown timeout %v (want > 0)", ErrInvalid, o.shutdown)
	case o.httpAddr != "" && o.httpLn != nil:
		return fmt.Errorf("%w: give an HTTP address or a listener, not both", ErrInvalid)
	}
	seen := map[string]bool{}
	for i, st := range o.steps {
		if st == nil || st.Name() == "" {
			return fmt.Errorf("%w: sync step %d has no name", ErrInvalid, i+1)
		}
		if seen[st.Name()] {
			return fmt.Errorf("%w: sync step %q given twice", ErrInvalid, st.Name())
		}
		seen[st.Name()] = true
	}
	for i, s := range o.services {
		if s.name == "" || s.run == nil {
			return fmt.Errorf("%w: service %d needs a name and a function", ErrInvalid, i+1)
		}
	}
	if err := o.nodecfg.validate(); err != nil {
		return err
	}
	return o.failover.validate()
}
