package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/mnpool/mnpool/dispatch"
)

// echoTransport answers every command with the target's name; nodes named
// "bad..." exit 1. Production code uses *dispatch.SSH.
type echoTransport struct{}

func (echoTransport) Exec(_ context.Context, e dispatch.Exec) (int, error) {
	io.WriteString(e.Stdout, "hello from "+e.Target.Name+"\n")
	if e.Target.Name[:3] == "bad" {
		return 1, nil
	}
	return 0, nil
}

func (echoTransport) Close() error { return nil }

func Example() {
	r := &dispatch.Runner{Transport: echoTransport{}}
	plan := dispatch.Plan{Direct: []dispatch.Target{
		{Name: "cn1", Addr: "10.0.1.1:22", Kind: dispatch.KindNode},
		{Name: "cn2", Addr: "10.0.1.2:22", Kind: dispatch.KindNode},
		{Name: "bad1", Addr: "10.0.1.3:22", Kind: dispatch.KindNode},
	}}
	var lines []string
	s, err := r.Run(context.Background(), dispatch.Request{Command: "uname -n", Fanout: 2}, plan, dispatch.Handlers{
		Done: func(res dispatch.Result) {
			lines = append(lines, fmt.Sprintf("%s: exit %d: %s", res.Node, res.ExitCode, res.Stdout))
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Print(l)
	}
	fmt.Printf("%d ok, %d failed, %d unreachable\n", s.OK, s.Failed, s.Unreachable)
	// Output:
	// bad1: exit 1: hello from bad1
	// cn1: exit 0: hello from cn1
	// cn2: exit 0: hello from cn2
	// 2 ok, 1 failed, 0 unreachable
}
