package dispatch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mnpool/mnpool/noderange"
)

// RelayVersion is the version of the relay protocol: one JSON
// relayRequest on the relay's stdin, JSON frames (one per line) on its
// stdout.
const RelayVersion = 1

// maxRelayRequest bounds the request a relay reads (a script and tens of
// thousands of targets fit easily).
const maxRelayRequest = 64 << 20

type relayRequest struct {
	Version int      `json:"version"`
	Request Request  `json:"request"`
	Targets []Target `json:"targets"`
	// Via are the hops left after the member that reads this.
	Via []Target `json:"via,omitempty"`
}

// Output travels as bytes (base64 in JSON), so output that is not UTF-8
// crosses a relay unchanged.
type outFrame struct {
	Node   string `json:"node"`
	Stderr bool   `json:"stderr,omitempty"`
	Line   []byte `json:"line"`
}

type wireResult struct {
	Node      string  `json:"node"`
	Kind      Kind    `json:"kind"`
	Stdout    []byte  `json:"stdout,omitempty"`
	Stderr    []byte  `json:"stderr,omitempty"`
	ExitCode  int     `json:"exit_code"`
	Error     string  `json:"error,omitempty"`
	ErrorKind string  `json:"error_kind,omitempty"`
	Seconds   float64 `json:"seconds"`
}

func toWire(r Result) *wireResult {
	w := &wireResult{Node: r.Node, Kind: r.Kind, Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode, Seconds: r.Elapsed.Seconds()}
	if r.Err != nil {
		w.Error, w.ErrorKind = message(r.Err), errKind(r.Err)
	}
	return w
}

func (w *wireResult) result(via string) Result {
	r := Result{Node: w.Node, Kind: w.Kind, Via: via, Stdout: w.Stdout, Stderr: w.Stderr, ExitCode: w.ExitCode,
		Elapsed: time.Duration(w.Seconds * float64(time.Second))}
	if w.Error != "" {
		r.Err = remoteErr(w.Error, kindErr(w.ErrorKind))
	}
	return r
}

