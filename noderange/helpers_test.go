package noderange

import (
	"fmt"
	"testing"
)

// seq returns fmt.Sprintf(format, i) for i in lo..hi.
func seq(format string, lo, hi int) []string {
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// testNodes is the node list of testUniverse.
func testNodes() []string {
	return cat(
		seq("cn%03d", 1, 120),
		[]string{"sn1", "sn2", "sn10"},
		[]string{"node5", "node11", "node12", "10"},
		seq("rack1node%02d", 1, 4), seq("rack2node%02d", 1, 4),
		seq("ib-cn%02d", 1, 4),
		seq("cn%02d.ib", 1, 4),
		[]string{"cn1-cn3", "login"},
	)
}

// testUniverse is a small cluster: cn001-cn120 in three racks, service
// nodes, odd names for xCAT's corner cases.
func testUniverse(t testing.TB) *Static {
	t.Helper()
	u, err := NewStatic(testNodes(), map[string][]string{
		"compute": seq("cn%03d", 1, 100),
		"gpu":     append(seq("cn%03d", 1, 10), "cn101"),
		"rack1":   seq("cn%03d", 1, 40),
		"rack2":   seq("cn%03d", 41, 80),
		"rack3":   seq("cn%03d", 81, 120),
		"svc":     {"sn1", "sn2", "sn10"},
		"empty":   nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}
