package console

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
)

// Broker is the console broker one member runs. A user connects to any
// member's broker and asks for a node's console; the broker either holds
// the console itself (it holds, or can take, the node's console lease) or
// proxies to the member that does. See the package documentation for the
// protocol and the rules.
type Broker struct {
	store *pool.Store
	self  string
	o     options
	log   *slog.Logger

	leases    Leaser
	ownLeases *LeaseTable

	mu        sync.Mutex
	started   bool
	stopping  bool
	crashed   bool
	ctx       context.Context
	cancel    context.CancelFunc
	v         *view
	sessions  map[string]*session
	nodeLocks map[string]*sync.Mutex
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// view is what the broker knows of the pool, reloaded when the change
// counter moves.
type view struct {
	version int64
	st      *pool.State
	nodes   map[string]pool.Node
	specs   map[string]Spec
	acl     ACL
	aclErr  error
}

// NewBroker returns the broker of member self on store s. Run it with
// Serve.
func NewBroker(s *pool.Store, self string, opts ...Option) (*Broker, error) {
	if err := pool.ValidateName("member", self); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	b := &Broker{store: s, self: self, sessions: map[string]*session{}, nodeLocks: map[string]*sync.Mutex{}, conns: map[net.Conn]struct{}{}}
	for _, f := range opts {
		f(&b.o)
	}
	if err := b.o.setDefaults(); err != nil {
		return nil, err
	}
	b.log = b.o.log.With("member", self)
	return b, nil
}

// Self is the member this broker runs on.
func (b *Broker) Self() string { return b.self }

// ListenAndServe listens on addr (HOST:PORT) and serves.
func (b *Broker) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("console: broker listening on %s: %w", addr, err)
	}
	return b.Serve(ctx, ln)
}

// Serve accepts connections on lns until ctx ends, then closes every
// console it holds (releasing their leases, so the next member need not
// wait for the TTL), disconnects its clients and returns ctx's error.
// A *net.UnixListener (see ListenUnix) serves local administrators,
// authenticated by their peer credentials; every other listener carries
// TLS 1.3 and needs WithCredentials: clients and members authenticate
// with certificates of the pool CA. Serve may be called once.
func (b *Broker) Serve(ctx context.Context, lns ...net.Listener) error {
	if len(lns) == 0 {
		return fmt.Errorf("%w: Serve needs a listener", ErrInvalid)
	}
	lns = slices.Clone(lns)
	for i, ln := range lns {
		if _, ok := ln.(*net.UnixListener); ok {
			continue
		}
		cfg := b.serverTLS()
		if cfg == nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("%w: serving on %s needs this member's certificate (mnpool certs issue --member %s)", ErrNoCredentials, ln.Addr(), b.self)
		}
		lns[i] = tls.NewListener(ln, cfg)
	}
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return fmt.Errorf("%w: Serve called twice", ErrInvalid)
	}
	b.started = true
	ctx, cancel := context.WithCancel(ctx)
	b.ctx, b.cancel = ctx, cancel
	b.mu.Unlock()
	defer cancel()
	for _, ln := range lns {
		defer ln.Close()
	}

	if b.o.leaser == nil {
		lt, err := NewLeaseTable(b.store, b.self, b.o.ttl, b.log)
		if err != nil {
			return err
		}
		b.leases, b.ownLeases = lt, lt
	} else {
		b.leases = b.o.leaser
	}
	v, err := b.loadView(ctx)
	if err != nil {
		b.shutdown()
		return fmt.Errorf("console: loading the pool: %w", err)
	}
	b.mu.Lock()
	b.v = v
	b.mu.Unlock()
	b.wg.Add(1)
	go b.follow(ctx)
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		context.AfterFunc(ctx, func() { ln.Close() })
		b.log.Info("console: broker serving", "addr", ln.Addr().String())
		go func() { errs <- b.acceptLoop(ctx, ln) }()
	}
	var acceptErr error
	for range lns {
		if err := <-errs; err != nil && acceptErr == nil {
			acceptErr = err
			cancel()
		}
	}
	cancel()
	b.shutdown()
	if acceptErr != nil {
		return fmt.Errorf("console: accepting: %w", acceptErr)
	}
	return ctx.Err()
}

// serverTLS is the TCP listeners' TLS configuration (nil without
// credentials).
func (b *Broker) serverTLS() *tls.Config {
	if b.o.serverTLS == nil {
		return nil
	}
	return b.o.serverTLS()
}

