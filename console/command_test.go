package console_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
)

// TestHelperCommandEndpoint is not a test: command consoles run the test
// binary with only this test selected, and the console's clean
// environment carries console.EnvNode. It plays a BMC's serial-over-LAN.
func TestHelperCommandEndpoint(t *testing.T) {
	node := os.Getenv(console.EnvNode)
	if node == "" {
		return
	}
	fmt.Printf("banner from command %s pid=%d term=%s\r\n", node, os.Getpid(), os.Getenv("TERM"))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Printf("got: %s\r\n", strings.TrimSpace(sc.Text()))
	}
	os.Exit(0)
}

// A command console runs under a pseudo-terminal without a shell, and its
// process ends when the console closes.
func TestCommandConsole(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 1)
	s := openStore(t, dsns[0], "mn1")
	seedPool(t, s, ep1.Addr(), ep2.Addr())
	// An argument with shell syntax reaches the program as it is.
	never := filepath.Join(t.TempDir(), "never")
	require.NoError(t, console.SetSpecs(context.Background(), s, []console.Spec{{
		Node: "cn001", Kind: console.KindCommand,
		Argv: []string{os.Args[0], "-test.run=^TestHelperCommandEndpoint$", "-test.count=1", "$(touch " + never + "); `x` | y"},
	}}))
	c := startCluster(t, dsns, []string{"sn1"})

	w := dialConsole(t, c.addrs["sn1"], console.Hello{Node: "cn001", Mode: console.ModeWrite})
	w.expect("banner from command cn001")
	m := regexp.MustCompile(`pid=(\d+) term=vt100`).FindStringSubmatch(w.text())
	require.NotNil(t, m, "banner with pid and TERM=vt100: %q", w.text())
	pid, _ := strconv.Atoi(m[1])
	w.write("ping\r")
	w.expect("got: ping")
	_, err := os.Stat(never)
	require.True(t, os.IsNotExist(err), "no shell ran the argument")

	c.stop("sn1")
	waitFor(t, 10*time.Second, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, "process %d to be gone", pid)
}

func TestEndpointsOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := console.Endpoints{}.Open(ctx, console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"no-such-console-program"}})
	require.ErrorIs(t, err, console.ErrNotFound)
	require.Contains(t, err.Error(), "no-such-console-program")
	_, err = console.Endpoints{}.Open(ctx, console.Spec{Node: "cn001", Kind: console.KindCommand, Argv: []string{"/etc/passwd"}})
	require.ErrorIs(t, err, console.ErrInvalid)
	_, err = console.Endpoints{}.Open(ctx, console.Spec{Node: "cn001", Kind: console.KindTCP, Address: "127.0.0.1:1"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "127.0.0.1:1")
}
