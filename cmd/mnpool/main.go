// Command mnpool manages a pool of active management nodes. See
// `mnpool --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/supervise"
)

func main() {
	supervise.Main() // `lock run` re-executes mnpool as the command's supervisor
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Mnpool(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
