package console_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
)

const envClientHelper = "MNPOOL_TEST_CONSOLE_CLIENT"

// TestHelperInteractiveClient is not a test: TestInteractiveClientInPTY
// runs the test binary again with envClientHelper set, and then this runs
// `mnpool console --broker ADDR cn001` as a program in a pseudo-terminal.
func TestHelperInteractiveClient(t *testing.T) {
	addr := os.Getenv(envClientHelper)
	if addr == "" {
		return
	}
	code := cli.Mnpool(context.Background(), []string{"console", "--self", "mn1", "--socket", addr, "cn001"}, cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	os.Exit(code)
}

func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	require.NoError(t, err)
	return tio
}

// The interactive client in a real pseudo-terminal: it puts the terminal
// in raw mode, sends keys as typed, shows the console, leaves on ^Ec. with
// exit status 0 and restores the terminal.
func TestInteractiveClientInPTY(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 1)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())
	c := startCluster(t, dsns, []string{"sn1"})

	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 80}))
	before := termios(t, tty)
	require.NotZero(t, before.Lflag&unix.ICANON, "a fresh pty starts in canonical mode")
	require.NotZero(t, before.Lflag&unix.ECHO)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperInteractiveClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), envClientHelper+"="+c.socks["sn1"], "USER=tester")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	screen := &syncBuffer{}
	go io.Copy(screen, ptmx)
	expect := func(want string) {
		t.Helper()
		waitFor(t, 20*time.Second, func() bool { return strings.Contains(screen.String(), want) }, "the terminal to show %q; it shows %q", want, tail(screen.String()))
	}
	expect("[Enter `^Ec?' for help]")
	expect("banner cn001 #1")
	expect("served by sn1")
	raw := termios(t, tty)
	require.Zero(t, raw.Lflag&unix.ICANON, "raw mode while attached")
	require.Zero(t, raw.Lflag&unix.ECHO, "no local echo while attached")

	// Keys go to the console as typed; the console's echo comes back.
	_, err = ptmx.Write([]byte("hello console\r"))
	require.NoError(t, err)
	expect("hello console\r")
	waitFor(t, 10*time.Second, func() bool {
		_, _, _, rec := ep1.stats()
		return rec == "hello console\r"
	}, "the endpoint to receive the keys")

	// ^Ec? prints the escapes and sends nothing to the console.
	_, err = ptmx.Write([]byte("\x05c?"))
	require.NoError(t, err)
	expect(console.HelpText)

	// ^E followed by something else reaches the console unchanged.
	_, err = ptmx.Write([]byte("\x05x"))
	require.NoError(t, err)
	waitFor(t, 10*time.Second, func() bool {
		_, _, _, rec := ep1.stats()
		return rec == "hello console\r\x05x"
	}, "^E x to reach the console")

	// ^Ec. leaves with status 0 and the terminal restored.
	_, err = ptmx.Write([]byte("\x05c."))
	require.NoError(t, err)
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status; terminal shows %q", tail(screen.String()))
	case <-time.After(testenv.Timeout(20 * time.Second)):
		t.Fatalf("the client did not leave on ^Ec.; terminal shows %q", tail(screen.String()))
	}
	expect("[disconnected]")
	after := termios(t, tty)
	require.Equal(t, before.Lflag, after.Lflag, "local modes restored")
	require.Equal(t, before.Iflag, after.Iflag, "input modes restored")
	require.Equal(t, before.Oflag, after.Oflag, "output modes restored")
	_, _, _, rec := ep1.stats()
	require.Equal(t, "hello console\r\x05x", rec, "escapes never reach the console")
	waitFor(t, 10*time.Second, func() bool { return c.members["sn1"].broker.Consoles()[0].Clients == 0 }, "the broker to see the client leave")
}
