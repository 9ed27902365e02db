// Command makedhcp writes the DHCP server configuration (ISC dhcpd or
// Kea) of the pool member it runs on, with xCAT's flags. See
// `makedhcp --help`.
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
	code := cli.Makedhcp(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
