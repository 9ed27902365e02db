package locking_test

import "github.com/mnpool/mnpool/internal/testgalera"

// galeraDSN gives client i a DSN (to be spread over the nodes once the
// harness offers per-node DSNs).
func galeraDSN(g *testgalera.Env) func(int) string {
	return func(int) string { return g.DSN() }
}
