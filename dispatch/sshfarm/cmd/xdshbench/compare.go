package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mnpool/mnpool/dispatch/sshfarm/farmcluster"
)

// compare runs every tool on the same farm, interleaved run by run.
func compare(ctx context.Context, c config, dir string) error {
	cl, err := farmcluster.Start(ctx, farmcluster.Options{Dir: dir + "/cmp", Nodes: c.nodes, Members: []string{"mn1", "sn1"}, Mnpool: c.mnpool})
	if err != nil {
		return err
	}
	defer cl.Close()
	tools := strings.Split(c.tools, ",")
	var rows []row
	for _, cmd := range []string{"true", "uname -n"} {
		rs := make([]row, len(tools))
		for i, t := range tools {
			rs[i] = row{tool: t, cmd: cmd}
		}
		for range c.runs {
			for i, t := range tools {
				env, a := argv(cl, t, c.fanout, c.nodes, cmd)
				s, err := measure(ctx, env, a...)
				if err != nil {
					return err
				}
				rs[i].samples = append(rs[i].samples, s)
			}
		}
		rows = append(rows, rs...)
	}
	fmt.Printf("## %d nodes, fanout %d, side by side\n\n", c.nodes, c.fanout)
	printRows(rows)
	return nil
}

// hops runs mnpool xdsh on hopNodes nodes split over two members (auto
// routing: each member runs its half), and through a chain of two hops.
func hops(ctx context.Context, c config, dir string) error {
	half := func(i int) []string {
		if i%2 == 0 {
			return []string{"sn1", "mn1"}
		}
		return []string{"sn2", "mn1"}
	}
	cl, err := farmcluster.Start(ctx, farmcluster.Options{Dir: dir + "/hops", Nodes: c.hopNodes, Members: []string{"mn1", "sn1", "sn2"},
		ServiceNodes: half, Mnpool: c.mnpool})
	if err != nil {
		return err
	}
	defer cl.Close()
	var rows []row
	for _, how := range []struct{ name, via string }{{" via sn1 and sn2 (auto)", "auto"}, {" via sn1 then sn2 (2 hops)", "sn1,sn2"}} {
		r := row{tool: "xdsh", cmd: "uname -n", how: how.name}
		for range c.runs {
			_, a := argv(cl, "xdsh", c.fanout, c.hopNodes, "uname -n")
			a = append(a[:len(a)-2], "--via", how.via, "--", "uname -n")
			s, err := measure(ctx, nil, a...)
			if err != nil {
				return err
			}
			r.samples = append(r.samples, s)
		}
		rows = append(rows, r)
	}
	fmt.Printf("\n## %d nodes through members, fanout %d at every hop\n\n", c.hopNodes, c.fanout)
	printRows(rows)
	fmt.Println("\nMax RSS is the originating mnpool process tree's largest process; the relays run inside the farm's sessions.")
	return nil
}
