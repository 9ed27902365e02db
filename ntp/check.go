package ntp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	bntp "github.com/beevik/ntp"
)

// Check defaults.
const (
	// DefaultCheckTimeout bounds the wait for one server's answer.
	DefaultCheckTimeout = 2 * time.Second
	// DefaultCheckConcurrency is how many servers are asked at once.
	DefaultCheckConcurrency = 8
	// DefaultNTPPort is the port of a server given without one.
	DefaultNTPPort = 123
)

// CheckOptions tune Check; zero values take the defaults.
type CheckOptions struct {
	// Timeout per server (DefaultCheckTimeout; shortened to ctx's
	// deadline).
	Timeout time.Duration
	// Port of servers given without one (DefaultNTPPort).
	Port int
	// Concurrency is how many servers are asked at once.
	Concurrency int
	// Dialer opens the UDP connection to "host:port" (net.Dialer when
	// nil); tests and network namespaces inject one.
	Dialer func(ctx context.Context, address string) (net.Conn, error)
}

// Result is one server's answer.
type Result struct {
	// Server as given to Check.
	Server string
	// Stratum of the server (0 with a kiss-of-death).
	Stratum uint8
	// Offset is the server's clock minus the local clock.
	Offset time.Duration
	// RTT is the round trip of the query.
	RTT time.Duration
	// RootDistance is the server's estimate of its own error.
	RootDistance time.Duration
	// RefID names the server's reference (an address or a code such as
	// "LOCL").
	RefID string
	// Leap is the leap indicator (3: not synchronized).
	Leap uint8
	// KissCode is the kiss-of-death code ("RATE", "DENY", ...) when the
	// server sent one.
	KissCode string
	// Err is nil when the server answered with usable time; it wraps
	// ErrNoAnswer, ErrKissOfDeath, ErrUnsynchronized or ErrInvalid.
	Err error
}

// OK reports whether the server answered with usable time.
func (r Result) OK() bool { return r.Err == nil }

// MarshalJSON writes durations in seconds and the error as text.
func (r Result) MarshalJSON() ([]byte, error) {
	type out struct {
		Server       string  `json:"server"`
		OK           bool    `json:"ok"`
		Stratum      uint8   `json:"stratum"`
		Offset       float64 `json:"offset_s"`
		RTT          float64 `json:"rtt_s"`
		RootDistance float64 `json:"root_distance_s"`
		RefID        string  `json:"refid,omitempty"`
		Leap         uint8   `json:"leap"`
		KissCode     string  `json:"kiss_code,omitempty"`
		Err          string  `json:"error,omitempty"`
	}
	o := out{Server: r.Server, OK: r.OK(), Stratum: r.Stratum, Offset: r.Offset.Seconds(), RTT: r.RTT.Seconds(),
		RootDistance: r.RootDistance.Seconds(), RefID: r.RefID, Leap: r.Leap, KissCode: r.KissCode}
	if r.Err != nil {
		o.Err = r.Err.Error()
	}
	return json.Marshal(o)
}

// Check asks every server once for the time and returns one Result per
// server, in the order given; the servers are asked in parallel. A server
// is "host" or "host:port" ("[v6]:port"). Failures of single servers are
// in their Result; the error is only ctx's, when it ends first.
func Check(ctx context.Context, servers []string, o CheckOptions) ([]Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultCheckTimeout
	}
	if o.Port == 0 {
		o.Port = DefaultNTPPort
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultCheckConcurrency
	}
	if o.Dialer == nil {
		var d net.Dialer
		o.Dialer = func(ctx context.Context, address string) (net.Conn, error) { return d.DialContext(ctx, "udp", address) }
	}
	out := make([]Result, len(servers))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				out[i] = queryOne(ctx, s, o)
			case <-ctx.Done():
				out[i] = Result{Server: s, Err: ctx.Err()}
			}
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

// serverAddress validates s and adds the default port.
func serverAddress(s string, port int) (string, error) {
	if err := ValidateHost(s); err == nil {
		return net.JoinHostPort(s, strconv.Itoa(port)), nil
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%w: NTP server %q: want HOST or HOST:PORT", ErrInvalid, s)
	}
	if err := ValidateHost(host); err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: NTP server %q: port %q (want 1-65535)", ErrInvalid, s, p)
	}
	return s, nil
}

func queryOne(ctx context.Context, server string, o CheckOptions) Result {
	res := Result{Server: server}
	addr, err := serverAddress(server, o.Port)
	if err != nil {
		res.Err = err
		return res
	}
	timeout := o.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	var stop func() bool
	q := bntp.QueryOptions{
		Timeout: timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			c, err := o.Dialer(ctx, remote)
			if err == nil {
				// Cancelling ctx unblocks the read.
				stop = context.AfterFunc(ctx, func() { c.Close() })
			}
			return c, err
		},
	}
	r, err := bntp.QueryWithOptions(addr, q)
	if stop != nil {
		stop()
	}
	if err != nil {
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			return res
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			res.Err = fmt.Errorf("%w from %s within %v", ErrNoAnswer, server, timeout)
		case errors.Is(err, syscall.ECONNREFUSED):
			res.Err = fmt.Errorf("%w from %s: nothing listens on its NTP port (connection refused)", ErrNoAnswer, server)
		default:
			res.Err = fmt.Errorf("%w from %s: %v", ErrNoAnswer, server, err)
		}
		return res
	}
	res.Stratum, res.Offset, res.RTT, res.RootDistance = r.Stratum, r.ClockOffset, r.RTT, r.RootDistance
	res.RefID, res.Leap, res.KissCode = r.ReferenceString(), uint8(r.Leap), r.KissCode
	switch {
	case r.IsKissOfDeath():
		res.Err = fmt.Errorf("%w from %s: code %q", ErrKissOfDeath, server, r.KissCode)
	case r.Leap == bntp.LeapNotInSync || r.Stratum >= 16:
		res.Err = fmt.Errorf("%w: %s (stratum %d, leap indicator %d)", ErrUnsynchronized, server, r.Stratum, r.Leap)
	default:
		if verr := r.Validate(); verr != nil {
			res.Err = fmt.Errorf("%w: %s: %v", ErrUnsynchronized, server, verr)
		}
	}
	return res
}
