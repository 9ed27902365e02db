package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// The escape sequence of the interactive client is conserver's: Ctrl-E,
// then c, then a command character. xCAT's rcons runs conserver's
// console(1), so xCAT users already type it.
const (
	EscapeChar   = 0x05 // Ctrl-E
	EscapePrefix = 'c'
)

// Escape commands (after ^Ec).
const (
	EscQuit = '.'
	EscHelp = '?'
)

// HelpText is printed for ^Ec?.
const HelpText = "[mnpool console escapes: ^Ec. disconnect   ^Ec? this help]"

// escaper finds ^Ec<cmd> in keyboard input. It keeps its state across
// reads, so a sequence split over several reads is recognised.
type escaper struct{ state int }

// feed returns the bytes to send to the console, the first command found
// (0 when none) and the input that follows it, to be fed again.
func (e *escaper) feed(in []byte) (out []byte, cmd byte, rest []byte) {
	for i, c := range in {
		switch e.state {
		case 0:
			if c == EscapeChar {
				e.state = 1
				continue
			}
			out = append(out, c)
		case 1:
			if c == EscapePrefix {
				e.state = 2
				continue
			}
			out = append(out, EscapeChar)
			if c == EscapeChar {
				continue // the second ^E may start a sequence
			}
			e.state = 0
			out = append(out, c)
		case 2:
			e.state = 0
			return out, c, in[i+1:]
		}
	}
	return out, 0, nil
}

