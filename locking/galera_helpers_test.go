package locking_test

import (
	"strings"

	"github.com/mnpool/mnpool/internal/testgalera"
)

// galeraDSN gives client i a DSN that lists every node with node i%N+1
// first, so clients are spread over the nodes and fail over like members.
func galeraDSN(g *testgalera.Env) func(int) string {
	nodes := g.NodeDSNs()
	return func(i int) string {
		k := i % len(nodes)
		return strings.Join(append(append([]string(nil), nodes[k:]...), nodes[:k]...), ",")
	}
}
