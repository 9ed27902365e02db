package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mnpool/mnpool/internal/ctxutil"
)

// client is one connection attached to a console held by this broker: a
// user's client, or another broker proxying for its users.
type client struct {
	conn net.Conn
	user string
	q    chan []byte // nil entry: close after flushing
	gone chan struct{}
	once sync.Once
	wt   time.Duration
}

func newClient(conn net.Conn, user string, queue int, wt time.Duration) *client {
	if user == "" {
		user = conn.RemoteAddr().String()
	}
	return &client{conn: conn, user: user, q: make(chan []byte, queue), gone: make(chan struct{}), wt: wt}
}

// offer queues b without blocking; false when the queue is full.
func (c *client) offer(b []byte) bool {
	select {
	case <-c.gone:
		return true
	default:
	}
	select {
	case c.q <- b:
		return true
	default:
		return false
	}
}

// finish closes the connection once what is queued has been written.
func (c *client) finish() {
	if !c.offer(nil) {
		c.close()
	}
}

func (c *client) close() {
	c.once.Do(func() {
		close(c.gone)
		c.conn.Close()
	})
}

// writeLoop writes queued output to the connection, several chunks per
// write when they have piled up.
func (c *client) writeLoop() {
	const maxBatch = 256 << 10
	for {
		var bufs net.Buffers
		var b []byte
		select {
		case <-c.gone:
			return
		case b = <-c.q:
		}
		size, last := 0, false
		for {
			if b == nil {
				last = true
				break
			}
			bufs = append(bufs, b)
			size += len(b)
			if size >= maxBatch {
				break
			}
			select {
			case b = <-c.q:
				continue
			default:
			}
			break
		}
		if len(bufs) > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(c.wt))
			if _, err := bufs.WriteTo(c.conn); err != nil {
				c.close()
				return
			}
		}
		if last {
			c.close()
			return
		}
	}
}

func noticeBytes(msg string) []byte { return []byte("\r\n[mnpool: " + msg + "]\r\n") }

// session is a console this broker holds: the lease, the endpoint
// connection (reopened while the lease lasts), the recent output and the
// attached clients.
type session struct {
	b        *Broker
	node     string
	spec     Spec
	lease    Lease
	ctx      context.Context
	cancel   context.CancelFunc
	loopDone chan struct{}
	done     chan struct{} // closed when stopped and removed

	mu      sync.Mutex
	ring    *ring
	clients map[*client]struct{}
	writer  *client
	ep      io.ReadWriteCloser
	opens   int
	closed  bool
	idleGen int

	epMu sync.Mutex // serializes writes to ep
}

func (b *Broker) newSession(node string, spec Spec, l Lease) *session {
	ctx, cancel := context.WithCancel(b.ctx)
	return &session{
		b: b, node: node, spec: spec, lease: l, ctx: ctx, cancel: cancel,
		loopDone: make(chan struct{}), done: make(chan struct{}),
		ring: newRing(b.o.recent), clients: map[*client]struct{}{},
	}
}

func (s *session) start() {
	s.b.log.Info("console: opening", "node", s.node, "endpoint", s.spec.Endpoint(), "token", s.lease.Token())
	go s.run()
	go func() {
		select {
		case <-s.lease.Done():
			reason := "console lease released"
			if err := s.lease.Err(); err != nil {
				reason = err.Error()
			}
			s.stop(reason, false)
		case <-s.ctx.Done():
		}
	}()
	s.mu.Lock()
	s.armIdle()
	s.mu.Unlock()
}