// AttachOptions configure Attach.
type AttachOptions struct {
	// Addrs are brokers to try, in order (any member's broker will do;
	// the local member's first).
	Addrs []string
	Hello Hello
	// In is keyboard input (nil: none). Its end ends Attach.
	In io.Reader
	// Out receives console output.
	Out io.Writer
	// Notices receives the client's own messages (default Out). They are
	// lines "[mnpool: ...]" with "\r\n" endings, for a raw terminal.
	Notices io.Writer
	// Escape turns on ^Ec escape processing of In. Without it every
	// byte goes to the console and only the end of In leaves.
	Escape bool
	// Reconnect makes Attach reconnect (trying Addrs in order, with
	// backoff) when a connection ends other than by the user, for
	// example when the member holding the console dies.
	Reconnect bool
	// Dial dials brokers: ClientDialer with the user's certificate
	// (default ClientDialer(nil): Unix socket paths only).
	Dial DialFunc
	// MaxBackoff caps the wait between reconnection rounds (default 2 s).
	MaxBackoff time.Duration
	// OnConnect, when set, is called with each accepted reply.
	OnConnect func(addr string, r Reply)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var errQuit = errors.New("console: quit")

type attacher struct {
	o      AttachOptions
	out    io.Writer
	notes  io.Writer
	inCh   chan []byte
	esc    escaper
	ctx    context.Context
	closed bool // input ended
}

// Attach connects to a node's console through the brokers in o.Addrs and
// copies console output to o.Out and o.In to the console (write mode),
// until the user leaves with ^Ec. (o.Escape), o.In ends, ctx ends, or a
// connection ends without o.Reconnect. It returns nil when the user left
// or input ended, ctx's error when ctx ended, and a *RejectError when a
// broker refused for good (unknown node, no console configured, ...).
// A read of o.In in progress when Attach returns is left to finish (a
// terminal cannot be interrupted); its bytes are dropped.
func Attach(ctx context.Context, o AttachOptions) error {
	if len(o.Addrs) == 0 {
		return fmt.Errorf("%w: no broker address to connect to", ErrInvalid)
	}
	if err := o.Hello.Validate(); err != nil {
		return err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	mu := &sync.Mutex{}
	a := &attacher{o: o, out: lockedWriter{mu, o.Out}, notes: lockedWriter{mu, o.Out}, ctx: ctx}
	if o.Notices != nil {
		a.notes = lockedWriter{mu, o.Notices}
	}
	if o.In != nil {
		a.inCh = make(chan []byte)
		go func() {
			defer close(a.inCh)
			for {
				buf := make([]byte, 1024)
				n, err := o.In.Read(buf)
				if n > 0 {
					select {
					case a.inCh <- buf[:n]:
					case <-ctx.Done():
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	err := a.loop()
	if errors.Is(err, errQuit) {
		return nil
	}
	return err
}

func (a *attacher) notice(msg string) { a.notes.Write(noticeBytes(msg)) }

// input processes one chunk of keyboard input: console bytes go to w
// (when not nil), escapes are handled. It returns errQuit when the user
// left.
func (a *attacher) input(b []byte, w io.Writer) error {
	for len(b) > 0 {
		var out []byte
		var cmd byte
		if a.o.Escape {
			out, cmd, b = a.esc.feed(b)
		} else {
			out, b = b, nil
		}
		if len(out) > 0 && w != nil && a.o.Hello.Mode == ModeWrite {
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		switch cmd {
		case 0:
		case EscQuit:
			a.notes.Write([]byte("\r\n[disconnected]\r\n"))
			return errQuit
		case EscHelp:
			a.notes.Write([]byte("\r\n" + HelpText + "\r\n"))
		default:
			a.notice(fmt.Sprintf("unknown escape ^Ec%c; ^Ec. disconnects, ^Ec? helps", cmd))
		}
	}
	return nil
}

// wait waits for d while still honouring escapes typed meanwhile.
func (a *attacher) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case <-t.C:
			return nil
		case b, ok := <-a.in():
			if !ok {
				a.closed = true
				return errQuit
			}
			if err := a.input(b, nil); err != nil {
				return err
			}
		}
	}
}

// in is the input channel, nil (never ready) once input ended.
func (a *attacher) in() <-chan []byte {
	if a.closed {
		return nil
	}
	return a.inCh
}

type dialResult struct {
	conn  net.Conn
	reply Reply
	addr  string
	err   error
}

// connect tries every address once, in order, and returns the first
// accepted connection; escapes typed while it waits are honoured.
func (a *attacher) connect() (net.Conn, Reply, error) {
	var last error
	for _, addr := range a.o.Addrs {
		dctx, cancel := context.WithCancel(a.ctx)
		ch := make(chan dialResult, 1)
		go func() {
			c, r, err := Dial(dctx, a.o.Dial, addr, a.o.Hello, func(n string) { a.notice(n) })
			ch <- dialResult{c, r, addr, err}
		}()
		var res dialResult
	wait:
		for {
			select {
			case res = <-ch:
				break wait
			case b, ok := <-a.in():
				var err error
				if !ok {
					a.closed, err = true, errQuit
				} else {
					err = a.input(b, nil)
				}
				if err != nil {
					cancel()
					if r := <-ch; r.conn != nil {
						r.conn.Close()
					}
					return nil, Reply{}, err
				}
			}
		}
		cancel()
		if res.err == nil {
			if a.o.OnConnect != nil {
				a.o.OnConnect(addr, res.reply)
			}
			return res.conn, res.reply, nil
		}
		if a.ctx.Err() != nil {
			return nil, Reply{}, a.ctx.Err()
		}
		var re *RejectError
		if errors.As(res.err, &re) && !re.Retryable() {
			return nil, Reply{}, res.err
		}
		last = res.err
	}
	return nil, Reply{}, last
}

func (a *attacher) loop() error {
	backoff := 100 * time.Millisecond
	first := true
	for {
		conn, reply, err := a.connect()
		if err != nil {
			var re *RejectError
			if errors.Is(err, errQuit) || a.ctx.Err() != nil || errors.As(err, &re) && !re.Retryable() || !a.o.Reconnect {
				return err
			}
			if first {
				a.notice(fmt.Sprintf("cannot reach a console broker (%v); retrying", err))
				first = false
			}
			if err := a.wait(backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, a.o.MaxBackoff)
			continue
		}
		first = true
		backoff = 100 * time.Millisecond
		msg := fmt.Sprintf("%s: console served by %s (lease %d), %s", reply.Node, reply.Server, reply.Token, reply.Mode)
		if reply.Mode == ModeWatch && reply.Writer != "" {
			msg += "; " + reply.Writer + " writes"
		}
		a.notice(msg)
		err = a.session(conn)
		if errors.Is(err, errQuit) || a.ctx.Err() != nil {
			return err
		}
		if !a.o.Reconnect {
			return nil
		}
		a.notice("connection lost; reconnecting")
	}
}

// session relays one connection until it ends.
func (a *attacher) session(conn net.Conn) error {
	defer conn.Close()
	readDone := make(chan struct{})
	go func() {
		io.Copy(a.out, conn)
		close(readDone)
	}()
	stop := context.AfterFunc(a.ctx, func() { conn.Close() })
	defer stop()
	for {
		select {
		case <-a.ctx.Done():
			conn.Close()
			<-readDone
			return a.ctx.Err()
		case <-readDone:
			return nil
		case b, ok := <-a.in():
			if !ok {
				a.closed = true
				conn.Close()
				<-readDone
				return errQuit
			}
			if err := a.input(b, conn); err != nil {
				conn.Close()
				<-readDone
				if errors.Is(err, errQuit) {
					return err
				}
				return nil // the write failed: the connection is gone
			}
		}
	}
}

// Interact runs Attach for a person at a terminal: when in is a terminal
// it is switched to raw mode for the session (so keys go to the console
// as typed) and restored when Attach returns, whatever the outcome.
// o.In is set to in; escapes are on.
func Interact(ctx context.Context, in *os.File, o AttachOptions) error {
	o.In, o.Escape = in, true
	if in != nil && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("console: setting the terminal to raw mode: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
	}
	notes := o.Notices
	if notes == nil {
		notes = o.Out
	}
	if notes != nil {
		io.WriteString(notes, "[Enter `^Ec?' for help]\r\n")
	}
	return Attach(ctx, o)
}