// acceptLoop accepts on ln until ctx ends (nil) or accepting fails.
func (b *Broker) acceptLoop(ctx context.Context, ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		if !b.track(conn) {
			conn.Close()
			return nil
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.untrack(conn)
			b.handle(ctx, conn)
		}()
	}
}

// shutdown stops every session (releasing leases unless crashed), closes
// every connection and waits for the handlers.
func (b *Broker) shutdown() {
	b.mu.Lock()
	b.stopping = true
	crashed := b.crashed
	sessions := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		sessions = append(sessions, s)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stop("broker on "+b.self+" stopping", !crashed)
		}()
	}
	wg.Wait()
	// Clients of the stopped consoles get their last notice flushed and
	// their connection closed by their writers; wait a moment for that,
	// then close whatever is left.
	handlers := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(handlers)
	}()
	select {
	case <-handlers:
	case <-time.After(2 * time.Second):
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		<-handlers
	}
	if b.ownLeases != nil {
		if crashed {
			b.ownLeases.abandon()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := b.ownLeases.Close(ctx); err != nil {
				b.log.Warn("console: releasing leases", "err", err)
			}
			cancel()
		}
	}
	b.log.Info("console: broker stopped", "crashed", crashed)
}

// crash stops the broker as a process death would: leases are neither
// renewed nor released, connections and consoles are dropped.
func (b *Broker) crash() {
	b.mu.Lock()
	b.crashed = true
	cancel := b.cancel
	b.mu.Unlock()
	if b.ownLeases != nil {
		b.ownLeases.abandon()
	}
	if cancel != nil {
		cancel()
	}
}

func (b *Broker) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Broker) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

func (b *Broker) loadView(ctx context.Context) (*view, error) {
	ver, err := b.store.Version(ctx)
	if err != nil {
		return nil, err
	}
	st, err := b.store.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	specs, err := Specs(ctx, b.store)
	if err != nil {
		return nil, err
	}
	v := &view{version: ver, st: st, nodes: make(map[string]pool.Node, len(st.Nodes)), specs: make(map[string]Spec, len(specs))}
	for _, n := range st.Nodes {
		v.nodes[n.Name] = n
	}
	for _, sp := range specs {
		v.specs[sp.Node] = sp
	}
	v.acl, v.aclErr = ParseACL(st.Site[SiteACL])
	if v.aclErr != nil {
		// Fail closed: only root on this member's socket and members.
		b.log.Error("console: bad site."+SiteACL+"; only root on the Unix socket may use consoles until it is fixed", "err", v.aclErr)
		v.acl = ACL{set: true, users: map[string]Perm{}, groups: map[string]Perm{}}
	}
	return v, nil
}

