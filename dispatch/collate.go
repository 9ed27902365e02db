package dispatch

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mnpool/mnpool/noderange"
)

// Output is one node's output as read back from xdsh's prefixed lines.
type Output struct {
	Node string
	Text []byte
}

// ReadPrefixed reads xdsh output ("node: line") and returns each node's
// text in the order the nodes first appear. Lines without a "node: "
// prefix are returned in stray (xdshbak reports them).
func ReadPrefixed(r io.Reader) (out []Output, stray []string, err error) {
	idx := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		node, text, ok := strings.Cut(line, ": ")
		if !ok {
			node, ok = strings.CutSuffix(line, ":")
		}
		if !ok || node == "" || strings.ContainsAny(node, " \t") {
			stray = append(stray, line)
			continue
		}
		i, seen := idx[node]
		if !seen {
			i = len(out)
			idx[node] = i
			out = append(out, Output{Node: node})
		}
		out[i].Text = append(out[i].Text, text...)
		out[i].Text = append(out[i].Text, '\n')
	}
	return out, stray, sc.Err()
}

// Group is a set of nodes whose output (and, for results, exit status
// and error kind) is identical.
type Group struct {
	Nodes    []string `json:"nodes"`
	Range    string   `json:"noderange"`
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr,omitempty"`
	ExitCode int      `json:"exit_code"`
	// Error is the kind of failure (connect, timeout, ...) of nodes that
	// did not run; their messages differ by node and are not compared.
	Error string `json:"error,omitempty"`
}

// CollateOutputs groups nodes with identical text (xdshbak -c).
func CollateOutputs(outs []Output) []Group {
	return collate(len(outs), func(i int) (string, Group) {
		return string(outs[i].Text), Group{Nodes: []string{outs[i].Node}, Stdout: string(outs[i].Text)}
	})
}

// CollateResults groups results whose stdout, stderr, exit status and
// error kind are identical (xdsh --collate; identical outputs with
// different exit statuses are not merged).
func CollateResults(rs []Result) []Group {
	return collate(len(rs), func(i int) (string, Group) {
		r := rs[i]
		g := Group{Nodes: []string{r.Node}, Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode}
		if r.Err != nil {
			g.Error = errKind(r.Err)
			if g.Error == "" {
				g.Error = "error"
			}
		}
		return fmt.Sprintf("%d\x00%s\x00%s\x00%s", g.ExitCode, g.Error, g.Stdout, g.Stderr), g
	})
}

// collate groups n items by key; groups are sorted by their first node.
func collate(n int, item func(int) (string, Group)) []Group {
	idx := map[string]int{}
	var out []Group
	for i := range n {
		k, g := item(i)
		if j, ok := idx[k]; ok {
			out[j].Nodes = append(out[j].Nodes, g.Nodes...)
			continue
		}
		idx[k] = len(out)
		out = append(out, g)
	}
	for i := range out {
		sort.Slice(out[i].Nodes, func(a, b int) bool { return noderange.Less(out[i].Nodes[a], out[i].Nodes[b]) })
		out[i].Range = noderange.Compress(out[i].Nodes)
	}
	sort.Slice(out, func(a, b int) bool { return noderange.Less(out[a].Nodes[0], out[b].Nodes[0]) })
	return out
}

const rule = "-------------------------------------------------------------------------------"

// WriteGroups prints groups as xdshbak -c does: a HOSTS header with the
// noderange, a rule, then the output.
func WriteGroups(w io.Writer, gs []Group) error {
	var b bytes.Buffer
	for _, g := range gs {
		b.WriteString("HOSTS " + rule[6:] + "\n" + g.Range)
		switch {
		case g.Error != "":
			fmt.Fprintf(&b, " (did not run: %s)", g.Error)
		case g.ExitCode != 0:
			fmt.Fprintf(&b, " (exit status %d)", g.ExitCode)
		}
		b.WriteString("\n" + rule + "\n")
		b.WriteString(withNewline(g.Stdout))
		b.WriteString(withNewline(g.Stderr))
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteByNode prints each node's output under its own header (xdshbak
// without -c), nodes in natural order.
func WriteByNode(w io.Writer, outs []Output) error {
	sorted := append([]Output(nil), outs...)
	sort.SliceStable(sorted, func(a, b int) bool { return noderange.Less(sorted[a].Node, sorted[b].Node) })
	var b bytes.Buffer
	for _, o := range sorted {
		h := "HOST: " + o.Node
		b.WriteString(h + "\n" + strings.Repeat("-", len(h)) + "\n" + withNewline(string(o.Text)) + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
