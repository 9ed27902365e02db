package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/noderange"
)

// xdshPrinter prints xdsh's results as they come.
type xdshPrinter struct {
	g       *globals
	f       *xdshFlags
	out     *bufio.Writer
	err     *bufio.Writer
	keep    bool // --json and --collate print at the end
	results []dispatch.Result
	bar     *progressbar.ProgressBar
}

func newXdshPrinter(g *globals, f *xdshFlags, n int) *xdshPrinter {
	p := &xdshPrinter{g: g, f: f, out: bufio.NewWriterSize(g.io.Out, 64<<10), err: bufio.NewWriter(g.io.Err),
		keep: g.json || f.collate}
	// A progress line only when the output does not go to the same
	// terminal (or is held until the end).
	if !f.quiet && (p.keep || !isTerminal(g.io.Out)) {
		p.bar = progress(g, n, "xdsh")
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *xdshPrinter) handlers() dispatch.Handlers {
	h := dispatch.Handlers{Done: p.done}
	if p.f.stream && !p.keep {
		h.Output = func(node string, stderr bool, line []byte) {
			w := p.out
			if stderr {
				w = p.err
			}
			fmt.Fprintf(w, "%s: %s\n", node, line)
			w.Flush()
		}
	}
	return h
}

func (p *xdshPrinter) done(r dispatch.Result) {
	if p.bar != nil {
		p.bar.Add(1)
	}
	if p.keep {
		p.results = append(p.results, r)
		return
	}
	writePrefixed(p.out, r.Node, r.Stdout)
	writePrefixed(p.err, r.Node, r.Stderr)
	if r.Err != nil && !p.f.quiet {
		fmt.Fprintf(p.err, "%s: %s\n", r.Node, cleanDispatch(r.Err))
	}
	if p.f.exitStatus && r.Err == nil {
		fmt.Fprintf(p.out, "%s: exit status %d\n", r.Node, r.ExitCode)
	}
	// Whole nodes at a time: a reader (xdshbak, grep) sees complete
	// lines, and output is not held longer than a node.
	p.out.Flush()
	p.err.Flush()
}

// writePrefixed writes each line of b as "node: line".
func writePrefixed(w io.Writer, node string, b []byte) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		fmt.Fprintf(w, "%s: %s\n", node, line)
		b = rest
	}
}

// xdshJSON is what --json prints.
type xdshJSON struct {
	Results []dispatch.Result `json:"results"`
	Groups  []dispatch.Group  `json:"groups,omitempty"`
	Summary dispatch.Summary  `json:"summary"`
}

func (p *xdshPrinter) finish(s dispatch.Summary) error {
	if p.bar != nil {
		p.bar.Finish()
	}
	sort.Slice(p.results, func(a, b int) bool { return noderange.Less(p.results[a].Node, p.results[b].Node) })
	var err error
	switch {
	case p.g.json:
		out := xdshJSON{Results: p.results, Summary: s}
		if out.Results == nil {
			out.Results = []dispatch.Result{}
		}
		if p.f.collate {
			out.Groups = dispatch.CollateResults(p.results)
		}
		err = printJSON(p.out, out)
	case p.f.collate:
		err = dispatch.WriteGroups(p.out, dispatch.CollateResults(p.results))
	}
	if ferr := p.out.Flush(); err == nil {
		err = ferr
	}
	p.err.Flush()
	if err != nil {
		return err
	}
	if bad := s.Failed + s.Unreachable; bad > 0 {
		return fmt.Errorf("%d of %d nodes failed: %d exited non-zero, %d could not run the command (%.1fs)",
			bad, s.Total, s.Failed, s.Unreachable, s.Seconds)
	}
	return nil
}
