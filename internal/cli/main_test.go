package cli_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/supervise"
)

// envRunMnpool makes the test binary run `mnpool ARGS...` (os.Args[1:])
// as cmd/mnpool does, for tests that need a separate mnpool process.
const envRunMnpool = "MNPOOL_CLI_TEST_RUN_MNPOOL"

func TestMain(m *testing.M) {
	supervise.Main() // `lock run` re-executes this binary as its supervisor
	if os.Getenv(envRunMnpool) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Mnpool(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
