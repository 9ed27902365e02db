package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Server defaults.
const (
	// DefaultListen is where the server listens (UDP and TCP) unless told.
	DefaultListen = ":53"
	// DefaultShutdownTimeout bounds the wait for queries in flight when
	// Serve's context ends.
	DefaultShutdownTimeout = 5 * time.Second
	// UDPReadBuffer is the receive buffer asked for on the UDP sockets
	// the server opens.
	UDPReadBuffer = 4 << 20
	// loadAttempts bounds the re-reads when the pool changes while the
	// server reads it.
	loadAttempts = 3
)

// Reader reads the pool and its change counter; *pool.Store is one.
type Reader interface {
	LoadState(ctx context.Context) (*pool.State, error)
	Version(ctx context.Context) (int64, error)
}

// Source is where the server reads the pool and learns of changes;
// *pool.Store is one.
type Source interface {
	Reader
	Watch(ctx context.Context, interval time.Duration) <-chan int64
}

// Load reads the pool at one version: the change counter, the state, and
// the counter again; when the pool moved meanwhile it reads again (three
// times at most, then it returns the last state with the counter read
// after it). The version is the SOA serial of zones built from the state,
// so that the same serial never stands for two different contents.
func Load(ctx context.Context, r Reader) (*pool.State, int64, error) {
	v, err := r.Version(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("dns: reading the pool version: %w", err)
	}
	for i := 0; ; i++ {
		st, err := r.LoadState(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("dns: loading the pool: %w", err)
		}
		after, err := r.Version(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("dns: reading the pool version: %w", err)
		}
		if after == v || i == loadAttempts-1 {
			return st, after, nil
		}
		v = after
	}
}

// Reload reports one reload of the server's data (see WithReloadHook).
type Reload struct {
	// Version is the pool change counter the data was built from.
	Version int64
	// Zones and Records count what is now served.
	Zones, Records int
	// Err is set when the reload failed; the previous data stays.
	Err error
}

type options struct {
	log             *slog.Logger
	listen          []string
	packetConns     []net.PacketConn
	listeners       []net.Listener
	interval        time.Duration
	zone            ZoneOptions
	forwardTimeout  time.Duration
	shutdownTimeout time.Duration
	rateLimit       RateLimit
	maxForwards     int
	maxPerUpstream  int
	udpSockets      int
	onReload        func(Reload)
}

// Option configures a Server.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithListen sets the addresses to listen on, each for UDP and TCP
// ("127.0.0.1:53", "[::]:53"; port 0 picks one port for both). Without
// it, and without WithPacketConn/WithListener, the server listens on
// DefaultListen.
func WithListen(addrs ...string) Option {
	return func(o *options) { o.listen = append(o.listen, addrs...) }
}

// WithPacketConn serves UDP on an open socket (systemd activation,
// tests). Serve closes it when it returns.
func WithPacketConn(pc net.PacketConn) Option {
	return func(o *options) { o.packetConns = append(o.packetConns, pc) }
}

// WithListener serves TCP on an open listener. Serve closes it when it
// returns.
func WithListener(l net.Listener) Option {
	return func(o *options) { o.listeners = append(o.listeners, l) }
}

// WithWatchInterval sets how often the pool's change counter is read
// (pool.DefaultWatchInterval).
func WithWatchInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithZoneOptions sets record and negative TTLs.
func WithZoneOptions(z ZoneOptions) Option { return func(o *options) { o.zone = z } }

// WithForwardTimeout bounds one exchange with one forwarder
// (DefaultForwardTimeout).
func WithForwardTimeout(d time.Duration) Option { return func(o *options) { o.forwardTimeout = d } }

// WithRateLimit configures response rate limiting of UDP answers (see
// RateLimit; the zero value takes the defaults).
func WithRateLimit(r RateLimit) Option { return func(o *options) { o.rateLimit = r } }

// WithMaxForwards bounds the queries being forwarded at once, in all and
// per forwarder (DefaultMaxForwards, DefaultMaxForwardsPerUpstream).
func WithMaxForwards(total, perUpstream int) Option {
	return func(o *options) { o.maxForwards, o.maxPerUpstream = total, perUpstream }
}

// WithUDPSockets sets how many UDP sockets (each with its own read loop)
// are opened per listen address (default: one per CPU, GOMAXPROCS).
func WithUDPSockets(n int) Option { return func(o *options) { o.udpSockets = n } }

// WithShutdownTimeout bounds the wait for queries in flight at shutdown
// (DefaultShutdownTimeout).
func WithShutdownTimeout(d time.Duration) Option {
	return func(o *options) { o.shutdownTimeout = d }
}

// WithReloadHook calls f after every load of the pool, successful or not
// (from the Serve goroutine; f must not block).
func WithReloadHook(f func(Reload)) Option { return func(o *options) { o.onReload = f } }

// Server is a DNS server for the pool that any member can run. It follows
// the pool's change counter and reloads its zones when it moves; queries
// are answered from memory (see Handler).
type Server struct {
	src    Source
	o      options
	h      *Handler
	ready  chan struct{}
	addrs  []net.Addr
	served atomic.Bool
}

