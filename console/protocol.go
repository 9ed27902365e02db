package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/mnpool/mnpool/pool"
)

// The broker protocol (between a client and a broker, and between
// brokers) is TCP:
//
//  1. The client sends one line of JSON, the Hello, ending in "\n".
//  2. The broker answers with lines of JSON: zero or more notices
//     {"notice":"..."} while it works (for example while it waits for a
//     dead holder's lease to expire), then one final Reply with "ok"
//     true, or "ok" false and an "error" (and a "code").
//  3. After an ok reply the connection carries raw console bytes both
//     ways: console output to the client (first the node's recent output,
//     so a new watcher sees the last screen), and, from the client holding
//     write access, keyboard input to the console. Input from a watcher
//     is discarded. The broker adds its own messages to the output stream
//     as lines "[mnpool: ...]".
//
// A broker that does not hold the node's lease proxies: it sends the same
// Hello with Hops+1 to the member that does (or should) and relays the
// replies and the bytes.

// Mode is what a client asks for.
type Mode string

// Client modes.
const (
	ModeWatch Mode = "watch"
	ModeWrite Mode = "write"
)

// Reply codes of refusals. Clients retry after CodeUnavailable and
// CodeHops, and give up on the others.
const (
	CodeBadRequest  = "bad-request"
	CodeForbidden   = "forbidden"
	CodeNotFound    = "not-found"
	CodeNoServer    = "no-server"
	CodeUnavailable = "unavailable"
	CodeHops        = "hops"
)

// Protocol limits.
const (
	MaxLine = 4096
	// MaxHops bounds proxying: a request that reached its MaxHops-th
	// broker is served there or refused with CodeHops.
	MaxHops = 3
)

// Hello is the first line a client sends.
type Hello struct {
	Node string `json:"node"`
	Mode Mode   `json:"mode"`
	// Force takes write access from the current writer, who becomes a
	// watcher (conserver's "force attach").
	Force bool `json:"force,omitempty"`
	// User is empty or the name the connection authenticated as (a
	// certificate's user, or the local user of a Unix socket peer);
	// any other name is refused. Brokers set it to the authenticated
	// user when they proxy for that user.
	User string `json:"user,omitempty"`
	// Hops counts the brokers the request went through.
	Hops int `json:"hops,omitempty"`
}

// Validate checks a hello.
func (h Hello) Validate() error {
	if err := pool.ValidateName("node", h.Node); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if h.Mode != ModeWatch && h.Mode != ModeWrite {
		return fmt.Errorf("%w: mode %q: want watch or write", ErrInvalid, h.Mode)
	}
	if h.Hops < 0 || h.Hops > MaxHops {
		return fmt.Errorf("%w: hops %d: want 0-%d", ErrInvalid, h.Hops, MaxHops)
	}
	if len(h.User) > 128 {
		return fmt.Errorf("%w: user name longer than 128 bytes", ErrInvalid)
	}
	for _, r := range h.User {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: user name %q contains a control character", ErrInvalid, h.User)
		}
	}
	return nil
}

// Reply is a line the broker sends before the console bytes.
type Reply struct {
	OK     bool   `json:"ok"`
	Notice string `json:"notice,omitempty"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
	Node   string `json:"node,omitempty"`
	// Server is the member holding the console; Token its lease token.
	Server string `json:"server,omitempty"`
	Token  int64  `json:"token,omitempty"`
	// Mode is the mode granted: write, or watch when another client
	// writes (named in Writer) and Force was not given.
	Mode   Mode   `json:"mode,omitempty"`
	Writer string `json:"writer,omitempty"`
}

func (r Reply) final() bool { return r.OK || r.Error != "" }

// RejectError is a broker's refusal (errors.Is ErrRejected).
type RejectError struct {
	Code string
	Msg  string
}

func (e *RejectError) Error() string { return "console: broker refused: " + e.Msg }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Retryable reports whether another attempt may succeed.
func (e *RejectError) Retryable() bool { return e.Code == CodeUnavailable || e.Code == CodeHops }

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readLine reads one line of at most MaxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		buf = append(buf, chunk...)
		if len(buf) > MaxLine {
			return nil, fmt.Errorf("%w: protocol line longer than %d bytes", ErrInvalid, MaxLine)
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

func decodeLine(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: bad protocol line %q: %v", ErrInvalid, truncateBytes(line, 200), err)
	}
	return nil
}

func truncateBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// DialFunc dials a TCP address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func defaultDial(timeout time.Duration) DialFunc {
	d := &net.Dialer{Timeout: timeout}
	return d.DialContext
}

// TLSDialer dials with base (a plain TCP dialer when nil) and runs the
// TLS handshake of cfg (pki.Credentials.ClientConfig) before returning.
func TLSDialer(base DialFunc, cfg *tls.Config) DialFunc {
	if base == nil {
		base = defaultDial(DefaultDialTimeout)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("console: TLS with %s: %w", addr, err)
		}
		return tc, nil
	}
}

// ClientDialer is a client's DialFunc: an address that is an absolute
// path is a broker's Unix socket (see ListenUnix); any other is
// HOST:PORT, dialled with TLS (cfg nil: TCP addresses are refused).
func ClientDialer(cfg *tls.Config) DialFunc {
	tlsDial := TLSDialer(nil, cfg)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "/") {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
		if cfg == nil {
			return nil, fmt.Errorf("%w: broker %s: a TCP broker needs a certificate (--cert/--key) or use the local socket", ErrNoCredentials, addr)
		}
		return tlsDial(ctx, network, addr)
	}
}

// bufConn is a connection whose first bytes were read into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Dial connects to the broker at addr with dial (nil: ClientDialer(nil),
// that is Unix socket paths only), sends h and reads the replies;
// notices go to notice (may be nil). On an ok reply it returns the
// connection, now carrying console bytes. A refusal is a *RejectError.
// The wait for the final reply is bounded only by ctx: a broker may take
// a lease TTL to answer while a dead holder's lease expires.
func Dial(ctx context.Context, dial DialFunc, addr string, h Hello, notice func(string)) (net.Conn, Reply, error) {
	if dial == nil {
		dial = ClientDialer(nil)
	}
	if err := h.Validate(); err != nil {
		return nil, Reply{}, err
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, Reply{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeLine(conn, h); err != nil {
		conn.Close()
		return nil, Reply{}, ctxErr(ctx, err)
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	for {
		line, err := readLine(br)
		if err != nil {
			conn.Close()
			return nil, Reply{}, ctxErr(ctx, fmt.Errorf("console: broker %s: %w", addr, err))
		}
		var r Reply
		if err := decodeLine(line, &r); err != nil {
			conn.Close()
			return nil, Reply{}, fmt.Errorf("console: broker %s: %w", addr, err)
		}
		if !r.final() {
			if notice != nil && r.Notice != "" {
				notice(r.Notice)
			}
			continue
		}
		if !r.OK {
			conn.Close()
			return nil, r, &RejectError{Code: r.Code, Msg: r.Error}
		}
		if !stop() {
			conn.Close()
			return nil, Reply{}, ctx.Err()
		}
		return &bufConn{Conn: conn, r: br}, r, nil
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
