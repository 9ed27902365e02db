// Command snmove moves compute nodes to another member of the pool, as
// xCAT's snmove does. See `snmove --help`.
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
	code := cli.Snmove(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