func (b *Broker) view() *view {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

// follow reloads the view when the pool's change counter moves and closes
// consoles whose configuration changed or that this member may no longer
// serve (their clients reconnect and find the new server).
func (b *Broker) follow(ctx context.Context) {
	defer b.wg.Done()
	for ver := range b.store.Watch(ctx, b.o.watchEvery) {
		if ver == b.view().version {
			continue
		}
		for {
			v, err := b.loadView(ctx)
			if err == nil {
				b.mu.Lock()
				b.v = v
				sessions := make([]*session, 0, len(b.sessions))
				for _, s := range b.sessions {
					sessions = append(sessions, s)
				}
				b.mu.Unlock()
				for _, s := range sessions {
					if reason := b.stillServes(v, s); reason != "" {
						go s.stop(reason, true)
					}
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("console: reloading the pool", "err", err)
			if !sleepCtx(ctx, b.o.watchEvery) {
				return
			}
		}
	}
}

func (b *Broker) stillServes(v *view, s *session) string {
	n, ok := v.nodes[s.node]
	if !ok {
		return "node removed from the pool"
	}
	sp, ok := v.specs[s.node]
	if !ok {
		return "console configuration removed"
	}
	if sp.Kind != s.spec.Kind || sp.Address != s.spec.Address || !slices.Equal(sp.Argv, s.spec.Argv) {
		return "console configuration changed; reconnect"
	}
	if !slices.Contains(Allowed(v.st, n, sp), b.self) {
		return b.self + " may no longer serve this console; reconnect"
	}
	return ""
}

func (b *Broker) sessionOf(node string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[node]
}

func (b *Broker) dropSession(s *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions[s.node] == s {
		delete(b.sessions, s.node)
	}
}

func (b *Broker) nodeLock(node string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.nodeLocks[node]
	if l == nil {
		l = &sync.Mutex{}
		b.nodeLocks[node] = l
	}
	return l
}

// Consoles describes the consoles this broker holds now, by node.
func (b *Broker) Consoles() []Info {
	b.mu.Lock()
	sessions := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		sessions = append(sessions, s)
	}
	b.mu.Unlock()
	out := make([]Info, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// acquire takes node's lease and starts its session (or returns the
// session that exists).
func (b *Broker) acquire(ctx context.Context, node string, spec Spec) (*session, error) {
	lk := b.nodeLock(node)
	lk.Lock()
	defer lk.Unlock()
	if s := b.sessionOf(node); s != nil {
		return s, nil
	}
	l, err := b.leases.TryAcquire(ctx, node)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		l.Release(context.WithoutCancel(ctx))
		return nil, ErrClosed
	}
	s := b.newSession(node, spec, l)
	b.sessions[node] = s
	b.mu.Unlock()
	s.start()
	return s, nil
}

func (b *Broker) send(conn net.Conn, r Reply) error {
	conn.SetWriteDeadline(time.Now().Add(b.o.writeTimeout))
	defer conn.SetWriteDeadline(time.Time{})
	return writeLine(conn, r)
}

func (b *Broker) refuse(conn net.Conn, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.log.Debug("console: refusing", "code", code, "reason", msg, "peer", conn.RemoteAddr().String())
	b.send(conn, Reply{Code: code, Error: msg})
}

func (b *Broker) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	p, authErr := b.authenticate(ctx, conn)
	if errors.Is(authErr, errHandshake) {
		b.log.Warn("console: peer refused", "peer", p.addr, "err", authErr)
		return // no TLS: nothing can be said
	}
	// The hello is read before a refusal, so the client, which writes it
	// first, reads the refusal rather than a reset connection.
	conn.SetReadDeadline(time.Now().Add(b.o.helloTimeout))
	br := bufio.NewReaderSize(conn, 4096)
	line, err := readLine(br)
	if authErr != nil {
		b.log.Warn("console: peer refused", "peer", p.addr, "err", authErr)
		b.refuse(conn, CodeForbidden, "%v", authErr)
		return
	}
	if err != nil {
		b.refuse(conn, CodeBadRequest, "reading hello: %v", err)
		return
	}
	var h Hello
	if err := decodeLine(line, &h); err != nil {
		b.refuse(conn, CodeBadRequest, "%v", err)
		return
	}
	if err := h.Validate(); err != nil {
		b.refuse(conn, CodeBadRequest, "%v", err)
		return
	}
	conn.SetReadDeadline(time.Time{})
	id, entry, code, err := b.authorize(p, &h)
	if err != nil {
		b.log.Warn("console: request refused", "peer", p.addr, "identity", p.id.String(), "node", h.Node, "mode", h.Mode, "force", h.Force, "err", err)
		b.refuse(conn, code, "%v", err)
		return
	}
	var audited *Identity
	if entry {
		audited = &id
	}
	b.serveRequest(ctx, conn, br, h, audited)
}

// pollEvery is how often a waiting request looks at a held lease again.
func (b *Broker) pollEvery() time.Duration {
	return min(max(b.o.ttl/6, 20*time.Millisecond), time.Second)
}

type proxyResult int

const (
	proxyDone        proxyResult = iota // the request was served (or refused for good) upstream
	proxyUnreachable                    // the member's broker did not answer
	proxyRetry                          // the member refused for now
)

// serveRequest finds who serves h.Node and attaches conn to it: the
// session here, the holder's broker (proxy), or, when nobody usable holds
// the lease, the first usable allowed member, which takes the lease
// (waiting until a dead holder's lease is stale).
//
// id is the authenticated user when this broker is where the user
// connected (the attach is logged and audited here), nil when a member
// proxies for its own user.
func (b *Broker) serveRequest(ctx context.Context, conn net.Conn, r io.Reader, h Hello, id *Identity) {
	deadline := time.Now().Add(b.o.waitLimit)
	q := &request{b: b, conn: conn, r: r, h: h, id: id, canProxy: h.Hops+1 < MaxHops, unreachable: map[string]bool{}, told: map[string]bool{}}
	for {
		if ctx.Err() != nil {
			b.refuse(conn, CodeUnavailable, "the broker on %s is stopping", b.self)
			return
		}
		if time.Now().After(deadline) {
			b.refuse(conn, CodeUnavailable, "no member could open the console of %s within %s", h.Node, b.o.waitLimit)
			return
		}
		if s := b.sessionOf(h.Node); s != nil {
			if b.attachLocal(s, conn, r, h, id) {
				return
			}
			select {
			case <-s.done:
			case <-ctx.Done():
			}
			continue
		}
		spec, allowed, ok := q.lookup()
		if !ok {
			return
		}
		holders, err := b.leases.Holders(ctx, []string{h.Node})
		if err != nil {
			q.tell(fmt.Sprintf("cannot read the console lease of %s: %v; retrying", h.Node, err))
			sleepCtx(ctx, b.pollEvery())
			continue
		}
		switch q.viaHolder(ctx, holders[h.Node]) {
		case stepDone:
			return
		case stepAgain:
			continue
		}
		if q.takeOrPass(ctx, spec, allowed) == stepDone {
			return
		}
		sleepCtx(ctx, b.pollEvery())
	}
}

// request is one console request that serveRequest is serving, with what
// it has learnt across its attempts.
type request struct {
	b           *Broker
	conn        net.Conn
	r           io.Reader
	h           Hello
	id          *Identity
	canProxy    bool            // another hop is allowed
	unreachable map[string]bool // members whose broker did not answer, or dead
	told        map[string]bool // notices already sent
}

// step is what a step of serveRequest says to do next.
type step int

const (
	stepNext  step = iota // go on to the next step
	stepAgain             // start the next attempt now
	stepDone              // the request is served or refused
)

// tell sends msg to the client once.
func (q *request) tell(msg string) {
	if !q.told[msg] {
		q.told[msg] = true
		q.b.send(q.conn, Reply{Notice: msg})
	}
}

// lookup returns the node's console and the members allowed to serve it;
// ok is false when the request was refused (unknown node, no console, no
// member allowed).
func (q *request) lookup() (spec Spec, allowed []string, ok bool) {
	b, h := q.b, q.h
	v := b.view()
	node, ok := v.nodes[h.Node]
	if !ok {
		b.refuse(q.conn, CodeNotFound, "%s is not a node of the pool", h.Node)
		return Spec{}, nil, false
	}
	spec, ok = v.specs[h.Node]
	if !ok {
		b.refuse(q.conn, CodeNotFound, "node %s has no console configured (mnpool console set)", h.Node)
		return Spec{}, nil, false
	}
	allowed = Allowed(v.st, node, spec)
	if len(allowed) == 0 {
		list := node.ServiceNodes
		if len(spec.Servers) > 0 {
			list = spec.Servers
		}
		b.refuse(q.conn, CodeNoServer, "no member may serve the console of %s: none of %s is enabled and runs the console service", h.Node, strings.Join(list, ","))
		return Spec{}, nil, false
	}
	return spec, allowed, true
}

// viaHolder sends the request to the member holding the console lease,
// when another member holds it and may be reachable. stepNext: nobody
// usable holds it.
func (q *request) viaHolder(ctx context.Context, holder Holder) step {
	b, h := q.b, q.h
	if holder.Member == "" || holder.Member == b.self || q.unreachable[holder.Member] {
		return stepNext
	}
	if b.o.live.LiveState(holder.Member) == liveness.Dead {
		q.unreachable[holder.Member] = true
		return stepNext
	}
	if !q.canProxy {
		b.refuse(q.conn, CodeHops, "the console of %s is held by %s and this request went through %d brokers already", h.Node, holder.Member, h.Hops+1)
		return stepDone
	}
	switch b.proxy(ctx, q.conn, q.r, holder.Member, h, q.id) {
	case proxyDone:
		return stepDone
	case proxyUnreachable:
		q.unreachable[holder.Member] = true
		q.tell(fmt.Sprintf("%s holds the console of %s but its broker does not answer", holder.Member, h.Node))
	case proxyRetry:
		sleepCtx(ctx, b.pollEvery())
	}
	return stepAgain
}

// takeOrPass is for when nobody usable holds the lease: the first usable
// allowed member takes it, this broker itself or through a proxy.
// stepNext: try again after a pause.
func (q *request) takeOrPass(ctx context.Context, spec Spec, allowed []string) step {
	b, h := q.b, q.h
	skip := make([]string, 0, len(q.unreachable))
	for m := range q.unreachable {
		skip = append(skip, m)
	}
	cands := usable(allowed, b.o.live, skip...)
	tried := false
cands:
	for _, cand := range cands {
		if cand == b.self {
			tried = true
			if q.takeHere(ctx, spec) {
				return stepDone
			}
			break cands
		}
		if !q.canProxy {
			continue
		}
		tried = true
		switch b.proxy(ctx, q.conn, q.r, cand, h, q.id) {
		case proxyDone:
			return stepDone
		case proxyUnreachable:
			q.unreachable[cand] = true
			q.tell(fmt.Sprintf("%s should serve the console of %s but its broker does not answer", cand, h.Node))
			continue
		case proxyRetry:
			break cands
		}
	}
	if !tried && !q.canProxy {
		b.refuse(q.conn, CodeHops, "the console of %s must be served by %s and this request went through %d brokers already", h.Node, strings.Join(cands, " or "), h.Hops+1)
		return stepDone
	}
	if len(cands) == 0 {
		// Every allowed member is unreachable or dead: look again
		// from scratch after a pause, until the deadline.
		q.tell(fmt.Sprintf("no member allowed to serve the console of %s (%s) answers; retrying", h.Node, strings.Join(allowed, ",")))
		clear(q.unreachable)
	}
	return stepNext
}

// takeHere takes the console lease on this broker and attaches the
// client; false when it could not (the reason is told to the client).
func (q *request) takeHere(ctx context.Context, spec Spec) bool {
	b, h := q.b, q.h
	s, err := b.acquire(ctx, h.Node, spec)
	if err == nil {
		return b.attachLocal(s, q.conn, q.r, h, q.id)
	}
	if he, ok := isHeld(err); ok {
		q.tell(fmt.Sprintf("waiting for the console lease of %s held by %s (token %d) to expire; TTL %s", h.Node, he.Holder, he.Token, b.o.ttl))
	} else if !errors.Is(err, ErrClosed) {
		q.tell(fmt.Sprintf("cannot take the console lease of %s: %v", h.Node, err))
	}
	return false
}

// attachLocal attaches conn to s and relays until either side ends. It
// returns false when s has ended before conn could attach.
func (b *Broker) attachLocal(s *session, conn net.Conn, r io.Reader, h Hello, id *Identity) bool {
	c := newClient(conn, h.User, b.o.queue, b.o.writeTimeout)
	reply, ok := s.attach(c, h)
	if !ok {
		return false
	}
	b.attached(id, h, reply)
	go c.writeLoop()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.input(c, buf[:n])
		}
		if err != nil {
			break
		}
	}
	s.detach(c)
	c.close()
	return true
}

