// Command xdshbench compares mnpool xdsh with pdsh and clush on one
// sshfarm of loopback nodes, side by side in one run, and measures
// mnpool xdsh through member hops. It prints a Markdown table of medians
// (wall time, CPU time and max RSS of the process tree's largest process)
// with the load average at each run.
//
//	go run ./dispatch/sshfarm/cmd/xdshbench                 # 1,000 nodes, 3 runs, + 10,000 through members
//	go run ./dispatch/sshfarm/cmd/xdshbench -serve -n 20    # just serve a farm and print how to reach it
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mnpool/mnpool/dispatch/sshfarm/farmcluster"
)

type config struct {
	nodes, hopNodes, runs, fanout int
	mnpool                        string
	tools                         string
	serve                         bool
}

func main() {
	var c config
	flag.IntVar(&c.nodes, "n", 1000, "nodes for the side-by-side comparison")
	flag.IntVar(&c.hopNodes, "hop-n", 10000, "nodes for the runs through member hops (0: skip)")
	flag.IntVar(&c.runs, "runs", 3, "runs of each tool and command (medians are reported)")
	flag.IntVar(&c.fanout, "f", 64, "fanout of every tool")
	flag.StringVar(&c.mnpool, "mnpool", "", "mnpool binary (default: built from this module)")
	flag.StringVar(&c.tools, "tools", "xdsh,pdsh,clush", "tools to compare")
	flag.BoolVar(&c.serve, "serve", false, "serve a farm of -n nodes until interrupted, print how to reach it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "xdshbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	raiseNoFile()
	dir, err := os.MkdirTemp("", "xdshbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if c.mnpool == "" {
		c.mnpool = filepath.Join(dir, "mnpool")
		build := exec.CommandContext(ctx, "go", "build", "-o", c.mnpool, "github.com/mnpool/mnpool/cmd/mnpool")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building mnpool: %w", err)
		}
	}
	if c.serve {
		return serve(ctx, c, dir)
	}
	fmt.Printf("# xdsh benchmark: %d nodes, fanout %d, %d runs, %d CPUs\n\n", c.nodes, c.fanout, c.runs, numCPU())
	if err := compare(ctx, c, dir); err != nil {
		return err
	}
	if c.hopNodes > 0 {
		return hops(ctx, c, dir)
	}
	return nil
}

func serve(ctx context.Context, c config, dir string) error {
	cl, err := farmcluster.Start(ctx, farmcluster.Options{Dir: dir, Nodes: c.nodes, Members: []string{"mn1", "sn1", "sn2"}, Mnpool: c.mnpool})
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Printf("farm of %d nodes on port %d\n", c.nodes, cl.Farm.Port())
	fmt.Printf("mnpool %q\n", append([]string{c.mnpool}, cl.XdshArgs("mn1")...))
	fmt.Printf("PDSH_SSH_ARGS_APPEND='-F %s' pdsh -R ssh -w ^%s true\n", cl.SSHConfig, cl.HostsFile)
	fmt.Printf("clush -o '-F %s' --hostfile %s true\n", cl.SSHConfig, cl.HostsFile)
	<-ctx.Done()
	return nil
}

// raiseNoFile lifts the soft open-files limit to the hard one: every
// endpoint is a listening socket.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
