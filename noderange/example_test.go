package noderange_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mnpool/mnpool/noderange"
)

func ExampleExpand() {
	u, err := noderange.NewStatic(
		[]string{"cn01", "cn02", "cn03", "cn04", "cn05", "cn06", "sn1", "sn2"},
		map[string][]string{"gpu": {"cn02", "cn05"}, "rack1": {"cn01", "cn02", "cn03"}},
	)
	if err != nil {
		panic(err)
	}
	for _, expr := range []string{
		"cn[01-03],sn1",
		"cn02-cn04",
		"cn04+2",
		"all,-cn[01-05]",
		"gpu@rack1",
		"/sn.*",
	} {
		nodes, err := noderange.Expand(expr, u)
		fmt.Println(expr, "=>", nodes, err)
	}
	// Output:
	// cn[01-03],sn1 => [cn01 cn02 cn03 sn1] <nil>
	// cn02-cn04 => [cn02 cn03 cn04] <nil>
	// cn04+2 => [cn04 cn05 cn06] <nil>
	// all,-cn[01-05] => [cn06 sn1 sn2] <nil>
	// gpu@rack1 => [cn02] <nil>
	// /sn.* => [sn1 sn2] <nil>
}

func ExampleExpand_errors() {
	u, err := noderange.NewStatic([]string{"cn01", "cn02"}, nil)
	if err != nil {
		panic(err)
	}
	_, err = noderange.Expand("cn[01-03],foo", u)
	fmt.Println(err)
	fmt.Println(errors.Is(err, noderange.ErrUnknown))

	_, err = noderange.Expand("cn[03-01]", u)
	fmt.Println(err)
	fmt.Println(errors.Is(err, noderange.ErrSyntax))
	// Output:
	// noderange: unknown nodes or groups: cn03, foo
	// true
	// noderange: syntax error at column 4 of "cn[03-01]": reversed range "03-01": 03 is greater than 01; write the smaller number first
	// true
}

func ExampleParse() {
	r, err := noderange.Parse("rack[1-2]node[01-02],-rack2node02")
	if err != nil {
		panic(err)
	}
	u, err := noderange.NewStatic([]string{"rack1node01", "rack1node02", "rack2node01", "rack2node02"}, nil)
	if err != nil {
		panic(err)
	}
	nodes, err := r.Expand(u)
	fmt.Println(nodes, err)
	// Output:
	// [rack1node01 rack1node02 rack2node01] <nil>
}

func ExampleWithFileOpener() {
	u, err := noderange.NewStatic([]string{"cn1", "cn2", "cn3", "cn4"}, nil)
	if err != nil {
		panic(err)
	}
	// A command line tool would return os.Open(name).
	open := func(name string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("# nodes to drain\ncn1-cn3\n-cn2  # still busy\n")), nil
	}
	nodes, err := noderange.Expand("^/etc/mnpool/drain,cn4", u, noderange.WithFileOpener(open))
	fmt.Println(nodes, err)
	// Output:
	// [cn1 cn3 cn4] <nil>
}

func ExampleCompress() {
	fmt.Println(noderange.Compress([]string{"cn003", "cn001", "cn002", "cn010", "sn1", "sn2", "login"}))
	// Output:
	// cn[001-003,010],login,sn[1-2]
}

func ExampleLess() {
	names := []string{"cn10", "cn9", "rack10node1", "rack2node10"}
	slices.SortFunc(names, noderange.Compare)
	fmt.Println(names, noderange.Less("cn9", "cn10"))
	// Output:
	// [cn9 cn10 rack2node10 rack10node1] true
}
