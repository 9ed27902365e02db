// Command mnpoold is the mnpool agent that runs on every member of the
// pool: heartbeat, re-apply the member's configuration when the pool
// changes, automatic failover. See `mnpoold --help` and docs/AGENT.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mnpool/mnpool/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Mnpoold(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
