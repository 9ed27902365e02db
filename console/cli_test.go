package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
)

func mnpool(t *testing.T, db string, in io.Reader, args ...string) (int, string, string) {
	t.Helper()
	if in == nil {
		in = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code := cli.Mnpool(context.Background(), append([]string{"--db", db, "--self", "mn1"}, args...), cli.IO{In: in, Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func mustMnpool(t *testing.T, db string, args ...string) string {
	t.Helper()
	code, out, errs := mnpool(t, db, nil, args...)
	require.Equal(t, 0, code, "mnpool %v: %s", args, errs)
	return out
}

func cliPool(t *testing.T) string {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	mustMnpool(t, db, "init", "--mn", "mn1")
	mustMnpool(t, db, "network", "add", "mgmt", "10.0.0.0/16")
	mustMnpool(t, db, "member", "set", "mn1", "--ip", "mgmt=10.0.0.1")
	mustMnpool(t, db, "member", "add", "sn1", "--ip", "mgmt=10.0.0.2")
	mustMnpool(t, db, "member", "add", "sn2", "--ip", "mgmt=10.0.0.3")
	mustMnpool(t, db, "node", "add", "cn001", "--ip", "10.0.1.1", "--servicenodes", "sn1,sn2")
	mustMnpool(t, db, "node", "add", "cn002", "--ip", "10.0.1.2", "--servicenodes", "sn2,sn1")
	mustMnpool(t, db, "node", "add", "cn003", "--ip", "10.0.1.3", "--servicenodes", "sn2,sn1")
	return db
}

func TestConsoleSetListRemoveCLI(t *testing.T) {
	db := cliPool(t)
	require.Contains(t, mustMnpool(t, db, "console", "set", "cn001", "--tcp", "ts1:7001"), "console set for 1 node(s)")
	require.Contains(t, mustMnpool(t, db, "console", "set", "cn002,cn003", "--servers", "sn1,mn1", "--command", "--",
		"ipmitool", "-I", "lanplus", "-H", "{node}-bmc", "-f", "/etc/mnpool/ipmi pw", "sol", "activate"), "console set for 2 node(s)")
	out := mustMnpool(t, db, "console", "list")
	require.Regexp(t, `cn001\s+tcp ts1:7001\s+sn1,sn2\s+-\s+-`, out)
	require.Contains(t, out, `command ipmitool -I lanplus -H cn003-bmc -f "/etc/mnpool/ipmi pw" sol activate`)
	var rows []struct {
		Node    string   `json:"node"`
		Kind    string   `json:"kind"`
		Argv    []string `json:"argv"`
		Allowed []string `json:"allowed"`
		Server  string   `json:"server_now"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustMnpool(t, db, "console", "list", "cn002", "--json")), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, []string{"ipmitool", "-I", "lanplus", "-H", "cn002-bmc", "-f", "/etc/mnpool/ipmi pw", "sol", "activate"}, rows[0].Argv)
	require.Equal(t, []string{"sn1", "mn1"}, rows[0].Allowed)
	require.Equal(t, "sn1", rows[0].Server)

	cases := []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"console", "set", "cn001"}, 2, "--tcp HOST:PORT or --command"},
		{[]string{"console", "set", "cn001", "--tcp", "ts1:7001", "--", "ipmitool"}, 2, "not both"},
		{[]string{"console", "set", "cn001", "--command"}, 2, "after --"},
		{[]string{"console", "set", "cn001", "--tcp", "ts1"}, 2, `"ts1"`},
		{[]string{"console", "set", "cn001", "--command", "--", "ipmitool sol activate"}, 2, `"ipmitool sol activate"`},
		{[]string{"console", "set", "cn009", "--tcp", "ts1:1"}, 2, "cn009"},
		{[]string{"console", "set", "cn001", "--tcp", "ts1:1", "--servers", "sn7"}, 2, `"sn7"`},
		{[]string{"console", "conserver"}, 2, "--member"},
		{[]string{"console", "conserver", "--member", "sn9"}, 2, `"sn9"`},
		{[]string{"console", "cn_1"}, 2, `"cn_1"`},
		{[]string{"console", "cn001", "--broker", "nowhere"}, 2, `"nowhere"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, errs := mnpool(t, db, nil, c.args...)
			require.Equal(t, c.code, code, errs)
			require.Contains(t, errs, c.mention)
		})
	}
	// Bad input wrote nothing.
	require.Regexp(t, `cn001\s+tcp ts1:7001`, mustMnpool(t, db, "console", "list"))

	require.Contains(t, mustMnpool(t, db, "console", "remove", "cn001"), "console removed for 1 node(s)")
	code, _, errs := mnpool(t, db, nil, "console", "remove", "cn001")
	require.Equal(t, 2, code, "a console that is not there is a name that does not exist")
	require.Contains(t, errs, "no console configured for cn001")
	require.NotContains(t, mustMnpool(t, db, "console", "list"), "cn001")
}

func TestConsoleConserverCLI(t *testing.T) {
	db := cliPool(t)
	mustMnpool(t, db, "console", "set", "cn[001-003]", "--tcp", "{node}-ts:7001")
	out := mustMnpool(t, db, "console", "conserver", "--member", "sn2")
	require.Contains(t, out, "exec /usr/bin/mnpool console --raw --socket /run/mnpool/console.sock cn002;")
	require.Contains(t, out, "console cn003 {")
	require.NotContains(t, out, "cn001")
	file := filepath.Join(t.TempDir(), "conserver.cf")
	require.Contains(t, mustMnpool(t, db, "console", "conserver", "--member", "sn2", "--file", file), "updated")
	require.Contains(t, mustMnpool(t, db, "console", "conserver", "--member", "sn2", "--file", file), "already up to date")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, out, string(got))
}

// `mnpool console serve` runs a broker; `mnpool console NODE` (input not
// a terminal) attaches through it and leaves on ^Ec.
func TestConsoleServeAndOpenCLI(t *testing.T) {
	db := cliPool(t)
	ep := newFakeEndpoint(t, "cn002")
	mustMnpool(t, db, "console", "set", "cn002", "--tcp", ep.Addr(), "--servers", "mn1")

	// The CA and mn1's certificate (mn1 holds the db service), and a
	// user certificate for alice.
	pkiDir, userDir := t.TempDir(), t.TempDir()
	require.Contains(t, mustMnpool(t, db, "certs", "init", "--dir", pkiDir), "member certificate of mn1 written")
	require.Contains(t, mustMnpool(t, db, "certs", "issue", "--dir", pkiDir, "--user", "alice", "--out", userDir), "user certificate of alice written")
	sock := filepath.Join(t.TempDir(), "console.sock")

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	served := make(chan int, 1)
	go func() {
		served <- cli.Mnpool(ctx, []string{"--db", db, "--self", "mn1", "console", "serve", "--listen", "127.0.0.1:0", "--lease-ttl", "2s", "--pki-dir", pkiDir, "--socket", sock}, cli.IO{In: strings.NewReader(""), Out: out, Err: io.Discard})
	}()
	defer func() {
		cancel()
		select {
		case code := <-served:
			require.Equal(t, 0, code)
		case <-time.After(testenv.Timeout(20 * time.Second)):
			t.Error("console serve did not stop")
		}
	}()
	re := regexp.MustCompile(`console broker of mn1 listening on (\d\S+)`)
	waitFor(t, 10*time.Second, func() bool { return re.MatchString(out.String()) && strings.Contains(out.String(), sock) }, "the broker to listen")
	addr := re.FindStringSubmatch(out.String())[1]

	pr, pw := io.Pipe()
	defer pw.Close()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Mnpool(context.Background(), []string{"--self", "mn1", "console", "cn002", "--broker", addr,
			"--cert", filepath.Join(userDir, "alice.crt"), "--key", filepath.Join(userDir, "alice.key"), "--ca", filepath.Join(userDir, "ca.crt")}, cli.IO{In: pr, Out: stdout, Err: stderr})
	}()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), "banner cn002 #1") }, "the banner; have %q", stdout.String())
	io.WriteString(pw, "typed\r\n")
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), "typed\r\n") }, "the echo")
	io.WriteString(pw, "\x05c.")
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(testenv.Timeout(10 * time.Second)):
		t.Fatal("mnpool console did not leave on ^Ec.")
	}
	require.Contains(t, stderr.String(), "served by mn1")
	require.Contains(t, stderr.String(), "[disconnected]")
	_, _, _, rec := ep.stats()
	require.Equal(t, "typed\r\n", rec)

	// Without a certificate the TCP broker is out of reach.
	code, _, errs := mnpool(t, db, nil, "console", "cn002", "--broker", addr, "--no-reconnect", "--cert", filepath.Join(t.TempDir(), "none.crt"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "needs your user certificate")

	// --raw (conserver's exec consoles) through the local socket, as
	// root: every byte goes to the console,
	// ^Ec. included; the end of input leaves.
	rr, rw := io.Pipe()
	rawOut := &syncBuffer{}
	go func() {
		done <- cli.Mnpool(context.Background(), []string{"console", "--raw", "--socket", sock, "cn002"}, cli.IO{In: rr, Out: rawOut, Err: io.Discard})
	}()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(rawOut.String(), "banner cn002 #1") }, "the recent output; have %q", rawOut.String())
	io.WriteString(rw, "raw\x05c.\r\n")
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(rawOut.String(), "raw\x05c.\r\n") }, "the echo of the raw bytes")
	rw.Close()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(testenv.Timeout(10 * time.Second)):
		t.Fatal("mnpool console --raw did not leave at the end of its input")
	}
	_, _, _, rec = ep.stats()
	require.Equal(t, "typed\r\nraw\x05c.\r\n", rec)

	// Holder shown by console list while the broker holds the lease.
	require.Regexp(t, `cn002\s+tcp \S+\s+mn1\s+mn1\s+1`, mustMnpool(t, db, "console", "list"))
}
