// Command makemn makes the service node it runs on the MN of the pool,
// whether the old MN is up or down. See `makemn --help` and
// docs/MAKEMN-RUNBOOK.md.
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
	code := cli.Makemn(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