type frame struct {
	Out    *outFrame   `json:"out,omitempty"`
	Result *wireResult `json:"result,omitempty"`
	End    *Summary    `json:"end,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// relay sends g to its first member and delivers the results it streams
// back.
func (r *Runner) relay(ctx context.Context, req Request, g RelayGroup, out *sink) {
	member := g.Via[0]
	body, err := json.Marshal(relayRequest{Version: RelayVersion, Request: req, Targets: g.Targets, Via: g.Via[1:]})
	if err != nil {
		r.failAll(g.Targets, member.Name, errorf(ErrRelay, "encoding the request for %s: %v", member.Name, err), out)
		return
	}
	cmd := r.RelayCommand
	if cmd == "" {
		cmd = DefaultRelayCommand
	}
	r.log().Debug("xdsh: relaying", "member", member.Name, "addr", member.Addr, "targets", len(g.Targets))
	pr, pw := io.Pipe()
	seen := make(map[string]bool, len(g.Targets))
	var remoteErr string
	var wg sync.WaitGroup
	wg.Go(func() {
		remoteErr = readFrames(pr, member.Name, seen, out)
		io.Copy(io.Discard, pr)
	})
	stderr := &limitedBuffer{n: 4096}
	code, err := r.Transport.Exec(ctx, Exec{Target: member, Command: cmd, Stdin: body, Stdout: pw, Stderr: stderr, ConnectTimeout: req.ConnectTimeout})
	pw.Close()
	wg.Wait()
	if len(seen) == len(g.Targets) {
		return
	}
	why := relayFailure(member.Name, code, err, remoteErr, stderr.String())
	if len(seen) == 0 && err != nil && !r.NoFallback && (errors.Is(err, ErrConnect) || errors.Is(err, ErrHostKey)) && ctx.Err() == nil {
		r.log().Warn("xdsh: member unreachable, running its targets from here", "member", member.Name, "err", err)
		r.direct(ctx, req, g.Targets, "", out)
		return
	}
	var left []Target
	for _, t := range g.Targets {
		if !seen[t.Name] {
			left = append(left, t)
		}
	}
	r.failAll(left, member.Name, why, out)
}

func relayFailure(member string, code int, err error, remoteErr, stderr string) error {
	stderr = strings.TrimSpace(stderr)
	switch {
	case remoteErr != "":
		return errorf(ErrRelay, "member %s refused the request: %s", member, remoteErr)
	case err != nil:
		return errorf(ErrRelay, "through member %s: %w", member, err)
	case stderr != "":
		return errorf(ErrRelay, "member %s ended (exit status %d) without a result: %s", member, code, stderr)
	default:
		return errorf(ErrRelay, "member %s ended (exit status %d) without a result", member, code)
	}
}

func (r *Runner) failAll(targets []Target, via string, err error, out *sink) {
	for _, t := range targets {
		out.done(Result{Node: t.Name, Kind: t.Kind, Via: via, ExitCode: -1, Err: err})
	}
}

// readFrames delivers the frames of one relay; it returns the relay's
// refusal message, if any.
func readFrames(rd io.Reader, via string, seen map[string]bool, out *sink) string {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var f frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return fmt.Sprintf("unreadable frame: %v", err)
		}
		switch {
		case f.Error != "":
			return f.Error
		case f.Out != nil:
			out.line(f.Out.Node, f.Out.Stderr, f.Out.Line)
		case f.Result != nil:
			if seen[f.Result.Node] {
				continue
			}
			seen[f.Result.Node] = true
			out.done(f.Result.result(via))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Sprintf("reading frames: %v", err)
	}
	return ""
}

// ServeRelay is a member's side of a relay: it reads one request from in,
// runs it with r (its targets directly, or through the remaining hops)
// and writes the frames to out. It returns an error when the request is
// refused (after telling the caller in a frame) or out fails.
func ServeRelay(ctx context.Context, in io.Reader, out io.Writer, r *Runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := bufio.NewWriter(out)
	var mu sync.Mutex
	var werr error
	send := func(f frame) {
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			return
		}
		b, err := json.Marshal(f)
		if err == nil {
			b = append(b, '\n')
			_, err = w.Write(b)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			werr = err
			cancel() // the caller is gone: stop
		}
	}
	rq, err := readRelayRequest(in)
	if err != nil {
		send(frame{Error: message(err)})
		return err
	}
	p := Plan{Direct: rq.Targets}
	if len(rq.Via) > 0 {
		p = Plan{Relays: []RelayGroup{{Via: rq.Via, Targets: rq.Targets}}}
	}
	h := Handlers{
		Output: func(node string, stderr bool, line []byte) {
			send(frame{Out: &outFrame{Node: node, Stderr: stderr, Line: line}})
		},
		Done: func(res Result) { send(frame{Result: toWire(res)}) },
	}
	s, err := r.Run(ctx, rq.Request, p, h)
	if err != nil {
		send(frame{Error: message(err)})
		return err
	}
	send(frame{End: &s})
	return werr
}

func readRelayRequest(in io.Reader) (relayRequest, error) {
	var rq relayRequest
	if err := json.NewDecoder(io.LimitReader(in, maxRelayRequest)).Decode(&rq); err != nil {
		return rq, errorf(ErrInvalid, "reading the relay request: %v", err)
	}
	if rq.Version != RelayVersion {
		return rq, errorf(ErrInvalid, "relay protocol version %d (this member speaks %d)", rq.Version, RelayVersion)
	}
	if len(rq.Targets) == 0 {
		return rq, errorf(ErrInvalid, "relay request without targets")
	}
	if err := rq.Request.Validate(); err != nil {
		return rq, err
	}
	for _, t := range append(append([]Target{}, rq.Targets...), rq.Via...) {
		if err := checkTarget(t); err != nil {
			return rq, err
		}
	}
	return rq, nil
}

// checkTarget validates a target received from another member.
func checkTarget(t Target) error {
	if err := noderange.ValidateName(t.Name); err != nil {
		return errorf(ErrInvalid, "target: %v", err)
	}
	if t.Kind != KindNode && t.Kind != KindMember {
		return errorf(ErrInvalid, "target %s kind %q (allowed: node, member)", t.Name, t.Kind)
	}
	if _, _, err := net.SplitHostPort(t.Addr); err != nil {
		return errorf(ErrInvalid, "target %s address %q (want HOST:PORT)", t.Name, t.Addr)
	}
	return nil
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
	n   int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - len(l.buf); room > 0 {
		l.buf = append(l.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
