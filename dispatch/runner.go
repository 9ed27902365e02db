package dispatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Exec is one command on one target, as a Transport runs it.
type Exec struct {
	Target  Target
	User    string
	Command string
	// Stdin is what the command reads (nil: end of file at once).
	Stdin []byte
	// Stdout and Stderr receive the output as it arrives.
	Stdout, Stderr io.Writer
	// ConnectTimeout bounds reaching the target and logging in.
	ConnectTimeout time.Duration
}

// Transport runs commands on targets. Implementations must be safe for
// concurrent use and may keep connections open between calls until
// Close. SSH is the production transport; tests may use another.
type Transport interface {
	// Exec runs e and returns the command's exit status. The error is
	// non-nil when no exit status was obtained; it then wraps
	// ErrConnect, ErrHostKey or ErrTimeout where those apply.
	Exec(ctx context.Context, e Exec) (exitCode int, err error)
	// Close closes the connections kept open.
	Close() error
}

// Handlers receive a run's output. The Runner calls them one at a time
// (never concurrently), so they need no locking.
type Handlers struct {
	// Output gets each complete line (without its newline) as it
	// arrives, when Request.Stream is set.
	Output func(node string, stderr bool, line []byte)
	// Done gets each target's result when the target is finished.
	Done func(Result)
}

// Runner runs a Plan.
type Runner struct {
	// Transport reaches targets from here (required).
	Transport Transport
	// RelayCommand is the command that starts the relay on a member
	// (DefaultRelayCommand when empty). It reads the relay request on
	// stdin; see ServeRelay.
	RelayCommand string
	// NoFallback keeps targets of a member that cannot be reached at all
	// unrun (ErrRelay). By default they are run from here instead.
	NoFallback bool
	// Log gets one line per relay and per failed target (default: discard).
	Log *slog.Logger
}

// DefaultRelayCommand starts the relay on a member.
const DefaultRelayCommand = "mnpool xdsh-relay"

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Run runs req on every target of p and returns the counts. Results go
// to h.Done as targets finish; every target of the plan gets exactly one
// Result. Run returns an error only for an invalid request or plan
// (nothing was run then); failures of targets are in their Results.
func (r *Runner) Run(ctx context.Context, req Request, p Plan, h Handlers) (Summary, error) {
	start := time.Now()
	if err := req.Validate(); err != nil {
		return Summary{}, err
	}
	if r.Transport == nil {
		return Summary{}, errorf(ErrInvalid, "runner has no transport")
	}
	out := &sink{h: h}
	var wg sync.WaitGroup
	for _, res := range p.Failed {
		out.done(res)
	}
	for _, g := range p.Relays {
		wg.Go(func() { r.relay(ctx, req, g, out) })
	}
	r.direct(ctx, req, p.Direct, "", out)
	wg.Wait()
	s := out.summary
	s.Elapsed = time.Since(start)
	s.Seconds = s.Elapsed.Seconds()
	return s, nil
}

// sink serialises the handlers.
type sink struct {
	mu      sync.Mutex
	h       Handlers
	summary Summary
}

func (s *sink) done(res Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.summary.add(res)
	if s.h.Done != nil {
		s.h.Done(res)
	}
}

func (s *sink) line(node string, stderr bool, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h.Output != nil {
		s.h.Output(node, stderr, line)
	}
}

// direct runs targets from here with the request's fanout.
func (r *Runner) direct(ctx context.Context, req Request, targets []Target, via string, out *sink) {
	if len(targets) == 0 {
		return
	}
	work := make(chan Target)
	var wg sync.WaitGroup
	for range min(req.Fanout, len(targets)) {
		wg.Go(func() {
			for t := range work {
				res := r.one(ctx, req, t, out)
				res.Via = via
				out.done(res)
			}
		})
	}
	for _, t := range targets {
		work <- t
	}
	close(work)
	wg.Wait()
}

// one runs req on t.
func (r *Runner) one(ctx context.Context, req Request, t Target, out *sink) Result {
	start := time.Now()
	res := Result{Node: t.Name, Kind: t.Kind, ExitCode: -1}
	if err := ctx.Err(); err != nil {
		res.Err = errorf(ErrCanceled, "%s not run: %v", t.Name, err)
		return res
	}
	if req.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.CommandTimeout)
		defer cancel()
	}
	cmd, stdin := req.RemoteCommand()
	e := Exec{Target: t, User: req.User, Command: cmd, Stdin: stdin, ConnectTimeout: req.ConnectTimeout}
	var stdout, stderr bytes.Buffer
	var lo, le *lineWriter
	if req.Stream {
		lo = &lineWriter{fn: func(l []byte) { out.line(t.Name, false, l) }}
		le = &lineWriter{fn: func(l []byte) { out.line(t.Name, true, l) }}
		e.Stdout, e.Stderr = lo, le
	} else {
		e.Stdout, e.Stderr = &stdout, &stderr
	}
	code, err := r.Transport.Exec(ctx, e)
	if lo != nil {
		lo.flush()
		le.flush()
	}
	res.Elapsed = time.Since(start)
	if !req.Stream {
		res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	}
	if err != nil {
		if req.CommandTimeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, ErrTimeout) {
			err = errorf(ErrTimeout, "%s did not finish within %s: %v", t.Name, req.CommandTimeout, err)
		}
		res.Err = err
		r.log().Warn("xdsh: target failed", "node", t.Name, "addr", t.Addr, "err", err)
		return res
	}
	res.ExitCode = code
	return res
}

// lineWriter hands complete lines to fn.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func([]byte)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

// flush hands out a last line without a newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(w.buf)
		w.buf = nil
	}
}
