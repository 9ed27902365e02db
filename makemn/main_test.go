package makemn_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/mnpool/mnpool/internal/cli"
)

// envChild makes the test binary run the makemn program instead of the
// tests: the Galera test starts real makemn processes this way.
const envChild = "MNPOOL_TEST_MAKEMN_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Makemn(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
