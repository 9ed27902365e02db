package agent_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/mnpool/mnpool/internal/cli"
)

// envChild makes the test binary run as mnpoold (the Galera end-to-end
// test starts one process per member this way, so that it can SIGKILL and
// SIGSTOP them).
const envChild = "MNPOOL_AGENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Mnpoold(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
