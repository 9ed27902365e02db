package nodecfg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mnpool/mnpool/pool"
)

// Target is a node to push to.
type Target struct {
	// Node is the node's name (for results and logs).
	Node string `json:"node"`
	// Addr is the node's address: an IP, or IP:port / [IPv6]:port.
	Addr string `json:"addr"`
}

// FileResult says whether one file changed on the node.
type FileResult struct {
	Kind    Kind `json:"kind"`
	Changed bool `json:"changed"`
}

// Result is the outcome of pushing to one node.
type Result struct {
	Node string `json:"node"`
	Addr string `json:"addr,omitempty"`
	// Changed reports whether any file on the node changed.
	Changed bool `json:"changed"`
	// Files are the files written (or found up to date), in push order,
	// up to the one that failed.
	Files []FileResult `json:"files,omitempty"`
	// Err is why the node failed; nil when every file is in place.
	Err     error         `json:"-"`
	Elapsed time.Duration `json:"-"`
}

// MarshalJSON adds the error text and the elapsed time in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	out := struct {
		plain
		Error     string `json:"error,omitempty"`
		ElapsedMS int64  `json:"elapsed_ms"`
	}{plain: plain(r), ElapsedMS: r.Elapsed.Milliseconds()}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return json.Marshal(out)
}

// Pusher writes files on one node. It must return when ctx ends, with an
// Err wrapping ErrTimeout, and must not panic on a failing node: every
// problem goes into the Result.
type Pusher interface {
	Push(ctx context.Context, t Target, files []File) Result
}

// Job is what is pushed to one node.
type Job struct {
	Target Target
	Files  []File
}

// Jobs renders the files of the named nodes from st with r. Nodes that
// cannot be rendered (no IP, no network, an unknown name) come back as
// failed Results instead of Jobs.
func Jobs(st *pool.State, r Renderer, names []string) ([]Job, []Result) {
	byName := make(map[string]int, len(st.Nodes))
	for i, n := range st.Nodes {
		byName[n.Name] = i
	}
	var jobs []Job
	var failed []Result
	for _, name := range names {
		i, ok := byName[name]
		if !ok {
			failed = append(failed, Result{Node: name, Err: fmt.Errorf("%w: node %s is not in the pool", ErrRender, name)})
			continue
		}
		n := st.Nodes[i]
		if !n.IP.IsValid() {
			failed = append(failed, Result{Node: name, Err: fmt.Errorf("%w: node %s has no IP address to reach it at", ErrRender, name)})
			continue
		}
		files, err := r.Render(st, n)
		if err != nil {
			failed = append(failed, Result{Node: name, Addr: n.IP.String(), Err: err})
			continue
		}
		jobs = append(jobs, Job{Target: Target{Node: name, Addr: n.IP.String()}, Files: files})
	}
	return jobs, failed
}

// Defaults of PushOptions.
const (
	DefaultParallel = 32
	DefaultTimeout  = 30 * time.Second
)

// PushOptions tune PushAll.
type PushOptions struct {
	// Parallel is how many nodes are worked on at once (DefaultParallel).
	Parallel int
	// Timeout bounds each node (DefaultTimeout): connecting, logging in,
	// writing and applying every file.
	Timeout time.Duration
	// Done, when set, is called once per node as it finishes (never
	// concurrently).
	Done func(Result)
}

// PushAll pushes every job with p, at most o.Parallel at once, each within
// o.Timeout, and returns the results in job order. It returns early only
// when ctx ends; nodes not started by then fail with ErrTimeout.
func PushAll(ctx context.Context, p Pusher, jobs []Job, o PushOptions) []Result {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	out := make([]Result, len(jobs))
	sem := make(chan struct{}, o.Parallel)
	var mu sync.Mutex
	var wg sync.WaitGroup
	finish := func(i int, r Result) {
		mu.Lock()
		defer mu.Unlock()
		out[i] = r
		if o.Done != nil {
			o.Done(r)
		}
	}
	for i, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			finish(i, Result{Node: j.Target.Node, Addr: j.Target.Addr, Err: fmt.Errorf("%w: node %s not started: %w", ErrTimeout, j.Target.Node, ctx.Err())})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			jctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			start := time.Now()
			r := p.Push(jctx, j.Target, j.Files)
			if r.Node == "" {
				r.Node = j.Target.Node
			}
			if r.Err != nil && jctx.Err() != nil && !errors.Is(r.Err, ErrTimeout) {
				r.Err = fmt.Errorf("%w: node %s after %s: %w", ErrTimeout, j.Target.Node, time.Since(start).Round(time.Millisecond), r.Err)
			}
			if r.Elapsed == 0 {
				r.Elapsed = time.Since(start)
			}
			finish(i, r)
		}()
	}
	wg.Wait()
	return out
}

// hostPortFor validates a target address and adds port when it has none.
func hostPortFor(addr string, port int) (string, error) {
	if a, err := netip.ParseAddr(addr); err == nil && a.Zone() == "" {
		return net.JoinHostPort(a.String(), strconv.Itoa(port)), nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return "", fmt.Errorf("%w: node address %q: want an IP address, optionally with :port", ErrInvalid, addr)
	}
	return ap.String(), nil
}