// NewServer returns a server reading the pool from src.
func NewServer(src Source, opts ...Option) *Server {
	s := &Server{src: src, ready: make(chan struct{})}
	for _, f := range opts {
		f(&s.o)
	}
	if s.o.log == nil {
		s.o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.o.shutdownTimeout <= 0 {
		s.o.shutdownTimeout = DefaultShutdownTimeout
	}
	if len(s.o.listen) == 0 && len(s.o.packetConns) == 0 && len(s.o.listeners) == 0 {
		s.o.listen = []string{DefaultListen}
	}
	s.h = NewHandler(HandlerOptions{Logger: s.o.log, ForwardTimeout: s.o.forwardTimeout, RateLimit: s.o.rateLimit,
		MaxForwards: s.o.maxForwards, MaxForwardsPerUpstream: s.o.maxPerUpstream})
	return s
}

// Handler returns the server's handler (to mount it in another
// miekg/dns server as well).
func (s *Server) Handler() *Handler { return s.h }

// Ready is closed once the server has loaded the pool and listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the local addresses served on (valid after Ready).
func (s *Server) Addrs() []net.Addr {
	select {
	case <-s.ready:
		return append([]net.Addr(nil), s.addrs...)
	default:
		return nil
	}
}

// Serve loads the pool, listens, and answers queries until ctx ends; then
// it stops listening, waits (bounded) for the queries in flight and
// returns ctx's error. A failure to load the pool at start, to listen, or
// of a listener later is returned as well. Later reload failures keep the
// previous data and are logged and reported to the reload hook. A Server
// serves once: a second call returns an error.
func (s *Server) Serve(ctx context.Context) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("dns: Serve called twice")
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := s.src.Watch(wctx, s.o.interval)
	var v int64
	select {
	case <-ctx.Done():
		s.closeInjected()
		return ctx.Err()
	case first, ok := <-feed:
		if !ok {
			s.closeInjected()
			return fmt.Errorf("dns: pool change feed closed: %w", context.Cause(ctx))
		}
		v = first
	}
	ls, err := s.listen()
	if err != nil {
		return err
	}
	if err := s.reload(ctx, v); err != nil {
		ls.close()
		return err
	}
	errc := make(chan error, len(ls.servers)+len(ls.udp))
	if err := s.start(ls, errc); err != nil {
		return err
	}
	close(s.ready)
	s.o.log.Info("dns: serving", "addrs", fmt.Sprint(s.addrs), "udp_sockets", len(ls.udp), "version", s.h.Version())
	for {
		select {
		case <-ctx.Done():
			s.shutdown(ls)
			return ctx.Err()
		case err := <-errc:
			s.shutdown(ls)
			if err == nil {
				err = errors.New("listener closed")
			}
			return fmt.Errorf("dns: serving: %w", err)
		case v, ok := <-feed:
			if !ok {
				feed = nil
				continue
			}
			if v == s.h.Version() {
				continue
			}
			if err := s.reload(ctx, v); err != nil && ctx.Err() == nil {
				s.o.log.Error("dns: reloading the pool; still serving the previous data", "version", s.h.Version(), "err", err)
			}
		}
	}
}

// start starts the read loops of the UDP sockets and the miekg/dns
// servers (TCP, and packet conns that are not UDP sockets), and waits
// until the latter have started.
func (s *Server) start(ls *listeners, errc chan error) error {
	for _, c := range ls.udp {
		ls.loops.Add(1)
		go func() {
			defer ls.loops.Done()
			errc <- s.h.ServeUDP(c)
		}()
	}
	started := make(chan struct{}, len(ls.servers))
	for _, srv := range ls.servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { errc <- srv.ActivateAndServe() }()
	}
	for range ls.servers {
		select {
		case <-started:
		case err := <-errc:
			s.shutdown(ls)
			return fmt.Errorf("dns: starting to serve: %w", err)
		}
	}
	return nil
}

// reload reads the pool (at version v or later, see Load) and replaces
// the handler's data.
func (s *Server) reload(ctx context.Context, v int64) (err error) {
	var zs *Zones
	defer func() {
		r := Reload{Version: v, Err: err}
		if zs != nil {
			r.Zones = len(zs.List)
			for _, z := range zs.List {
				r.Records += len(z.Records)
			}
		}
		if s.o.onReload != nil {
			s.o.onReload(r)
		}
	}()
	st, v, err := Load(ctx, s.src)
	if err != nil {
		return err
	}
	fwd, err := ParseForwarders(st.Site[siteschema.Forwarders])
	if err != nil {
		return err
	}
	fwd = s.dropLocal(fwd)
	fwd = s.dropMembers(fwd, memberAddrs(st))
	allow, err := AllowList(st)
	if err != nil {
		return err
	}
	if zs, err = BuildZones(st, uint32(v), s.o.zone); err != nil {
		return err
	}
	s.h.Update(Data{Zones: zs, Forwarders: fwd, Allow: allow, Version: v})
	s.o.log.Debug("dns: loaded the pool", "version", v, "zones", len(zs.List), "forwarders", fmt.Sprint(fwd))
	return nil
}