// run opens the endpoint and pumps its output while the session lasts,
// reopening it with backoff when it fails or closes.
func (s *session) run() {
	defer close(s.loopDone)
	const minBackoff, maxBackoff = 200 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	buf := make([]byte, 4096)
	for s.ctx.Err() == nil {
		select {
		case <-s.lease.Done():
			return // never open a console without the lease
		default:
		}
		ep, err := s.b.o.opener.Open(s.ctx, s.spec)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.b.log.Warn("console: cannot open", "node", s.node, "err", err)
			s.notice(fmt.Sprintf("cannot open the console of %s: %v; retrying in %s", s.node, err, backoff))
			if !sleepCtx(s.ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		s.mu.Lock()
		s.ep = ep
		s.opens++
		s.mu.Unlock()
		stop := context.AfterFunc(s.ctx, func() { ep.Close() })
		opened := time.Now()
		var rerr error
		for {
			n, err := ep.Read(buf)
			if n > 0 {
				s.output(buf[:n])
			}
			if err != nil {
				rerr = err
				break
			}
		}
		stop()
		s.mu.Lock()
		s.ep = nil
		s.mu.Unlock()
		s.epMu.Lock()
		ep.Close()
		s.epMu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		if time.Since(opened) > maxBackoff {
			backoff = minBackoff
		}
		if errors.Is(rerr, io.EOF) {
			rerr = errors.New("closed by the other end")
		}
		s.b.log.Info("console: endpoint closed", "node", s.node, "err", rerr)
		s.notice(fmt.Sprintf("console of %s closed (%v); reopening in %s", s.node, rerr, backoff))
		if !sleepCtx(s.ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// broadcast queues b for every client; s.mu must be held. Clients whose
// queue is full are removed and returned, to be closed by the caller
// without the lock.
func (s *session) broadcast(b []byte) []*client {
	var slow []*client
	for c := range s.clients {
		if !c.offer(b) {
			slow = append(slow, c)
			delete(s.clients, c)
			if s.writer == c {
				s.writer = nil
			}
		}
	}
	if len(slow) > 0 && len(s.clients) == 0 {
		s.armIdle()
	}
	return slow
}

func (s *session) dropSlow(slow []*client) {
	for _, c := range slow {
		s.b.log.Warn("console: disconnecting a slow client", "node", s.node, "client", c.user, "queue", cap(c.q))
		// Not on the console's output path: closing a TLS connection
		// may wait for its close_notify to be written.
		go c.close()
	}
}

func (s *session) output(p []byte) {
	chunk := bytes.Clone(p)
	s.mu.Lock()
	s.ring.Write(chunk)
	slow := s.broadcast(chunk)
	s.mu.Unlock()
	s.dropSlow(slow)
}

func (s *session) notice(msg string) {
	s.mu.Lock()
	slow := s.broadcast(noticeBytes(msg))
	s.mu.Unlock()
	s.dropSlow(slow)
}

// attach adds c with the mode h asks for and queues the reply line and
// the recent output. It returns false when the session has ended.
func (s *session) attach(c *client, h Hello) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Reply{}, false
	}
	r := Reply{OK: true, Node: s.node, Server: s.b.self, Token: s.lease.Token(), Mode: ModeWatch}
	if h.Mode == ModeWrite {
		switch {
		case s.writer == nil:
			s.writer, r.Mode = c, ModeWrite
		case h.Force:
			old := s.writer
			if !old.offer(noticeBytes(c.user + " took write access (force); you are watching now")) {
				delete(s.clients, old)
				go old.close()
			}
			s.writer, r.Mode = c, ModeWrite
		default:
			r.Writer = s.writer.user
		}
	}
	if s.writer != nil && s.writer != c {
		r.Writer = s.writer.user
	}
	line, _ := jsonLine(r)
	c.offer(line)
	if recent := s.ring.Bytes(); len(recent) > 0 {
		c.offer(recent)
	}
	if s.ep == nil && s.opens > 0 {
		c.offer(noticeBytes("the console of " + s.node + " is not connected now; reopening"))
	}
	s.clients[c] = struct{}{}
	s.idleGen++
	return r, true
}

func (s *session) detach(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c]; !ok {
		return
	}
	delete(s.clients, c)
	if s.writer == c {
		s.writer = nil
	}
	if len(s.clients) == 0 && !s.closed {
		s.armIdle()
	}
}

// input writes p to the console when c holds write access; input from
// watchers is discarded.
func (s *session) input(c *client, p []byte) {
	s.mu.Lock()
	w, ep := s.writer == c && !s.closed, s.ep
	s.mu.Unlock()
	if !w {
		return
	}
	if ep == nil {
		c.offer(noticeBytes("the console of " + s.node + " is not connected; input dropped"))
		return
	}
	s.epMu.Lock()
	defer s.epMu.Unlock()
	if d, ok := ep.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(time.Now().Add(s.b.o.writeTimeout))
	}
	if _, err := ep.Write(p); err != nil {
		s.b.log.Info("console: write to console failed", "node", s.node, "err", err)
	}
}

// armIdle schedules closing the session when nobody is attached for the
// idle time; s.mu must be held.
func (s *session) armIdle() {
	if s.b.o.idle < 0 {
		return
	}
	s.idleGen++
	gen := s.idleGen
	time.AfterFunc(s.b.o.idle, func() {
		s.stopIf(func() bool { return len(s.clients) == 0 && s.idleGen == gen }, "nobody attached", true)
	})
}

func (s *session) stop(reason string, release bool) { s.stopIf(nil, reason, release) }

// stopIf ends the session when cond (evaluated under s.mu) holds: the
// endpoint is closed first, then clients get the reason and are
// disconnected, then the lease is released (when release) and the session
// removed. A second call waits for the first to finish.
func (s *session) stopIf(cond func() bool, reason string, release bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if cond == nil {
			<-s.done
		}
		return
	}
	if cond != nil && !cond() {
		s.mu.Unlock()
		return
	}
	s.closed = true
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.clients, s.writer = map[*client]struct{}{}, nil
	s.mu.Unlock()

	s.cancel()
	<-s.loopDone // the endpoint is closed: no more console I/O from here
	s.b.log.Info("console: closed", "node", s.node, "token", s.lease.Token(), "reason", reason)
	for _, c := range clients {
		c.offer(noticeBytes("console of " + s.node + " closed on " + s.b.self + ": " + reason))
		c.finish()
	}
	if release {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.lease.Release(ctx); err != nil {
			s.b.log.Warn("console: releasing lease", "node", s.node, "err", err)
		}
		cancel()
	}
	s.b.dropSession(s)
	close(s.done)
}

// Info describes a console a broker holds.
type Info struct {
	Node      string `json:"node"`
	Token     int64  `json:"token"`
	Clients   int    `json:"clients"`
	Writer    string `json:"writer,omitempty"`
	Connected bool   `json:"connected"`
	// Opens counts successful opens of the endpoint by this holder.
	Opens int `json:"opens"`
}

func (s *session) info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := Info{Node: s.node, Token: s.lease.Token(), Clients: len(s.clients), Connected: s.ep != nil, Opens: s.opens}
	if s.writer != nil {
		i.Writer = s.writer.user
	}
	return i
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool { return ctxutil.Sleep(ctx, d) == nil }