// addrOf returns a member's broker address.
func (b *Broker) addrOf(member string) (string, error) {
	if a, ok := b.o.addrs[member]; ok {
		return a, nil
	}
	return BrokerAddr(b.view().st, member)
}

// proxy forwards the request to member's broker and, once that broker
// accepts, relays bytes both ways until either side ends.
func (b *Broker) proxy(ctx context.Context, conn net.Conn, r io.Reader, member string, h Hello, id *Identity) proxyResult {
	addr, err := b.addrOf(member)
	if err != nil {
		b.log.Warn("console: no broker address", "member", member, "err", err)
		return proxyUnreachable
	}
	up := h
	up.Hops++
	if b.o.creds == nil {
		b.log.Warn("console: cannot proxy without this member's certificate", "member", member)
		return proxyUnreachable
	}
	uc, reply, err := Dial(ctx, TLSDialer(b.o.dial, b.o.creds().ClientConfig(member)), addr, up, func(n string) { b.send(conn, Reply{Notice: n}) })
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			if re.Retryable() {
				return proxyRetry
			}
			b.send(conn, reply)
			return proxyDone
		}
		b.log.Info("console: member's broker unreachable", "member", member, "addr", addr, "err", err)
		return proxyUnreachable
	}
	if !b.track(uc) {
		uc.Close()
		b.refuse(conn, CodeUnavailable, "the broker on %s is stopping", b.self)
		return proxyDone
	}
	defer b.untrack(uc)
	b.log.Debug("console: proxying", "node", h.Node, "to", member, "token", reply.Token)
	b.attached(id, h, reply)
	if err := b.send(conn, reply); err != nil {
		uc.Close()
		return proxyDone
	}
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		uc.Close()
	})
	defer stop()
	upDone := make(chan struct{})
	go func() {
		io.Copy(uc, r)
		uc.Close()
	}()
	go func() {
		io.Copy(conn, uc)
		close(upDone)
	}()
	<-upDone
	if ctx.Err() == nil {
		conn.SetWriteDeadline(time.Now().Add(b.o.writeTimeout))
		conn.Write(noticeBytes("connection to " + member + " lost"))
	}
	conn.Close()
	uc.Close()
	return proxyDone
}