// dropLocal removes forwarders that are this server itself: forwarding to
// them would loop.
func (s *Server) dropLocal(fwd []netip.AddrPort) []netip.AddrPort {
	var local []netip.AddrPort
	for _, a := range s.addrs {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			local = append(local, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	for _, l := range s.o.listen {
		if ap, err := netip.ParseAddrPort(l); err == nil {
			local = append(local, ap)
		}
	}
	var out []netip.AddrPort
next:
	for _, f := range fwd {
		for _, l := range local {
			if l.Port() == f.Port() && (l.Addr() == f.Addr() || l.Addr().IsUnspecified() && isLocalAddr(f.Addr())) {
				s.o.log.Warn("dns: ignoring a forwarder that is this server (it would loop)", "forwarder", f)
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}

// dropMembers removes forwarders that are pool members (any address of
// any member, on any network): every pool server forwards to
// site.forwarders, so forwarding to a member would only come back.
func (s *Server) dropMembers(fwd []netip.AddrPort, members map[netip.Addr]bool) []netip.AddrPort {
	out := fwd[:0:0]
	for _, f := range fwd {
		if members[f.Addr().Unmap()] {
			s.o.log.Warn("dns: ignoring a forwarder that is a pool member (it would loop)", "forwarder", f)
			continue
		}
		out = append(out, f)
	}
	return out
}

func isLocalAddr(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// listeners are the sockets a Server serves on.
type listeners struct {
	servers []*mdns.Server // TCP, and packet conns that are not UDP sockets
	udp     []*net.UDPConn // served by Handler.ServeUDP
	loops   sync.WaitGroup
}

func (ls *listeners) close() {
	for _, srv := range ls.servers {
		if srv.PacketConn != nil {
			srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			srv.Listener.Close()
		}
	}
	for _, c := range ls.udp {
		c.Close()
	}
}

// listen opens the configured addresses: per address, one UDP socket
// per CPU (SO_REUSEPORT, so that the kernel spreads the queries over
// them) and one TCP listener on the same port.
func (s *Server) listen() (*listeners, error) {
	ls := &listeners{}
	fail := func(err error) (*listeners, error) {
		ls.close()
		s.closeInjected()
		return nil, err
	}
	for _, pc := range s.o.packetConns {
		if u, ok := pc.(*net.UDPConn); ok {
			ls.udp = append(ls.udp, u)
			continue
		}
		ls.servers = append(ls.servers, &mdns.Server{PacketConn: pc, Handler: s.h, UDPSize: DefaultUDPSize})
	}
	for _, l := range s.o.listeners {
		ls.servers = append(ls.servers, &mdns.Server{Listener: l, Handler: s.h})
	}
	s.o.packetConns, s.o.listeners = nil, nil
	sockets := s.o.udpSockets
	if sockets <= 0 {
		sockets = runtime.GOMAXPROCS(0)
	}
	for _, addr := range s.o.listen {
		conns, err := listenUDP(addr, sockets)
		if err != nil {
			return fail(fmt.Errorf("dns: listening on udp %s: %w", addr, err))
		}
		for _, c := range conns {
			// Bursts (a rack booting) overflow the default buffer;
			// the kernel caps this at net.core.rmem_max.
			_ = c.SetReadBuffer(UDPReadBuffer)
			_ = c.SetWriteBuffer(UDPReadBuffer)
		}
		ls.udp = append(ls.udp, conns...)
		// Port 0: TCP on the port UDP got.
		host, _, _ := net.SplitHostPort(addr)
		_, port, _ := net.SplitHostPort(conns[0].LocalAddr().String())
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fail(fmt.Errorf("dns: listening on tcp %s: %w", addr, err))
		}
		ls.servers = append(ls.servers, &mdns.Server{Listener: l, Handler: s.h})
	}
	seen := map[string]bool{}
	addAddr := func(a net.Addr) {
		if k := a.Network() + " " + a.String(); !seen[k] {
			seen[k] = true
			s.addrs = append(s.addrs, a)
		}
	}
	for _, c := range ls.udp {
		addAddr(c.LocalAddr())
	}
	for _, srv := range ls.servers {
		if srv.PacketConn != nil {
			addAddr(srv.PacketConn.LocalAddr())
		} else {
			addAddr(srv.Listener.Addr())
		}
	}
	return ls, nil
}

func (s *Server) closeInjected() {
	for _, pc := range s.o.packetConns {
		pc.Close()
	}
	for _, l := range s.o.listeners {
		l.Close()
	}
}

// shutdown closes the UDP sockets and stops the miekg/dns servers, then
// waits (bounded) for the queries in flight.
func (s *Server) shutdown(ls *listeners) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.shutdownTimeout)
	defer cancel()
	for _, c := range ls.udp {
		c.Close()
	}
	for _, srv := range ls.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			s.o.log.Warn("dns: shutting down a listener", "addr", fmt.Sprint(s.addrs), "err", err)
		}
	}
	done := make(chan struct{})
	go func() { ls.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.o.log.Warn("dns: forwarded queries still in flight at shutdown", "addr", fmt.Sprint(s.addrs))
	}
}
